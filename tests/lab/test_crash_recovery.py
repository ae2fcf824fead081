"""A run SIGKILLed while a master is down leaves the fault journaled; `chaos recover` (or
the next pytest session) brings the master back."""

import subprocess
import sys

import pytest

from chaos.context import default_journal
from tests.lab.conftest import ROOT, chaos_cli, kill_a_run_when_ready

pytestmark = pytest.mark.lab

KILLED_RUN = """
    import pathlib, time
    from chaos import kill_master

    def test_hangs_with_a_master_down(platform):
        with kill_master(platform, pick="leader"):
            pathlib.Path({ready!r}).write_text("down")
            time.sleep(120)
"""


def kill_a_run_mid_fault(tmp_path):
    pid = kill_a_run_when_ready(tmp_path, KILLED_RUN)
    [entry] = default_journal().entries()
    assert entry.kind == "lab.etcd.restart"
    assert entry.owner_pid == pid
    return entry.undo["member"]


def members_running(lab):
    return {m.name: m.proc.alive() for m in lab.state().members}


def test_chaos_recover_restores_a_master_after_a_killed_run(resilient_lab, tmp_path):
    victim = kill_a_run_mid_fault(tmp_path)
    assert members_running(resilient_lab)[victim] is False
    out = chaos_cli("recover")
    assert out.returncode == 0, out.stderr
    assert f"undone: restart etcd {victim}" in out.stdout
    assert all(members_running(resilient_lab).values())
    assert resilient_lab.status().leader is not None
    assert default_journal().entries() == []
    again = chaos_cli("recover")
    assert again.returncode == 0 and again.stdout.strip() == "nothing to recover"


def test_the_next_pytest_session_recovers_before_it_starts(resilient_lab, tmp_path):
    victim = kill_a_run_mid_fault(tmp_path)
    (tmp_path / "test_noop.py").write_text("def test_noop():\n    pass\n")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_noop.py"), "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout
    assert f"chaos: recovered a fault left by a killed run: restart etcd {victim}" in out.stdout
    assert all(members_running(resilient_lab).values())
    assert default_journal().entries() == []
