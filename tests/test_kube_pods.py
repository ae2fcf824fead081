"""The kube platform (part 1) against the API emulator, over real HTTP with the official
client unpatched: selection, blast radius with zero writes, RBAC messages, pod kill and
eviction, scale to zero and back, crash + `chaos recover`."""

import random
import subprocess
import sys

import pytest

from chaos import ConfigError, EnvironmentNotReady, Journal, PlatformError, RunContext, UnsafeFaultRefused
from chaos.journal import recover
from chaos.kube import BlastRadius, KillPods, ScaleDeployment, connect, select_pods
from chaos.kube.connect import Forbidden
from chaos.wait import wait_until
from tests.kube_emulator import Emulator

SHOP = BlastRadius(("shop",))


@pytest.fixture
def emu():
    return Emulator()


@pytest.fixture
def cluster(emu, tmp_path):
    emu.add_deployment("shop", "gateway", 3, {"app": "gateway"})
    emu.add_deployment("shop", "inventory", 1, {"app": "inventory"})
    emu.add_deployment("kube-system", "coredns", 2, {"k8s-app": "kube-dns"})
    with emu.serving(tmp_path) as kubeconfig:
        yield connect("east", "emu-east", kubeconfig=kubeconfig)


@pytest.fixture
def ctx(tmp_path):
    return RunContext(journal=Journal(tmp_path / "journal.json"), rng=random.Random(3))


def test_selection_honours_selectors_and_the_seed(cluster):
    picks = [
        [
            t.name
            for t in select_pods(cluster, "shop", SHOP, random.Random(seed), labels="app=gateway", count=2)
        ]
        for seed in (1, 1, 2)
    ]
    assert picks[0] == picks[1]  # same seed, same pods
    assert all(name.startswith("gateway-") for name in picks[0] + picks[2])
    with pytest.raises(UnsafeFaultRefused, match="0 running pod\\(s\\) in shop match labels 'app=nothing'"):
        select_pods(cluster, "shop", SHOP, random.Random(0), labels="app=nothing")
    [node] = select_pods(
        cluster, "shop", SHOP, random.Random(0), fields="spec.nodeName=node-1", labels="app=inventory"
    )
    assert node.kind == "Pod" and node.uid


def test_set_based_selectors_work_and_a_malformed_one_is_the_servers_400(cluster, emu):
    both = select_pods(cluster, "shop", SHOP, random.Random(0), labels="app in (gateway, inventory)", count=4)
    assert sorted(t.name.split("-")[0] for t in both) == ["gateway", "gateway", "gateway", "inventory"]
    [rest] = select_pods(cluster, "shop", SHOP, random.Random(0), labels="app notin (gateway)")
    assert rest.name.startswith("inventory-")
    with pytest.raises(PlatformError, match="HTTP 400.*unable to parse requirement: 'app in \\(gateway'"):
        select_pods(cluster, "shop", SHOP, random.Random(0), labels="app in (gateway")
    with pytest.raises(PlatformError, match='HTTP 400.*field label not supported: "spec.hostname"'):
        select_pods(cluster, "shop", SHOP, random.Random(0), fields="spec.hostname=x")
    assert emu.writes() == []


def test_outside_the_blast_radius_nothing_is_written(cluster, emu, ctx):
    with (
        pytest.raises(UnsafeFaultRefused, match="namespace kube-system is the control plane"),
        KillPods(
            ctx, cluster, "kube-system", BlastRadius(("shop", "kube-system")), labels="k8s-app=kube-dns"
        ),
    ):
        pass
    with (
        pytest.raises(UnsafeFaultRefused, match="namespace payments is outside the blast radius \\(shop\\)"),
        KillPods(ctx, cluster, "payments", SHOP),
    ):
        pass
    with (
        pytest.raises(UnsafeFaultRefused, match="outside the blast radius"),
        ScaleDeployment(ctx, cluster, "billing", "api", SHOP),
    ):
        pass
    assert emu.writes() == [] and emu.requests == []  # refused before a single request
    assert ctx.journal.entries() == []


def test_dry_run_resolves_targets_and_writes_nothing(cluster, emu, tmp_path):
    from chaos import DryRunPlan

    dry = RunContext(journal=Journal(tmp_path / "j.json"), rng=random.Random(0), dry_run=True)
    with (
        pytest.raises(DryRunPlan, match="would delete \\(grace 0\\) gateway-"),
        KillPods(dry, cluster, "shop", SHOP, labels="app=gateway"),
    ):
        pass
    assert emu.writes() == [] and [m for m, _ in emu.requests] == ["GET"]


def test_rbac_refusal_names_verb_resource_and_namespace(cluster, emu, ctx):
    emu.denied.add(("delete", "pods", "shop"))
    with pytest.raises(Forbidden) as err, KillPods(ctx, cluster, "shop", SHOP, labels="app=gateway"):
        pass
    assert "forbidden: delete pods in namespace shop on cluster east (context emu-east)" in str(err.value)
    assert "deploy/rbac.yaml" in str(err.value)
    assert len(emu.pods) == 6  # nothing was deleted


def test_pod_kill_is_journaled_with_uid_and_the_controller_recreates(cluster, emu, ctx):
    before = {
        p["metadata"]["uid"] for p in emu.pods.values() if p["metadata"]["labels"] == {"app": "gateway"}
    }
    with KillPods(ctx, cluster, "shop", SHOP, labels="app=gateway") as fault:
        [entry] = ctx.journal.entries()
        assert entry.kind == "kube.pod.killed"
        assert entry.undo["uid"] in before and entry.undo["cluster"] == "east" and entry.undo["kind"] == "Pod"
        # replaced by the ReplicaSet controller, which acts 50 ms later from its own thread (on a
        # busy machine, later still: asserting at once failed under load)
        gateway = {"app": "gateway"}
        wait_until(lambda: len(emu.active(gateway)) == 3, timeout=5, interval=0.02, what="3 gateways")
        after = {p["metadata"]["uid"] for p in emu.pods.values() if p["metadata"]["labels"] == gateway}
        assert len(after) == 3 and entry.undo["uid"] not in after
        assert [m for m, _ in emu.writes()] == ["DELETE"]
    assert fault.details()["targets"][0]["name"].startswith("gateway-")
    assert ctx.journal.entries() == []


def test_eviction_honours_the_disruption_budget(cluster, emu, ctx):
    emu.add_pdb("shop", "inventory", {"app": "inventory"}, min_available=1)
    with (
        pytest.raises(UnsafeFaultRefused, match="would violate its PodDisruptionBudget"),
        KillPods(ctx, cluster, "shop", SHOP, labels="app=inventory", evict=True),
    ):
        pass
    assert sum(1 for p in emu.pods.values() if p["metadata"]["labels"] == {"app": "inventory"}) == 1
    with KillPods(ctx, cluster, "shop", SHOP, labels="app=gateway", evict=True):
        assert [p for m, p in emu.writes() if m == "POST"][-1].endswith("/eviction")


def test_scale_to_zero_and_back(cluster, emu, ctx):
    with ScaleDeployment(ctx, cluster, "shop", "gateway", SHOP) as fault:
        assert emu.deployments[("shop", "gateway")]["spec"]["replicas"] == 0
        assert not emu.active({"app": "gateway"})  # the rest Terminating
        assert fault.describe() == "scale deployment shop/gateway on east to 0 (from 3)"
    assert emu.deployments[("shop", "gateway")]["spec"]["replicas"] == 3
    # the emulator's replica set controller acts on the scale-up from its own thread, later
    wait_until(
        lambda: len([p for p in emu.pods.values() if p["metadata"]["labels"] == {"app": "gateway"}]) == 3,
        timeout=5,
        interval=0.02,
        what="three gateway pods again",
    )


def test_a_killed_run_is_recovered_from_the_journal(cluster, emu, ctx):
    fault = ScaleDeployment(ctx, cluster, "shop", "gateway", SHOP)
    fault.__enter__()  # the run dies here: no __exit__
    assert emu.deployments[("shop", "gateway")]["spec"]["replicas"] == 0
    report = recover(ctx.journal, include_live=True)
    assert [e.description for e in report.undone] == ["scale shop/gateway on east back to 3"]
    assert emu.deployments[("shop", "gateway")]["spec"]["replicas"] == 3
    assert ctx.journal.entries() == []


def test_connection_errors_are_clear(tmp_path, emu):
    with pytest.raises(EnvironmentNotReady, match="no kubeconfig at .*missing: set KUBECONFIG"):
        connect("east", "x", kubeconfig=tmp_path / "missing")
    with emu.serving(tmp_path) as kubeconfig:
        with pytest.raises(
            ConfigError, match="unknown context 'prod' \\(role east\\).*contexts are: emu-east, emu-west"
        ):
            connect("east", "prod", kubeconfig=kubeconfig)
        cluster = connect("east", "emu-east", kubeconfig=kubeconfig, timeout=1)
    # the emulator is gone now: the API server cannot be reached
    cluster.api.configuration.retries = 0
    with pytest.raises(Exception, match="cannot reach the API server of east at http://127.0.0.1:"):
        select_pods(cluster, "shop", SHOP, random.Random(0))


def test_importing_the_kube_platform_stays_cheap():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, chaos.kube; print('kubernetes' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"  # the client is imported when a cluster is connected


def test_a_refusal_in_one_api_group_names_that_group(cluster, emu):
    """RBAC grants a resource of one API group: the advice names the group the server named,
    since a rule for networkpolicies in the core group grants nothing."""
    from chaos.kube.objects import create

    emu.denied.add(("create", "networkpolicies.networking.k8s.io", "shop"))
    policy = {"metadata": {"name": "cut"}, "spec": {"podSelector": {}}}
    with pytest.raises(Forbidden) as err:
        create(cluster, "NetworkPolicy", "shop", policy)
    assert 'apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ["create"]' in str(
        err.value
    )
    assert emu.policies() == []


def _gateway_uids(emu):
    return {p["metadata"]["uid"] for p in emu.active({"app": "gateway"})}


@pytest.mark.parametrize(
    "case",
    [
        ({"max_unavailable": 1}, 0, True),  # 3 healthy, 2 demanded
        ({"max_unavailable": 1}, 1, False),  # one already unready: the budget is spent
        ({"min_available": "50%"}, 0, True),  # 50 % of 3 rounds up to 2
        ({"min_available": "67%"}, 0, False),  # 2.01 rounds up to 3: none may go
        ({"max_unavailable": "34%"}, 1, True),  # 1.02 rounds up to 2 unavailable: one more may go
    ],
)
def test_a_budget_counts_only_healthy_pods_and_rounds_percentages_up(cluster, emu, ctx, case):
    """As the eviction API judges: ``maxUnavailable`` as well as ``minAvailable``, counts or
    percentages of the pods the budget selects (rounded up), and only ready pods count healthy."""
    budget, unready, allowed = case
    emu.scale("shop", "gateway", 3 - unready)  # three gateways in all, ``unready`` of them not up
    for i in range(unready):
        pod = emu.add_pod("shop", f"gateway-unready-{i}", {"app": "gateway"}, phase="Pending")
        pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    emu.add_pdb("shop", "gateway", {"app": "gateway"}, **budget)
    before = _gateway_uids(emu)
    fault = KillPods(ctx, cluster, "shop", SHOP, labels="app=gateway", evict=True)
    if allowed:
        with fault:
            pass
        assert len(before - _gateway_uids(emu)) == 1
    else:
        with pytest.raises(UnsafeFaultRefused, match="needs \\d healthy pods"), fault:
            pass
        assert _gateway_uids(emu) == before
        assert ctx.journal.entries() == []


def test_evictions_are_judged_before_any_is_made(cluster, emu, ctx):
    """Two pods under two budgets, one of which forbids its eviction: nothing is evicted
    (each eviction is tried as a dry run first), rather than one pod gone and a refusal."""
    emu.add_pdb("shop", "gateway", {"app": "gateway"}, max_unavailable=1)
    emu.add_pdb("shop", "inventory", {"app": "inventory"}, min_available=1)
    emu.scale("shop", "gateway", 1)  # the two targets: one gateway, one inventory
    before = {p["metadata"]["uid"] for p in emu.active()}
    for seed in range(4):  # either order of the two targets
        ctx.rng.seed(seed)
        with (
            pytest.raises(UnsafeFaultRefused, match="inventory"),
            KillPods(ctx, cluster, "shop", SHOP, labels="app in (gateway, inventory)", count=2, evict=True),
        ):
            pass
    assert {p["metadata"]["uid"] for p in emu.active()} == before


def test_a_pod_under_two_budgets_is_refused_saying_how_to_fix_it(cluster, emu, ctx):
    emu.add_pdb("shop", "gateway", {"app": "gateway"}, max_unavailable=1)
    emu.add_pdb("shop", "all-of-shop", {}, max_unavailable="50%")
    before = _gateway_uids(emu)
    with (
        pytest.raises(UnsafeFaultRefused, match="more than one PodDisruptionBudget.*disjoint.*evict=True"),
        KillPods(ctx, cluster, "shop", SHOP, labels="app=gateway", evict=True),
    ):
        pass
    assert _gateway_uids(emu) == before and ctx.journal.entries() == []


def _owned_pod(ctx, cluster, name, *, grace, finalizers=()):
    from chaos.kube.masters import managed_metadata
    from chaos.kube.objects import Owned, create_journaled

    owned = Owned(ctx)
    meta = managed_metadata(name, 60, {"chaos.io/role": "claim-fill"})
    meta["finalizers"] = list(finalizers)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    create_journaled(owned, cluster, "Pod", "shop", body, grace=grace)
    return owned


def test_releasing_a_pod_ends_when_it_is_gone_not_when_it_starts_terminating(cluster, emu, ctx):
    """A pod keeps running through its grace period (a fill pod keeps filling, a Locust pod
    keeps loading): the revert is over when the pod is gone."""
    emu.terminating_s = 0.5
    owned = _owned_pod(ctx, cluster, "chaos-fill-1", grace=30)
    assert ("shop", "chaos-fill-1") in emu.pods
    owned.release()
    assert ("shop", "chaos-fill-1") not in emu.pods  # not Terminating: gone
    assert ctx.journal.entries() == []


def test_a_pod_held_by_a_finalizer_is_reported_and_left_for_recover(cluster, emu, ctx):
    from chaos import RollbackError

    owned = _owned_pod(ctx, cluster, "chaos-fill-2", grace=0, finalizers=["example.com/backup"])
    with pytest.raises(
        RollbackError, match=r"still there after 10 s: its finalizers \['example.com/backup'\] hold"
    ):
        owned.release()
    assert emu.pods[("shop", "chaos-fill-2")]["metadata"]["deletionTimestamp"]
    [entry] = ctx.journal.entries()  # kept for the next attempt
    emu.finalize("shop", "chaos-fill-2")  # the finalizer's controller did its work
    report = recover(ctx.journal, include_live=True)
    assert [e.id for e in report.undone] == [entry.id]
    assert ("shop", "chaos-fill-2") not in emu.pods and ctx.journal.entries() == []
