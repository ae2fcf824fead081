"""A seeded sample of crash trials (benchmarks/bench_crash.py runs many): runs of every lab
fault kind SIGKILLed at moments from preparing to reverting, then `chaos recover`; the lab must
be healthy with nothing left each time. A control shows the residue check sees a fault left
in force by a killed run, so a clean result is not a blind one."""

import pytest

from chaos.lab.residue import residue
from chaos.testing.crash_trials import FAULTS, run_trial, run_trials, unhealthy
from chaos.wait import wait_until
from tests.lab.conftest import chaos_cli

pytestmark = pytest.mark.lab


def test_a_run_killed_in_force_leaves_traces_the_check_sees(resilient_lab, tmp_path):
    trial = run_trial(resilient_lab, "partition", "in force", 0.2, tmp_path, recover=False)
    assert trial.phase == "in force"
    assert any("iptables rule(s) in chaos-m1" in line for line in trial.leftovers), trial.leftovers
    assert any(line.startswith("journaled fault lab.iptables") for line in trial.leftovers), trial.leftovers
    shown = chaos_cli("lab", "status").stdout
    assert "iptables rule(s) in chaos-m1 (a fault in force now, or left by a killed" in shown, shown[-800:]
    assert chaos_cli("recover").returncode == 0
    # its dead man's switch sees the fault gone and ends by itself within a second or so
    wait_until(
        lambda: not residue(resilient_lab) and not unhealthy(resilient_lab), timeout=10, what="a clean lab"
    )


def test_a_fault_proxy_left_by_a_killed_run_is_seen_and_recovered(resilient_lab, tmp_path):
    trial = run_trial(resilient_lab, "degrade", "in force", 0.2, tmp_path, recover=False)
    assert trial.phase == "in force"
    assert any(line.startswith("process faultproxy (pid ") for line in trial.leftovers), trial.leftovers
    assert chaos_cli("recover").returncode == 0
    wait_until(
        lambda: not residue(resilient_lab) and not unhealthy(resilient_lab), timeout=10, what="a clean lab"
    )


def test_runs_killed_at_any_moment_of_any_fault_leave_nothing_after_recover(resilient_lab, tmp_path):
    trials = run_trials(resilient_lab, list(FAULTS), per_kind=1, seed=20, workdir=tmp_path)
    left = {f"{t.kind} killed {t.delay:.2f} s after {t.moment} ({t.phase})": t.leftovers for t in trials}
    assert [t.kind for t in trials] == list(FAULTS)
    assert {k: v for k, v in left.items() if v} == {}
    # the sample is not all "after revert": kills landed while faults were being made or in force
    assert len({t.phase for t in trials} - {"after revert"}) >= 2, left
