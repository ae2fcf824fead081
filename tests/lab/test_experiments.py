"""The experiment suite itself, run as a user runs it: it must pass on the resilient lab
and fail, saying why, on the fragile one (or when its SLO is set tighter than the workload
can meet)."""

import json
import subprocess
import sys

import pytest

from chaos.lab import Lab
from tests.lab.conftest import ROOT

pytestmark = pytest.mark.lab


def run_experiments(target, tmp_path, *extra, profile="resilient"):
    Lab().down()  # each run brings up its own lab and takes down only what it brought up
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *target.split(),
            "--lab-profile",
            profile,
            "-p",
            "no:cacheprovider",
            "--chaos-reports",
            str(tmp_path),
            "--alluredir",
            str(tmp_path / "allure"),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert Lab().state() is None
    summary = tmp_path / "summary.json"
    assert summary.exists(), out.stdout[-3000:] + out.stderr[-2000:]
    return out, json.loads(summary.read_text())


def test_the_suite_passes_on_resilient(tmp_path):
    # every experiment; of the storage ones (one per mode) only `full`, to keep CI short:
    # every mode's effect, revert and recovery is covered by tests/lab/test_storage_faults.py,
    # and `./run experiments` runs them all
    out, summary = run_experiments("experiments", tmp_path, "-k", "not storage or full or majority")
    assert out.returncode == 0, out.stdout[-4000:]
    by_name = {e["nodeid"].split("::")[1]: e for e in summary["experiments"]}
    assert {e["outcome"] for e in by_name.values()} == {"passed"}
    leader = by_name["test_leader_loss_keeps_writes"]["figures"]
    assert leader["writes lost (acknowledged) [all]"] == 0
    assert leader["leader changes [during]"] >= 1
    assert leader["writes time to recover [during]"] <= 5.0
    steady = by_name["test_workload_meets_its_slos"]
    assert steady["figures"]["load availability [all]"] >= 0.995
    assert steady["evidence"]["load"]["load"]["requests"] > 300
    partitioned = by_name["test_isolated_leader_keeps_quorum_semantics"]["figures"]
    assert partitioned["minority writes share acknowledged [during]"] == 0
    assert partitioned["writes lost (acknowledged) [all]"] == 0
    breaker = by_name["test_breaker_protects_callers_from_a_failing_dependency"]["figures"]
    assert breaker["east breaker state max [during]"] == 2
    assert breaker["orders p99 latency [during]"] <= 1000
    for cut in ("partition", "kill"):
        failover = by_name[f"test_traffic_fails_over_to_west_and_back[{cut}]"]["figures"]
        assert failover["entry failover to west [during]"] <= 5.0
        assert failover["entry failback to east [recovery]"] <= 10.0
    master_disk = by_name["test_leader_storage_failure_keeps_writes[full]"]["figures"]
    assert master_disk["writes lost (acknowledged) [all]"] == 0
    workload_disk = by_name["test_workload_storage_failure_loses_nothing[full]"]["figures"]
    assert workload_disk["reservations lost (acknowledged) [all]"] == 0
    majority = by_name["test_majority_storage_failure_is_unavailable_not_lossy"]["figures"]
    assert majority["writes availability [during]"] <= 0.1
    scale = by_name["test_spike_scales_out_into_the_reserve"]["figures"]
    assert scale["east headroom min [baseline]"] >= 0.2
    assert scale["east replicas scaled out [during]"] <= 5.0
    assert scale["east replicas max [during]"] == 5
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]
    [steady_result] = [r for r in results if r["name"] == "test_workload_meets_its_slos"]
    names = {a["name"] for a in steady_result["attachments"]}
    assert {"timeline", "load stats (per second)", "evidence"} <= names


STORAGE_ON_FRAGILE = [
    f"experiments/test_{file}.py::test_{name}[{mode}]"
    for file, name in (
        ("workload_storage", "workload_storage_failure_loses_nothing"),
        ("master_storage", "leader_storage_failure_keeps_writes"),
    )
    for mode in ("read_only", "slow")
]


def test_every_verdict_fails_on_fragile_naming_the_cause(tmp_path):
    """One fragile lab for every negative control: each experiment must fail, and say why."""
    out, summary = run_experiments(
        " ".join(
            [
                "experiments/test_master_ha.py",
                "experiments/test_circuit_breaking.py",
                "experiments/test_cross_cluster_failover.py",
                "experiments/test_master_partition.py",
                "experiments/test_reserved_capacity.py",
                *STORAGE_ON_FRAGILE,
                "experiments/test_master_storage.py::test_majority_storage_failure_is_unavailable_not_lossy",
            ]
        ),
        tmp_path,
        profile="fragile",
    )
    assert out.returncode == 1
    assert [e["outcome"] for e in summary["experiments"]] == ["failed"] * 12, out.stdout[-3000:]
    # HA: one master, none to spare
    assert "masters failure tolerance (all, t=start–now): 0 members < 1 members" in out.stdout
    assert "healthy=1; quorum=1" in out.stdout
    assert "[VIOLATED] east breaker state max (during" in out.stdout  # no breaker: it never opens
    assert "[VIOLATED] entry failover to west (during" in out.stdout  # no backup cluster
    assert "[VIOLATED] east headroom min (baseline" in out.stdout  # no reserve, no autoscaler
    # write-behind: the read-only volume's refusals are acknowledged, never answered 503
    assert "[VIOLATED] reservations time until a write is refused with 503 (during" in out.stdout
    # reads go to the slow disk instead of memory
    assert "[VIOLATED] stock p99 latency (during" in out.stdout


def test_steady_state_goes_red_when_the_slo_is_tighter_than_the_workload(tmp_path):
    out, summary = run_experiments(
        "experiments/test_steady_state.py", tmp_path, "--chaos-slo", "p99_ms=0.001"
    )
    assert out.returncode == 1
    assert "[VIOLATED] load p99 latency (all, t=start–now):" in out.stdout
    assert "> 0.001 ms" in out.stdout
    [rec] = summary["experiments"]
    assert rec["outcome"] == "failed"
    assert rec["figures"]["load p99 latency [all]"] > 0.001
