"""The experiment suite itself, run as a user runs it: it must pass on the resilient lab, and
each of its checks must go red, named, on the weakness meant to break it.

A negative control counts only when the run fails with a steady-state violation, every
precondition held, and the labels the experiment declares for that weakness are among the
checks violated: all read from summary.json, never from the output. CI runs every experiment
against at least one of its weaknesses, several weaknesses to a lab (each changing a different
part, against experiments each touched by one of them); `chaos checks --run` runs the full
matrix (every experiment, every parametrization, every weakness it names).
"""

import json
import subprocess
import sys

import pytest

from chaos.checks import Coverage, collect, record_resilient
from chaos.lab import Lab
from chaos.lab.weaknesses import WEAKNESSES, check_names
from tests.lab.conftest import ROOT

pytestmark = pytest.mark.lab

HA = "experiments/test_master_ha.py"
STORAGE = "experiments/test_master_storage.py"
INVENTORY = "experiments/test_workload_storage.py::test_workload_storage_failure_loses_nothing"
BREAKER = "experiments/test_circuit_breaking.py"
FAILOVER = "experiments/test_cross_cluster_failover.py::test_traffic_fails_over_to_west_and_back"
RESERVE = "experiments/test_reserved_capacity.py"
STEADY = "experiments/test_steady_state.py"
PARTITION = "experiments/test_master_partition.py"
EXPLORE = "experiments/test_explore_masters.py"
RETRIES = "experiments/test_retry_storm.py"
SHEDDING = "experiments/test_load_shedding.py"
CONFIG = "experiments/test_config_centre.py"
NODE_LOSS = "experiments/test_node_loss.py"
COLD = "experiments/test_cold_standby.py"
# what the lab cannot host (it runs processes, not images): its controls are Kubernetes set-ups,
# proven against the API emulator in tests/test_kube_experiments.py
KUBE_ONLY = {"experiments/test_registry_outage.py"}
# the shortest exploration: one schedule (hypothesis starts with the simplest, a leader kill),
# and whatever shrinking 15 s allows (CI time)
EXPLORE_ARGS = ("--chaos-explore-examples", "1", "--chaos-explore-budget", "15s")

# one lab each: weakness -> the experiments it is proven on here. Three labs, 14 of the
# weaknesses, one per part of the platform in each lab (CI time: about 140 s for the first, 40 s
# for the second, 70 s for the third), and the compound weakness in a test of its own below;
# the other 16 are proven by `chaos checks --run`, which also runs every parametrization.
LABS = {
    "masters slow to elect": {
        "slow-election": f"{HA}::test_leader_loss_keeps_writes "
        f"{STORAGE}::test_slow_leader_disk_moves_leadership",
        "unchecked-lb": f"{HA}::test_follower_loss_keeps_writes",
        "slow-breaker": BREAKER,
        "slow-failover": f"{FAILOVER}[kill]",
        "slow-autoscaler": RESERVE,
        "acks-failed-writes": f"{INVENTORY}[full]",
        "slow-gateway": STEADY,
        "retry-storm": RETRIES,
    },
    # the write path's experiments only: every other experiment has its control in the first lab
    "masters behind a write-back cache": {
        "write-back": f"{PARTITION} {EXPLORE} "
        f"{STORAGE}::test_majority_storage_failure_is_unavailable_not_lossy",
    },
    # the partition experiment with no other weakness of the masters (each would pre-empt this
    # one), the shedding and config-centre experiments, which touch only the gateways, and node
    # loss, which touches only where the gateways are placed
    "masters read serializably": {
        "serializable-reads": PARTITION,
        "shared-pool": SHEDDING,
        "fail-closed-config": CONFIG,
        "packed-replicas": NODE_LOSS,
        "slow-standby": COLD,
    },
}


def run_experiments(target, tmp_path, *extra):
    Lab().down()  # each run brings up its own lab and takes down only what it brought up
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *target.split(),
            "-p",
            "no:cacheprovider",
            "--chaos-reports",
            str(tmp_path),
            "--alluredir",
            str(tmp_path / "allure"),
            *EXPLORE_ARGS,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        check=False,
    )
    assert Lab().state() is None
    summary = tmp_path / "summary.json"
    assert summary.exists(), out.stdout[-3000:] + out.stderr[-2000:]
    return out, json.loads(summary.read_text())


def why(out, summary):
    """What a red run needs read first: each experiment that did not pass with its message
    (its violated checks, their numbers and readings), then the end of pytest's output. The
    output's tail alone is the list of every experiment's figures, the failure long gone."""
    bad = [
        f"{e['nodeid']}: {e['outcome']} ({e.get('category')}): {e.get('message', '')[:1500]}"
        for e in summary["experiments"]
        if e["outcome"] not in ("passed", "skipped")
    ]
    return "\n".join(bad) + "\n--- the end of pytest's output:\n" + out.stdout[-2000:]


def test_the_ci_labs_cover_every_experiment_in_labs_that_keep_weaknesses_apart():
    named = [w for lab in LABS.values() for w in lab]
    assert len(named) == len(set(named)) and set(named) <= set(WEAKNESSES)
    covered = {t.split("::")[0] for lab in LABS.values() for ts in lab.values() for t in ts.split()}
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "experiments").glob("test_*.py")}
    assert covered == shipped - KUBE_ONLY and KUBE_ONLY <= shipped
    declared = {d.nodeid: set(d.controls) for d in collect(["experiments"], ROOT)}
    for weaknesses in LABS.values():
        assert check_names(list(weaknesses)) == []  # one per part of the platform
        for weakness, targets in weaknesses.items():
            for nodeid in [n for n in declared for t in targets.split() if n == t or n.startswith(t + "::")]:
                # exactly one weakness of the lab bears on it: another would mask or pre-empt it
                assert declared[nodeid] & set(weaknesses) == {weakness}, nodeid


def test_the_suite_passes_on_resilient_and_every_check_has_a_control(tmp_path):
    # every experiment the lab can host (the registry outage is Kubernetes's: on the lab it skips,
    # tests/test_kube_experiments.py runs it); of the storage ones only one mode (io_error) and
    # the majority case, to keep CI short: every mode's effect, revert and recovery is covered by
    # tests/lab/test_storage_faults.py, and `./run experiments` and `chaos checks --run` run them all
    out, summary = run_experiments(
        "experiments", tmp_path, "-k", "(not storage or io_error or majority or slow_leader) and not registry"
    )
    assert out.returncode == 0, why(out, summary)
    assert summary["complete"] is True and summary["asked"] == len(summary["experiments"])
    by_name = {e["nodeid"].split("::")[1]: e for e in summary["experiments"]}
    assert {e["outcome"] for e in by_name.values()} == {"passed"}
    leader = by_name["test_leader_loss_keeps_writes"]["figures"]
    assert leader["writes lost (acknowledged) [all]"] == 0
    assert leader["writes time to recover [during]"] <= 5.0
    assert leader["leader new leader elected [during]"] <= 5.0
    steady = by_name["test_workload_meets_its_slos"]
    assert steady["figures"]["load availability [all]"] >= 0.995
    assert steady["evidence"]["load"]["load"]["requests"] > 300
    partitioned = by_name["test_isolated_leader_keeps_quorum_semantics"]["figures"]
    assert partitioned["minority writes share acknowledged [during]"] == 0
    assert partitioned["writes lost (acknowledged) [all]"] == 0
    assert partitioned["registers linearizable [all]"] == 1
    assert partitioned["registers stale reads [all]"] == 0
    breaker = by_name["test_breaker_protects_callers_from_a_failing_dependency"]["figures"]
    assert breaker["east breaker state max [during]"] == 2
    assert breaker["orders p99 latency [during]"] <= 1000
    for cut in ("partition", "kill"):
        failover = by_name[f"test_traffic_fails_over_to_west_and_back[{cut}]"]["figures"]
        assert failover["entry failover to west [during]"] <= 5.0
        assert failover["entry failback to east [recovery]"] <= 10.0
    majority = by_name["test_majority_storage_failure_is_unavailable_not_lossy"]["figures"]
    assert majority["writes availability [during]"] <= 0.1
    scale = by_name["test_spike_scales_out_into_the_reserve"]
    assert scale["figures"]["east replicas scaled out [during]"] <= 5.0
    assert [f["label"] for f in scale["evidence"]["findings"] if f["stage"] == "precondition"] == [
        "east replicas availability [baseline]",
        "east headroom availability [baseline]",
        "orders availability [baseline]",
        "east headroom min [baseline]",
    ]
    # every check of the hypothesis judged here is one a weakness is declared to turn red
    cov = Coverage()
    assert record_resilient(cov, summary) == []
    declared = {d.nodeid: d.controls for d in collect(["experiments"], ROOT)}
    for nodeid, labels in cov.judged.items():
        with_control = {label for ls in declared[nodeid].values() for label in ls}
        assert set(labels) <= with_control, f"{nodeid}: no negative control for {set(labels) - with_control}"
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]
    [steady_result] = [r for r in results if r["name"] == "test_workload_meets_its_slos"]
    names = {a["name"] for a in steady_result["attachments"]}
    assert {"timeline", "load stats (per second)", "evidence"} <= names
    [partition_result] = [r for r in results if r["name"] == "test_isolated_leader_keeps_quorum_semantics"]
    assert {"registers history (EDN)", "registers history"} <= {
        a["name"] for a in partition_result["attachments"]
    }


@pytest.mark.parametrize("lab", list(LABS))
def test_each_weakness_turns_the_checks_it_breaks_red(lab, tmp_path):
    """Named checks go red on their weakness while every precondition holds."""
    weaknesses = LABS[lab]
    # the reserve first: another experiment's load would warm (or trip) the reserve before it;
    # failover and shedding last: a late failback keeps the next experiment waiting for the
    # primary, and a shared pool drains the spike's queued requests for a minute after it
    named = {w: ts.split() for w, ts in weaknesses.items()}
    everything = {t for ts in named.values() for t in ts}
    targets = sorted(everything, key=lambda t: (t != RESERVE, t.startswith((FAILOVER, SHEDDING)), t))
    args = [arg for w in weaknesses for arg in ("--lab-weakness", w)]
    out, summary = run_experiments(" ".join(targets), tmp_path, *args)
    assert out.returncode == 1, why(out, summary)
    declared = {d.nodeid: d.controls for d in collect(targets, ROOT)}
    by_id = {e["nodeid"]: e for e in summary["experiments"]}
    for weakness, ts in named.items():
        for nodeid in [n for n in declared for t in ts if n == t or n.startswith(t + "::")]:
            rec = by_id[nodeid]
            where = f"{nodeid} under {weakness}: {rec['message'][:300]}"
            assert rec["category"] == "steady state violated", where
            assert rec["preconditions_held"] is True, where
            assert set(declared[nodeid][weakness]) <= set(rec["violated"]), where
    assert summary["environment"]["weaknesses"].split(", ") == sorted(weaknesses)


# the compound weakness's core as a schedule (what exploration shrinks it to: the spool disk
# fails while the masters have no leader), each of its steps alone, and the exploring
# experiment that replays it from a file. The search that finds and shrinks it is proven in
# tests/test_explore.py on the in-memory platform's compound weakness (seconds, not the
# minutes a lab search takes; `benchmarks/bench_explore.py --find compound` runs it here)
DISK = {
    "kind": "fail_storage",
    "target": "api",
    "start": 0.0,
    "duration": 3.0,
    "params": {"mode": "io_error"},
}
KILL = {"kind": "kill_master", "target": "leader", "start": 0.5, "duration": 2.0, "params": {}}
COMPOUND = f"""
import pytest

from chaos import experiment
from chaos.schedules import Schedule, run_schedule, schedules

DISK = {DISK!r}
KILL = {KILL!r}


def _writes_survive(platform, steady, run):
    writes = steady.durability(platform.masters)
    steady.baseline(seconds=1)
    run()
    steady.expect(writes.recovers(after="end", within=10.0), writes.lost() == 0)


@experiment(verifies="HA", hypothesis="no acknowledged write is lost under a kill and a failing disk")
@pytest.mark.parametrize("steps", [[DISK, KILL], [DISK], [KILL]], ids=["both", "disk-alone", "kill-alone"])
def test_writes_survive_a_fixed_schedule(platform, steady, steps):
    def run():
        with steady.phase("schedule"):
            run_schedule(platform, Schedule.from_json(steps))

    _writes_survive(platform, steady, run)


@experiment(verifies="HA", hypothesis="no acknowledged write is lost under kills and failing disks")
def test_writes_survive_kills_and_failing_disks(platform, explore):
    drawn = schedules(platform, kinds=("kill_master", "fail_storage"), volumes=["api"], max_steps=5)
    explore(drawn, lambda steady, run: _writes_survive(platform, steady, run))
"""


def test_the_compound_weakness_loses_writes_only_when_its_faults_overlap_and_replays(tmp_path):
    """Neither a masters outage nor a failing spool disk loses a write alone; both at once do,
    every precondition held, and a replay of the saved schedule fails the same way."""
    experiment = tmp_path / "test_compound.py"
    experiment.write_text(COMPOUND)
    saved = tmp_path / "core.json"
    saved.write_text(json.dumps({"schedule": [DISK, KILL]}))
    out, summary = run_experiments(
        str(experiment), tmp_path / "reports", "--lab-weakness", "compound", "--chaos-replay", str(saved)
    )
    assert out.returncode == 1, why(out, summary)
    by_id = {rec["nodeid"].split("::")[1]: rec for rec in summary["experiments"]}
    for alone in ("disk-alone", "kill-alone"):
        rec = by_id[f"test_writes_survive_a_fixed_schedule[{alone}]"]
        assert rec["outcome"] == "passed", rec["message"][:500]
        assert rec["figures"]["writes lost (acknowledged) [all]"] == 0
    for name in ("test_writes_survive_a_fixed_schedule[both]", "test_writes_survive_kills_and_failing_disks"):
        rec = by_id[name]
        assert rec["category"] == "steady state violated" and rec["preconditions_held"] is True, name
        assert rec["violated"] == ["writes lost (acknowledged) [all]"], name
        assert rec["figures"]["writes lost (acknowledged) [all]"] > 0, name
    replayed = by_id["test_writes_survive_kills_and_failing_disks"]
    assert replayed["schedule"] == [DISK, KILL]
    assert replayed["evidence"]["exploration"]["tried"] == 1
