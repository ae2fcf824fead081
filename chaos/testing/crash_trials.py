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
}
HOLD_S = 1.0  # how long each run keeps its fault in force
# the moments a kill aims at (what it landed in is observed, not assumed: ``Trial.phase``)
MOMENTS = ("preparing", "journaled", "verifying", "in force", "reverting")
PHASES = ("preparing", "injecting or verifying", "in force", "reverting", "after revert")

RUN = """
    import pathlib, time
    from chaos import degrade, fail_storage, kill_master, kill_service, partition

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


def run_trial(
    lab: Lab, kind: str, moment: str, delay: float, workdir: Path, *, recover: bool = True
) -> Trial:
    """One trial. ``recover=False`` stops after the kill, with ``leftovers`` what the kill left
    (the control that shows the residue check sees a fault in force)."""
    trial = Trial(kind, moment, delay)
    here = Path(tempfile.mkdtemp(prefix=f"trial-{kind}-", dir=workdir))
    test = here / "test_trial.py"
    test.write_text(textwrap.dedent(RUN.format(here=str(here), fault=FAULTS[kind], hold=HOLD_S)))
    argv = [sys.executable, "-m", "pytest", str(test), "-p", "no:cacheprovider", "-q"]
    argv += ["--chaos-reports", str(here / "reports")]
    proc = subprocess.Popen(
        argv, cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_until(
            (here / "started").exists,
            timeout=60,
            interval=0.005,
            what=f"the {kind} run to start its test",
            abort=lambda: None if proc.poll() is None else f"the run exited with {proc.returncode}",
        )
        _await_moment(here, moment, proc)
        time.sleep(delay)  # a real process's timing: the point is a kill at that moment
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = time.monotonic()
    trial.phase = _phase(here, bool(default_journal().entries()))
    if not recover:
        trial.leftovers = unhealthy(lab) + residue(lab)
        return trial
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "chaos", "recover"], capture_output=True, text=True, timeout=180, check=False
    )
    trial.recover_s = time.monotonic() - t0
    if out.returncode != 0:
        trial.leftovers.append(f"chaos recover exited {out.returncode}: {(out.stderr or out.stdout)[-300:]}")
    try:
        wait_until(
            lambda: not unhealthy(lab) and not residue(lab),
            timeout=30,
            interval=0.1,
            what="the lab healthy with nothing left",
        )
    except WaitTimeout:
        trial.leftovers += unhealthy(lab) + residue(lab)
    trial.clean_s = time.monotonic() - killed
    return trial


def run_trials(
    lab: Lab,
    kinds: list[str],
    *,
    per_kind: int,
    seed: int,
    workdir: Path,
    progress: Callable[[Trial], None] = lambda _t: None,
) -> list[Trial]:
    """``per_kind`` trials of each kind, interleaved, each aimed at a moment (in turn, from a
    seeded start) with a seeded delay after it."""
    rng = random.Random(seed)
    # the delay after each mark: long enough to land inside the phase, short enough to stay in it
    spread = {"preparing": 0.01, "journaled": 0.0, "verifying": 0.15, "in force": HOLD_S, "reverting": 0.03}
    first = rng.randrange(len(MOMENTS))
    plan = []
    for i in range(per_kind * len(kinds)):
        moment = MOMENTS[(first + i) % len(MOMENTS)]
        plan.append((kinds[i % len(kinds)], moment, rng.uniform(0, spread[moment])))
    trials = []
    for kind, moment, delay in plan:
        trials.append(run_trial(lab, kind, moment, delay, workdir))
        progress(trials[-1])
    return trials
