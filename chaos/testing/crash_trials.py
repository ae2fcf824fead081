"""Crash trials on the lab: a run is SIGKILLed at a random (seeded) moment of one fault's life
— preparing, journaled and injecting, verifying, in force, reverting, or just after — then
``chaos recover`` runs, and the lab must be exactly healthy again: every member, service and
volume up and healthy, a leader, and no residue (``chaos.lab.residue``) left.

``benchmarks/bench_crash.py`` runs many; ``tests/lab/test_crash_trials.py`` a seeded sample.
Each run is a pytest session of its own on the running lab (``--platform lab``)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaos.context import default_journal
from chaos.lab.lab import Lab
from chaos.lab.residue import residue
from chaos.wait import WaitTimeout, wait_until

# one fault of each kind the lab can inject, as an experiment would write it
FAULTS = {
    "kill_master": 'kill_master(platform, pick="leader")',
    "kill_service": 'kill_service(platform, "east-inv")',
    "partition": 'partition(platform, ["m1"], ["m2", "m3"])',
    "degrade": 'degrade(platform, ["east-gw1"], "east-inv", latency=0.2)',
    "storage_full": 'fail_storage(platform, "m2", "full")',
    "storage_read_only": 'fail_storage(platform, "east-inv", "read_only")',
    "storage_io_error": 'fail_storage(platform, "m3", "io_error")',
    "storage_slow": 'fail_storage(platform, "east-inv", "slow", latency=0.3)',
    "lose_host": 'lose_host(platform, "east-host3")',
    "cold_standby": 'cold_standby(platform, "west")',
}
HOLD_S = 1.0  # how long each run keeps its fault in force
# the moments a kill aims at (what it landed in is observed, not assumed: ``Trial.phase``)
MOMENTS = ("preparing", "journaled", "verifying", "in force", "reverting")
PHASES = ("preparing", "injecting or verifying", "in force", "reverting", "after revert")

RUN = """
    import pathlib, time
    from chaos import cold_standby, degrade, fail_storage, kill_master, kill_service, lose_host, partition

    def test_one_fault(platform):
        here = pathlib.Path({here!r})
        (here / "started").write_text("")
        with {fault}:
            (here / "in-force").write_text("")
            time.sleep({hold})
            (here / "reverting").write_text("")
        (here / "reverted").write_text("")
"""


@dataclass
class Trial:
    kind: str
    moment: str  # what the kill aimed at (MOMENTS)
    delay: float  # seconds after that moment's mark
    phase: str = ""  # what it landed in (PHASES)
    recover_s: float = 0.0  # `chaos recover`
    clean_s: float = 0.0  # from the kill to a healthy lab with no residue
    leftovers: list[str] = field(default_factory=list)


def _phase(here: Path, journaled: bool) -> str:
    marks = [(here / m).exists() for m in ("in-force", "reverting", "reverted")]
    if marks[2]:
        return "after revert"
    if marks[1]:
        return "reverting"
    if marks[0]:
        return "in force"
    return "injecting or verifying" if journaled else "preparing"


def unhealthy(lab: Lab) -> list[str]:
    st = lab.status()
    out = list(st.problems)
    out += [f"member {m['name']} not healthy" for m in st.members if not m["healthy"]]
    out += [f"{s['kind']} {s['name']} not healthy" for s in st.services if not s["healthy"]]
    out += [f"volume {v['name']}: {v['problem']}" for v in st.volumes if v.get("problem")]
    if st.leader is None:
        out.append("no etcd leader")
    return out


def _await_moment(here: Path, moment: str, proc: subprocess.Popen[bytes]) -> None:
    """Return at the mark the kill aims after: the test started, its fault journaled, in
    force, or its revert begun."""
    if moment == "preparing":
        return

    def journaled() -> bool:
        return bool(default_journal().entries())

    mark: Callable[[], bool] = {
        "journaled": journaled,
        "verifying": journaled,
        "in force": (here / "in-force").exists,
        "reverting": (here / "reverting").exists,
    }[moment]
    wait_until(
        mark,
        timeout=30,
        interval=0.005,
        what=f"the run to reach {moment}",
        abort=lambda: None if proc.poll() is None else f"the run exited with {proc.returncode}",
    )


def _launch(
    kind: str, workdir: Path, *extra: str, hold: float = HOLD_S
) -> tuple[subprocess.Popen[bytes], Path]:
    here = Path(tempfile.mkdtemp(prefix=f"trial-{kind}-", dir=workdir))
    test = here / "test_trial.py"
    test.write_text(textwrap.dedent(RUN.format(here=str(here), fault=FAULTS[kind], hold=hold)))
    argv = [sys.executable, "-m", "pytest", str(test), "-p", "no:cacheprovider", "-q"]
    argv += ["--chaos-reports", str(here / "reports"), *extra]
    proc = subprocess.Popen(
        argv, cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return proc, here


def _start(
    kind: str, workdir: Path, *extra: str, hold: float = HOLD_S
) -> tuple[subprocess.Popen[bytes], Path]:
    """A pytest session of its own running one ``kind`` fault (in force for ``hold`` s),
    returned once its test started."""
    proc, here = _launch(kind, workdir, *extra, hold=hold)
    try:
        wait_until(
            (here / "started").exists,
            timeout=60,
            interval=0.005,
            what=f"the {kind} run to start its test",
            abort=lambda: None if proc.poll() is None else f"the run exited with {proc.returncode}",
        )
    except BaseException:
        _kill(proc)
        raise
    return proc, here


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _recover(trial: Trial) -> None:
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "chaos", "recover"], capture_output=True, text=True, timeout=180, check=False
    )
    trial.recover_s += time.monotonic() - t0
    if out.returncode != 0:
        trial.leftovers.append(f"chaos recover exited {out.returncode}: {(out.stderr or out.stdout)[-300:]}")


def _await_clean(lab: Lab, trial: Trial, since: float, timeout: float = 30.0) -> Trial:
    try:
        wait_until(
            lambda: not unhealthy(lab) and not residue(lab),
            timeout=timeout,
            interval=0.1,
            what="the lab healthy with nothing left",
        )
    except WaitTimeout:
        trial.leftovers += unhealthy(lab) + residue(lab)
    trial.clean_s = time.monotonic() - since
    return trial


def run_trial(
    lab: Lab, kind: str, moment: str, delay: float, workdir: Path, *, recover: bool = True
) -> Trial:
    """One trial. ``recover=False`` stops after the kill, with ``leftovers`` what the kill left
    (the control that shows the residue check sees a fault in force)."""
    trial = Trial(kind, moment, delay)
    proc, here = _start(kind, workdir)
    try:
        _await_moment(here, moment, proc)
        time.sleep(delay)  # a real process's timing: the point is a kill at that moment
    finally:
        _kill(proc)
    killed = time.monotonic()
    trial.phase = _phase(here, bool(default_journal().entries()))
    if not recover:
        trial.leftovers = unhealthy(lab) + residue(lab)
        return trial
    _recover(trial)
    return _await_clean(lab, trial, killed)


def _kill_in_force(trial: Trial, workdir: Path, *extra: str) -> float:
    """Start a run of ``trial.kind``, SIGKILL it once its fault is in force, note the phase it
    landed in; returns when it was killed."""
    proc, here = _start(trial.kind, workdir, *extra)
    try:
        _await_moment(here, "in force", proc)
    finally:
        _kill(proc)
    killed = time.monotonic()
    trial.phase = _phase(here, bool(default_journal().entries()))
    return killed


def ttl_trial(lab: Lab, kind: str, workdir: Path, ttl: float = 3.0) -> Trial:
    """The runner killed in force and no ``chaos recover`` ever run: only the fault's TTL (its
    dead man's switch) may clean up, within a little more than ``ttl``."""
    trial = Trial(kind, "in force, no recover (TTL)", 0.0)
    killed = _kill_in_force(trial, workdir, "--chaos-fault-ttl", f"{ttl:g}s")
    return _await_clean(lab, trial, killed, timeout=ttl + 30)


def killed_recover_trial(lab: Lab, kind: str, workdir: Path, delay: float) -> Trial:
    """The runner killed in force, then ``chaos recover`` itself SIGKILLed ``delay`` s into its
    work, then run again: the second must finish what the first began."""
    trial = Trial(kind, "in force, recover killed half-way", delay)
    killed = _kill_in_force(trial, workdir)
    first = subprocess.Popen(
        [sys.executable, "-m", "chaos", "recover"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    _kill(first)
    _recover(trial)
    return _await_clean(lab, trial, killed)


def two_runner_trial(lab: Lab, kinds: tuple[str, str], workdir: Path) -> Trial:
    """Two runs on one machine, each with its fault in force, both SIGKILLed; one ``chaos
    recover`` must undo both."""
    trial = Trial(" + ".join(kinds), "both in force, two runners", 0.0)
    # started together: a run waits for a healthy platform before its experiment, so one
    # started after the other's fault is in force would wait for that fault to end
    procs = [_launch(kind, workdir, hold=30.0) for kind in kinds]
    try:
        for proc, here in procs:
            _await_moment(here, "in force", proc)
    finally:
        for proc, _ in procs:
            _kill(proc)
    killed = time.monotonic()
    trial.phase = " / ".join(_phase(here, True) for _, here in procs)
    _recover(trial)
    return _await_clean(lab, trial, killed)


def plan_trials(kinds: list[str], *, per_kind: int, seed: int) -> list[tuple[str, str, float]]:
    """``per_kind`` trials of each kind, interleaved: (kind, the moment aimed at, the seeded
    delay after it). Each kind's own trials take the moments in turn, from a seeded start."""
    rng = random.Random(seed)
    # the delay after each mark: long enough to land inside the phase, short enough to stay in it
    spread = {"preparing": 0.01, "journaled": 0.0, "verifying": 0.15, "in force": HOLD_S, "reverting": 0.03}
    first = rng.randrange(len(MOMENTS))
    plan = []
    for i in range(per_kind * len(kinds)):
        # counting over all trials instead gave every trial of a kind the same moment whenever
        # the number of kinds was a multiple of the number of moments (10 kinds, 5 moments)
        moment = MOMENTS[(first + i // len(kinds) + i % len(kinds)) % len(MOMENTS)]
        plan.append((kinds[i % len(kinds)], moment, rng.uniform(0, spread[moment])))
    return plan


def run_trials(
    lab: Lab,
    kinds: list[str],
    *,
    per_kind: int,
    seed: int,
    workdir: Path,
    progress: Callable[[Trial], None] = lambda _t: None,
) -> list[Trial]:
    """The trials ``plan_trials`` plans, one after another."""
    trials = []
    for kind, moment, delay in plan_trials(kinds, per_kind=per_kind, seed=seed):
        trials.append(run_trial(lab, kind, moment, delay, workdir))
        progress(trials[-1])
    return trials
