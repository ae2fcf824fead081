import subprocess
import sys
from pathlib import Path

import pytest

from chaos import (
    DryRunPlan,
    FaultNotInEffect,
    Journal,
    RollbackError,
    RunContext,
    UnsafeFaultRefused,
)
from tests.helpers import UNDO_LOG, WORLD, SetKeys


@pytest.fixture
def ctx(tmp_path):
    WORLD.clear()
    UNDO_LOG.clear()
    return RunContext(journal=Journal(tmp_path / "journal.json"))


def test_fault_journals_before_changing_and_reverts_on_exit(ctx):
    WORLD["a"] = "orig"
    with SetKeys(ctx, ["a", "b"]) as f:
        assert WORLD == {"a": "fault", "b": "fault"}
        assert f.journal_seen_before_change == [True, True]
        assert len(ctx.journal.entries()) == 2
    assert WORLD == {"a": "orig"}
    assert UNDO_LOG == ["b", "a"]  # newest first
    assert ctx.journal.entries() == []
    spans = ctx.tl.spans("fault")
    assert len(spans) == 1 and spans[0].end is not None


def test_fault_reverts_when_the_experiment_fails(ctx):
    with pytest.raises(ZeroDivisionError), SetKeys(ctx, ["a"]):
        1 / 0  # noqa: B018
    assert WORLD == {}
    assert ctx.journal.entries() == []


CTRL_C = """
import signal, sys
from pathlib import Path
from chaos import Journal, RunContext
from tests.helpers import WORLD, SetKeys
# a run started in the background (nohup, `cmd &` in a script) inherits SIGINT ignored, and
# Python keeps an inherited SIG_IGN: give it the handler a terminal's Ctrl-C meets
signal.signal(signal.SIGINT, signal.default_int_handler)
ctx = RunContext(journal=Journal(Path(sys.argv[1])))
try:
    with SetKeys(ctx, ["a"]):
        signal.raise_signal(signal.SIGINT)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted; world:", WORLD, "journal:", ctx.journal.entries())
"""


def test_fault_reverts_on_ctrl_c(tmp_path):
    # a fresh interpreter with Python's own Ctrl-C handler, whatever this run inherited
    out = subprocess.run(
        [sys.executable, "-c", CTRL_C, str(tmp_path / "journal.json")],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip() == "interrupted; world: {} journal: []", out.stderr


def test_ctrl_c_half_way_through_inject_reverts_what_was_done(ctx):
    with pytest.raises(KeyboardInterrupt), SetKeys(ctx, ["a", "b", "c"], interrupt_after=1):
        pass
    assert WORLD == {}
    assert UNDO_LOG == ["b", "a"]
    assert ctx.journal.entries() == []


def test_fault_not_in_effect_is_reverted_and_raised(ctx):
    with pytest.raises(FaultNotInEffect), SetKeys(ctx, ["a"], effect=False):
        pytest.fail("the body must not run when the fault did not take effect")
    assert ctx.journal.entries() == []
    assert UNDO_LOG == ["a"]


def test_refused_fault_changes_nothing(ctx):
    with pytest.raises(UnsafeFaultRefused), SetKeys(ctx, ["a"], refuse=True):
        pass
    assert WORLD == {}
    assert not ctx.journal.path.exists() or ctx.journal.entries() == []
    assert ctx.tl.spans("fault") == []


def test_every_undo_runs_and_failures_are_gathered(ctx):
    f = SetKeys(ctx, ["a", "b", "c"], fail_undo={"a", "c"})
    with pytest.raises(RollbackError, match="2 undo step") as info, f:
        pass
    assert len(info.value.__cause__.exceptions) == 2
    assert UNDO_LOG == ["c", "b", "a"]
    f.revert()  # idempotent: nothing left to undo in this process
    assert UNDO_LOG == ["c", "b", "a"]
    # the failed steps stay journaled so `chaos recover` can try again
    assert sorted(e.undo["key"] for e in ctx.journal.entries()) == ["a", "c"]


def test_revert_is_idempotent(ctx):
    f = SetKeys(ctx, ["a"])
    f.__enter__()
    f.revert()
    f.revert()
    f.__exit__(None, None, None)
    assert UNDO_LOG == ["a"]


def test_a_fault_is_entered_once(ctx):
    f = SetKeys(ctx, ["a"])
    with f:
        pass
    with pytest.raises(RuntimeError, match="only once"), f:
        pass


def test_dry_run_resolves_and_changes_nothing(tmp_path):
    ctx = RunContext(journal=Journal(tmp_path / "journal.json"), dry_run=True)
    WORLD.clear()
    with pytest.raises(DryRunPlan, match="would set a"), SetKeys(ctx, ["a"]):
        pass
    assert WORLD == {}
    assert not ctx.journal.path.exists()


def test_faults_together_prepare_all_first_and_revert_as_one_newest_first(ctx):
    from chaos.fault import Together

    # a part that refuses: nothing changes at all, not even the parts before it
    refusing = Together(
        ctx, [SetKeys(ctx, ["a"]), SetKeys(ctx, ["b"], refuse=True)], kind="host", description="x"
    )
    with pytest.raises(UnsafeFaultRefused), refusing:
        pass
    assert WORLD == {} and ctx.journal.entries() == []
    # both in force at once, one fault on the timeline, reverted newest step first
    with Together(
        ctx, [SetKeys(ctx, ["a"]), SetKeys(ctx, ["b", "c"])], kind="host", description="lose h"
    ) as f:
        assert WORLD == {"a": "fault", "b": "fault", "c": "fault"}
        assert len(ctx.journal.entries()) == 3
        assert [p["fault"] for p in f.details()["parts"]] == ["set a", "set b,c"]
    assert WORLD == {} and UNDO_LOG == ["c", "b", "a"]
    assert [s.name for s in ctx.tl.spans("fault")] == ["lose h"]
    # a part not in effect fails the whole, and what every part changed is reverted
    UNDO_LOG.clear()
    broken = Together(
        ctx, [SetKeys(ctx, ["a"]), SetKeys(ctx, ["b"], effect=False)], kind="host", description="y"
    )
    with pytest.raises(FaultNotInEffect), broken:
        pass
    assert WORLD == {} and UNDO_LOG == ["b", "a"] and ctx.journal.entries() == []
