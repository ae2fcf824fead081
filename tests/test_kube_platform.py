"""`--platform kube` against the API emulator (standing in for etcd leadership too): the quorum
guard, control-plane opt-in and dry run write nothing; a killed run is recovered; the reaper
deletes expired objects; what kube cannot do skips; etcd is seen as kubeadm builds it."""

import random
import subprocess
import sys
import time

import pytest

from chaos import (
    DryRunPlan,
    FaultNotInEffect,
    Journal,
    ObservationError,
    RunContext,
    Steady,
    SteadyStateViolation,
    UnsafeFaultRefused,
    kill_master,
)
from chaos.journal import recover
from chaos.kube import BlastRadius, connect
from chaos.kube.masters import EXPIRES, MANAGED
from chaos.kube.platform import KubePlatform
from tests.kube_emulator import Emulator
from tests.lab.conftest import ROOT
from tests.test_kube_experiments import figures

RADIUS = BlastRadius(("chaos",), control_plane=True)


@pytest.fixture
def emu():
    e = Emulator()
    e.add_control_plane()
    return e


@pytest.fixture
def kubeconfig(emu, tmp_path):
    with emu.serving(tmp_path) as path:
        yield path


def platform(kubeconfig, tmp_path, *, radius=RADIUS, dry_run=False):
    ctx = RunContext(journal=Journal(tmp_path / "journal.json"), rng=random.Random(0), dry_run=dry_run)
    return KubePlatform(ctx, {"east": connect("east", "emu-east", kubeconfig=kubeconfig)}, radius)


def run_pytest(target, kubeconfig, tmp_path, *extra):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            target,
            "-p",
            "no:cacheprovider",
            "--platform",
            "kube",
            "--kube-context",
            "east=emu-east",
            "--kubeconfig",
            str(kubeconfig),
            "--kube-namespace",
            "chaos",
            "--chaos-reports",
            str(tmp_path),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def failed_leader_loss(kubeconfig, tmp_path):
    """Run the kube HA experiment for a lost leader, which must fail; its output and record."""
    target = "experiments/test_master_ha.py::test_leader_loss_keeps_writes"
    out = run_pytest(target, kubeconfig, tmp_path, "--kube-control-plane")
    assert out.returncode == 1, out.stdout[-3000:]
    [experiment] = figures(tmp_path).values()
    return out, experiment


def test_without_the_control_plane_opt_in_the_experiment_fails_with_nothing_written(
    emu, kubeconfig, tmp_path
):
    out = run_pytest("experiments/test_master_ha.py::test_leader_loss_keeps_writes", kubeconfig, tmp_path)
    assert out.returncode == 1
    assert "killing an etcd member touches the control plane: opt in with --kube-control-plane" in out.stdout
    assert [p for m, p in emu.writes() if "/pods" in p] == []


def test_what_the_platform_cannot_do_skips_saying_why(emu, kubeconfig, tmp_path):
    out = run_pytest("experiments/test_master_partition.py", kubeconfig, tmp_path, "-rs")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "SKIPPED" in out.stdout and "not on platform kube" in out.stdout
    assert "the framework holds no etcd client certificates" in out.stdout
    assert [p for m, p in emu.writes() if "/pods" in p] == []


def test_the_quorum_guard_refuses_with_zero_writes(emu, kubeconfig, tmp_path):
    p = platform(kubeconfig, tmp_path)
    emu.etcd.down_until["etcd-node-3"] = time.monotonic() + 60  # one member already down
    with pytest.raises(UnsafeFaultRefused, match="would leave 1 of 3 members healthy, below quorum \\(2\\)"):
        with kill_master(p, pick="follower"):
            pass
    assert emu.writes() == []
    assert p.ctx.journal.entries() == []


def test_dry_run_resolves_the_leader_and_writes_nothing(emu, kubeconfig, tmp_path):
    p = platform(kubeconfig, tmp_path, dry_run=True)
    with pytest.raises(DryRunPlan, match="would SIGKILL etcd leader etcd-node-1 on east"), kill_master(p):
        pass
    assert emu.writes() == []


def test_a_killed_run_is_recovered_actuator_deleted_member_back(emu, kubeconfig, tmp_path):
    p = platform(kubeconfig, tmp_path)
    fault = kill_master(p, pick="etcd-node-2")
    fault.__enter__()  # the run dies with the member down and the actuator pod left
    [actuator] = [k for k in emu.pods if k[0] == "chaos"]
    pod = emu.pods[actuator]
    assert pod["metadata"]["labels"][MANAGED] == "true" and EXPIRES in pod["metadata"]["annotations"]
    assert pod["spec"]["hostPID"] is True and pod["spec"]["nodeName"] == "node-2"
    kinds = sorted(e.kind for e in p.ctx.journal.entries())
    assert kinds == ["kube.actuator.delete", "kube.etcd.killed"]
    report = recover(p.ctx.journal, include_live=True)
    assert len(report.undone) == 2
    assert not [k for k in emu.pods if k[0] == "chaos"]
    assert "etcd-node-2" in p.masters.healthy()


def test_the_reaper_deletes_only_expired_objects(emu, kubeconfig, tmp_path):
    old = {MANAGED: "true"}
    for name, expires in (("old", "2020-01-01T00:00:00Z"), ("fresh", "2099-01-01T00:00:00Z")):
        pod = emu.add_pod("chaos", name, old)
        pod["metadata"]["annotations"] = {EXPIRES: expires}
    emu.add_pod("chaos", "not-ours", {"app": "x"})
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos",
            "recover",
            "--kube-context",
            "east=emu-east",
            "--kubeconfig",
            str(kubeconfig),
            "--kube-namespace",
            "chaos",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"CHAOS_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "reaped: pod chaos/old on east" in out.stdout
    assert sorted(name for ns, name in emu.pods if ns == "chaos") == ["fresh", "not-ours"]


def test_a_clusters_file_maps_roles_to_contexts(emu, kubeconfig, tmp_path):
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text("east: emu-east\n")
    args = ["experiments/test_master_ha.py::test_follower_loss_keeps_writes", "--platform", "kube"]
    args += ["--kube-clusters", str(clusters), "--kubeconfig", str(kubeconfig), "--kube-namespace", "chaos"]
    args += ["--kube-control-plane", "--chaos-reports", str(tmp_path), "-p", "no:cacheprovider", "--dry-run"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:]
    assert "dry run: would SIGKILL etcd member etcd-node-" in out.stdout  # east resolved to its members
    bad = tmp_path / "bad.yaml"
    bad.write_text("- east\n")
    out = run_pytest("experiments/test_master_ha.py", kubeconfig, tmp_path, "--kube-clusters", str(bad))
    assert out.returncode == 4  # usage error, before anything runs
    assert f"--kube-clusters {bad}: a mapping of role: context" in out.stderr


def test_the_rbac_manifest_grants_every_call_the_platform_makes():
    """Every (API group, resource, verb) the platform uses, watches included, is granted by a
    rule of deploy/rbac.yaml for that group: a rule for the right resource in the wrong group
    grants nothing."""
    import importlib
    import re

    import yaml

    from chaos.kube.connect import API_GROUPS

    granted = set()
    for doc in yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()):
        for rule in doc.get("rules", []) if doc["kind"] in ("Role", "ClusterRole") else []:
            granted |= {
                (group, res, verb)
                for group in rule["apiGroups"]
                for verb in rule["verbs"]
                for res in rule["resources"]
            }
    modules = sorted((ROOT / "chaos" / "kube").glob("*.py"))
    source = "\n".join(p.read_text() for p in modules)
    used = set(re.findall(r'\.call\(\s*"(\w+)",\s*"([\w/]+)"', source))
    used -= {("get", "version")}  # /version is readable by every authenticated user
    assert used, "no API calls found: the pattern is stale"
    from chaos.kube.objects import KINDS, VERBS

    used |= {(verb, kind.resource) for kind in KINDS.values() for verb in VERBS}  # created generically
    declared = [importlib.import_module(f"chaos.kube.{p.stem}") for p in modules]
    rights = [r for m in declared for r in getattr(m, "RIGHTS", ())]  # etcd status, watches, events
    assert ("watch", "statefulsets") in rights and ("watch", "events") in rights
    used |= set(rights)
    unknown = sorted(res for _, res in used if res not in API_GROUPS)
    assert not unknown, f"API_GROUPS (chaos/kube/connect.py) lacks {unknown}"
    needed = {(API_GROUPS[res], res, verb) for verb, res in used}
    assert needed <= granted, f"deploy/rbac.yaml lacks {sorted(needed - granted)}"
    for group, res, verb in needed:
        assert not (group and ("", res, verb) in granted), f"{res} granted in the core group, used in {group}"


# -- seeing etcd as kubeadm and kind build it -----------------------------------------------------
# Metrics on 127.0.0.1 only, so the pod proxy is refused for a healthy member exactly as for a
# dead one: each member is read through etcdctl in its own container there, the metrics path is
# taken where they are exposed, "cannot see" (403, no answer) is told from "down", and a kill is
# proven by the member's container restarting, never by silence.


def execs(emu):
    return [p for _, p in emu.requests if p.endswith("/exec")]


def test_a_default_cluster_is_read_through_etcdctl_in_each_member(emu, kubeconfig, tmp_path):
    p = platform(kubeconfig, tmp_path)
    assert p.masters.leader() == "etcd-node-1"
    # every member refused the proxy, yet all three are healthy: the old reading said none was
    assert p.masters.healthy() == ["etcd-node-1", "etcd-node-2", "etcd-node-3"]
    assert p.masters.tolerance().value() == 1
    assert p.masters.reader.path == "exec"
    assert len(execs(emu)) >= 6
    assert p.masters.lag("etcd-node-2") == 0  # the raft index etcdctl reports


def test_where_metrics_are_exposed_they_are_read_and_nothing_is_executed(kubeconfig, emu, tmp_path):
    emu.etcd.metrics_exposed = True
    p = platform(kubeconfig, tmp_path)
    assert p.masters.leader() == "etcd-node-1" and len(p.masters.healthy()) == 3
    assert p.masters.reader.path == "metrics"
    assert execs(emu) == []


def test_a_killed_member_reads_down_with_what_its_kubelet_said(emu, kubeconfig, tmp_path):
    p = platform(kubeconfig, tmp_path)
    emu.etcd.kill("etcd-node-2")
    status = p.masters.statuses()["etcd-node-2"]
    assert not status.answering and "container is not created or running" in status.why
    assert p.masters.healthy() == ["etcd-node-1", "etcd-node-3"]


def test_without_the_right_to_look_it_is_an_observation_error_never_a_member_down(emu, kubeconfig, tmp_path):
    emu.denied.add(("create", "pods/exec", "kube-system"))
    p = platform(kubeconfig, tmp_path)
    with pytest.raises(ObservationError) as info:
        p.masters.healthy()
    text = str(info.value)
    assert "cannot observe etcd member etcd-node-1 on east" in text
    assert "HTTP 403" in text and "not evidence that it is down" in text
    assert "grant create pods/exec in kube-system" in text and "docs/kube.md#seeing-etcd" in text


def test_an_experiment_that_cannot_see_etcd_is_an_infrastructure_error_not_a_violation(
    emu, kubeconfig, tmp_path
):
    emu.denied.add(("create", "pods/exec", "kube-system"))
    out, experiment = failed_leader_loss(kubeconfig, tmp_path)
    assert experiment["category"] == "infrastructure error", experiment
    assert "VIOLATED" not in out.stdout
    assert not [k for k in emu.pods if k[0] == "chaos"]  # no actuator: the fault never started


def test_a_probe_that_cannot_look_gives_no_verdict(tmp_path):
    """A leadership probe whose every sample met a 403 would read as "no leader for the whole
    run": the verdict is an infrastructure error instead of a violated hypothesis."""

    def sampler():
        raise ObservationError("cannot observe etcd member m1: HTTP 403")

    steady = Steady(RunContext(journal=Journal(tmp_path / "j.json")))
    watched = steady.watch("leader", sampler, hz=50)
    try:
        steady.hold(seconds=0.2)
        with pytest.raises(ObservationError, match="no verdict is given") as info:
            steady.expect(watched.availability("all") >= 0.99)
    finally:
        steady.stop()
    assert not isinstance(info.value, SteadyStateViolation)


def test_a_kill_that_did_nothing_is_not_in_effect_even_where_metrics_never_answer(emu, kubeconfig, tmp_path):
    """The actuator ran but killed nothing (no host PIDs here): the member's metrics were never
    reachable, so "its metrics stopped" would have passed this kill; its container never
    restarted and etcdctl still answers, so it is not in effect and everything is reverted."""
    emu.etcd.actuator_works = False
    p = platform(kubeconfig, tmp_path)
    fault = kill_master(p, pick="etcd-node-2")
    fault.verify_within = 1.0
    with pytest.raises(FaultNotInEffect, match="etcd etcd-node-2 shows no sign of the kill"), fault:
        pass
    assert not [k for k in emu.pods if k[0] == "chaos"]  # the actuator pod is gone
    assert p.ctx.journal.entries() == []


def test_a_kill_is_proven_by_the_container_restarting(emu, kubeconfig, tmp_path):
    """Either sign is positive evidence, whichever the verification sees first: the restart
    count moved, or the member's exec says its container is down (CI once caught the kubelet
    between the two)."""
    p = platform(kubeconfig, tmp_path)
    t0 = time.monotonic()
    with kill_master(p) as fault:
        assert "etcd-node-1" not in p.masters.healthy()
    evidence = fault.details()["evidence"]
    assert evidence == "restart count 0 -> 1" or "container is not created or running" in evidence
    assert emu.etcd.restarts["etcd-node-1"] == 1
    assert time.monotonic() - t0 < 30
    assert p.masters.leader() is not None


def test_a_write_without_a_leader_waits_for_one_and_commits_after_the_client_gave_up(
    emu, kubeconfig, tmp_path
):
    """As kube-apiserver does: a write while etcd elects waits for the new leader, then
    commits. The client that gave up first must call it indeterminate, never refused or lost."""
    from chaos.durability import WriteTimeout
    from chaos.wait import wait_until

    kv = platform(kubeconfig, tmp_path).masters.kv()
    emu.etcd.kill("etcd-node-1")  # the leader: none for ELECTION_S
    with pytest.raises(WriteTimeout):
        kv.put("/chaos/t/0/k1", "v1", timeout=0.3)
    stored = wait_until(
        lambda: kv.read_prefix("/chaos/t/0/", 1.0).get("/chaos/t/0/k1"), timeout=5, what="the write to commit"
    )
    assert stored == "v1"
    emu.etcd.write_wait_s = 0.2  # a server that gives up first answers 504: still indeterminate
    emu.etcd.kill("etcd-node-2")
    with pytest.raises(WriteTimeout, match="504"):
        kv.put("/chaos/t/0/k2", "v2", timeout=2.0)


def test_a_create_api_priority_and_fairness_throttled_is_sent_again_after_its_retry_after(
    emu, kubeconfig, tmp_path
):
    """An overloaded API server (a load spike is when faults are injected) rejects requests
    429 with Retry-After before running them: the actuator's create waits and is sent again,
    and the kill goes ahead; more rejections than the retries allow fail with what was refused."""
    from chaos.kube.connect import Refused

    p = platform(kubeconfig, tmp_path)
    emu.throttle_methods = {"POST"}
    emu.throttle = 2
    t0 = time.monotonic()
    with kill_master(p, pick="etcd-node-2") as fault:
        assert fault.details()["evidence"]
    assert emu.throttle == 0 and time.monotonic() - t0 >= 2  # two waits of Retry-After: 1
    assert [r for r in emu.requests if r[1] == "429"] == [("POST", "429"), ("POST", "429")]
    emu.throttle = 10
    with pytest.raises(Refused, match="refused: create pods in namespace chaos.*Too many requests"):
        with kill_master(p, pick="etcd-node-3"):
            pass
    assert p.ctx.journal.entries() == []


def test_a_write_already_stored_by_an_earlier_attempt_is_acknowledged(emu, kubeconfig, tmp_path):
    """A client retry of a create the server had stored is answered 409 AlreadyExists: the key
    is that write's alone, so the write is acknowledged, not refused."""
    kv = platform(kubeconfig, tmp_path).masters.kv()
    kv.put("/chaos/t/1/k", "v", timeout=1.0)
    kv.put("/chaos/t/1/k", "v", timeout=1.0)  # the same write again: 409, acknowledged
    assert ("POST", "/api/v1/namespaces/chaos/configmaps") in emu.requests
    assert kv.read_prefix("/chaos/t/1/", 1.0) == {"/chaos/t/1/k": "v"}


@pytest.mark.parametrize(
    ("weakness", "violated"),
    [
        # etcd tuned for a flaky WAN: the election outlasts the experiment's 5 s bound
        ("slow-election", ["leader new leader elected [during]", "writes time to recover [during]"]),
        # a write-back cache in front of etcd: the writes of the leader's last two seconds die with it
        ("write-back", ["writes lost (acknowledged) [all]"]),
    ],
)
def test_the_kube_ha_experiment_goes_red_on_a_weak_control_plane(
    emu, kubeconfig, tmp_path, weakness, violated
):
    """The kube HA verdict's negative controls: every precondition holds (three members, one to
    spare, the leader seen and killed), and the hypothesis itself fails, naming the checks."""
    if weakness == "slow-election":
        emu.etcd.election_s = 8.0
    else:
        emu.etcd.write_back_s = 2.0
    out, experiment = failed_leader_loss(kubeconfig, tmp_path)
    assert experiment["category"] == "steady state violated", experiment
    assert experiment["figures"]["masters failure tolerance [all]"] == 1  # the precondition held
    for name in violated:
        assert f"[VIOLATED] {name.rsplit(' [', 1)[0]}" in out.stdout, (name, out.stdout[-3000:])
    assert emu.etcd.restarts["etcd-node-1"] == 1  # the fault ran: the leader was killed once


def test_a_control_plane_with_one_member_is_a_precondition_not_met_never_a_verdict(tmp_path):
    """One etcd member has none to spare: the HA experiment stops before any fault and says
    the platform cannot give it a meaning. It proves nothing about HA either way, so it is not a
    negative control (the slow-election and write-back ones above are)."""
    from tests.kube_emulator import EtcdSim

    emu = Emulator()
    emu.etcd = EtcdSim(members=1)
    emu.add_control_plane()
    with emu.serving(tmp_path) as kubeconfig:
        out, experiment = failed_leader_loss(kubeconfig, tmp_path)
    assert experiment["category"] == "precondition not met", experiment
    assert experiment["preconditions_held"] is False and experiment["evidence"]["faults"] == []
    assert (
        "masters failure tolerance" in experiment["message"]
        and "hypothesis was not judged" in experiment["message"]
    )
    assert "VIOLATED] leader" not in out.stdout  # nothing was said about elections
    assert emu.etcd.restarts["etcd-node-1"] == 0  # no fault
    assert not [k for k in emu.pods if k[0] == "chaos"]
