"""Stop conditions: a breached guard (or the operator's abort file) reverts every fault in
force at once, wakes the experiment and fails it as aborted."""

import threading
import time
from pathlib import Path

import pytest

from chaos import Aborted, ConfigError, Journal, RunContext, Steady
from chaos.abort import request_abort
from tests.helpers import UNDO_LOG, WORLD, SetKeys


@pytest.fixture
def ctx(tmp_path):
    WORLD.clear()
    UNDO_LOG.clear()
    return RunContext(journal=Journal(tmp_path / "journal.json"))


def failing_after(flag):
    def sample():
        if flag.is_set():
            raise ConnectionError("down")
        return "ok"

    return sample


def test_a_breached_guard_reverts_every_fault_and_aborts(ctx):
    broken = threading.Event()
    steady = Steady(ctx, hz=50)
    entry = steady.watch("entry", failing_after(broken))
    steady.guard(entry.error_rate(over=0.3) <= 0.2)
    try:
        steady.hold(0.3)
        outer, inner = SetKeys(ctx, ["a"]), SetKeys(ctx, ["b"])
        t0 = time.monotonic()
        with pytest.raises(Aborted) as info, outer, inner:
            broken.set()
            steady.hold(30)  # woken by the abort, long before this
        assert time.monotonic() - t0 < 5
    finally:
        steady.stop()
    message = str(info.value)
    assert message.startswith("aborted: guard breached: [VIOLATED] entry error rate (last 0.3 s")
    assert "> 0.2" in message and " at t=" in message
    assert WORLD == {} and UNDO_LOG == ["b", "a"]  # newest first, both reverted
    assert ctx.journal.entries() == []
    ev = ctx.abort.evidence()
    assert ev["reverted_after_s"] is not None and ev["reverted_after_s"] < 1.0
    assert [e.name for e in ctx.tl.events if e.name.startswith("abort")] == ["abort", "abort.reverted"]


def test_a_guard_without_a_fault_in_force_never_aborts(ctx):
    steady = Steady(ctx, hz=50)
    entry = steady.watch("entry", failing_after(_set()))
    steady.guard(entry.error_rate(over=0.2) <= 0.2)
    try:
        steady.hold(0.5)  # every sample fails, but nothing is injected: a baseline problem
    finally:
        steady.stop()
    assert not ctx.abort.is_set


def _set():
    e = threading.Event()
    e.set()
    return e


def test_steady_expect_after_an_abort_says_aborted(ctx):
    steady = Steady(ctx, hz=50)
    w = steady.watch("w", lambda: "ok")
    try:
        steady.hold(0.1)
        ctx.abort.trigger("operator abort (test)", ctx.tl)
        with pytest.raises(Aborted, match=r"^aborted: operator abort \(test\) at t="):
            steady.expect(w.availability() >= 0.5)
    finally:
        steady.stop()


def test_the_operator_abort_file_aborts_a_run_that_started_before_it(ctx, tmp_path):
    steady = Steady(ctx, hz=50)
    steady.guards.watch_abort_file(tmp_path)
    try:
        with pytest.raises(Aborted, match=r"operator abort \(stop now\)"), SetKeys(ctx, ["k"]):
            threading.Timer(0.2, lambda: request_abort(tmp_path, "stop now")).start()
            steady.hold(30)
    finally:
        steady.stop()
    assert WORLD == {}


def test_an_abort_file_older_than_the_run_is_ignored(ctx, tmp_path):
    request_abort(tmp_path, "yesterday's")
    time.sleep(0.05)
    steady = Steady(ctx, hz=50)
    steady.guards.watch_abort_file(tmp_path)
    try:
        with SetKeys(ctx, ["k"]):
            steady.hold(0.3)
    finally:
        steady.stop()
    assert not ctx.abort.is_set


def test_guard_needs_checks(ctx):
    steady = Steady(ctx)
    with pytest.raises(ConfigError, match="guard\\(\\) needs at least one check"):
        steady.guard()
    with pytest.raises(ConfigError, match="guard\\(\\) takes checks"):
        steady.guard(0.5)


def test_the_live_view_folds_the_progress_stream():
    from rich.console import Console

    from chaos.gameday import RunView
    from chaos.plan import Plan

    view = RunView()
    lines = [
        view.apply({"event": "session", "total": 2}),
        view.apply({"event": "test", "nodeid": "experiments/test_a.py::test_one"}),
        view.apply({"event": "phase.start", "name": "during"}),
        view.apply({"event": "fault.start", "name": "SIGKILL etcd leader m2"}),
        view.apply({"event": "fault.verified", "name": "SIGKILL etcd leader m2", "after": 0.033}),
    ]
    assert lines == [
        "2 experiment(s) to run",
        "[1/2] experiments/test_a.py::test_one",
        None,
        "    injecting: SIGKILL etcd leader m2",
        "    fault in force: SIGKILL etcd leader m2 (verified after 33 ms)",
    ]
    console = Console(record=True, width=160)
    console.print(view.render(Plan(path=Path("p.yaml"), name="weekly", experiments=("x",))))
    shown = console.export_text()
    assert "game day weekly: 0/2 done" in shown
    assert "SIGKILL etcd leader m2" in shown and "during" in shown
    view.apply({"event": "fault.end", "name": "SIGKILL etcd leader m2"})
    done = view.apply(
        {
            "event": "result",
            "nodeid": "experiments/test_a.py::test_one",
            "outcome": "failed",
            "message": "aborted: guard breached",
            "figures": {"writes time to recover [during]": 1.4},
            "units": {"writes time to recover [during]": "s"},
        }
    )
    assert done == "    FAILED: aborted: guard breached"
    console = Console(record=True, width=160)
    console.print(view.render(Plan(path=Path("p.yaml"), name="weekly", experiments=("x",))))
    shown = console.export_text()
    assert "1/2 done" in shown and "writes recovered 1.4 s into the fault" in shown
    assert "fault in force  none" in shown
