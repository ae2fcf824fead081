"""Outages the experiment did not cause still turn the verdict red: the probes judge the
system, not the fault. Right after kill_master kills the leader, something outside the
experiment freezes (SIGSTOP) the two surviving masters for 8 s; the leader-loss experiment
must fail with a steady-state violation, not pass, not error, not skip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from chaos.lab import Lab
from tests.lab.conftest import ROOT

pytestmark = pytest.mark.lab

FROZEN_S = 8.0


def freeze_survivors_when_one_dies(stop: threading.Event, frozen: list[str]) -> None:
    """Poll the lab; the moment a member's process is gone, SIGSTOP the others (processes
    the lab started, by pid), hold them for FROZEN_S, and always let them go again."""
    lab = Lab()
    while not stop.is_set():
        st = lab.state()
        members = st.members if st else ()
        dead = [m for m in members if m.pid and not m.proc.alive()]
        if dead:
            survivors = [m for m in members if m not in dead and m.proc.alive()]
            try:
                for m in survivors:
                    os.kill(m.pid, signal.SIGSTOP)
                    frozen.append(m.name)
                stop.wait(FROZEN_S)
            finally:
                for m in survivors:
                    os.kill(m.pid, signal.SIGCONT)
            return
        time.sleep(0.01)


def test_frozen_survivors_turn_the_leader_loss_experiment_red(tmp_path):
    Lab().down()
    stop = threading.Event()
    frozen: list[str] = []
    watcher = threading.Thread(target=freeze_survivors_when_one_dies, args=(stop, frozen), daemon=True)
    watcher.start()
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "experiments/test_master_ha.py::test_leader_loss_keeps_writes",
                "-p",
                "no:cacheprovider",
                "--chaos-reports",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
            check=False,
        )
    finally:
        stop.set()
        watcher.join(FROZEN_S + 5)
        Lab().down()
    assert len(frozen) == 2, out.stdout[-3000:]  # the outage really happened
    [rec] = json.loads((tmp_path / "summary.json").read_text())["experiments"]
    assert (rec["outcome"], rec["category"]) == ("failed", "steady state violated"), out.stdout[-3000:]
    assert rec["preconditions_held"] is True
    assert {"leader new leader elected [during]", "writes time to recover [during]"} <= set(rec["violated"])
