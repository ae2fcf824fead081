"""The experiments in experiments/ on `--platform kube` against the API emulator: Locust runs
as master and worker pods (the emulator runs their Locust for real); the cross-cluster
failover and reserved-capacity experiments run unchanged against a global traffic manager and
an autoscaler standing in for the data plane (tests/kube_dataplane.py), each with a negative
control; what the emulator cannot stand in for skips saying why."""

import json
import random
import subprocess
import sys

import pytest

from chaos import Journal, RunContext
from chaos.kube import BlastRadius, connect
from chaos.kube.locust import KubeLoad
from chaos.kube.masters import MANAGED
from chaos.load import LOADTESTS_DIR, LoadSpec
from chaos.wait import wait_until
from tests.kube_dataplane import GlobalEntry, RequestRateAutoscaler, cluster_ingress
from tests.kube_emulator import Emulator
from tests.lab.conftest import ROOT

# real-time experiments with SLO bounds: beside other tests on two cores they would miss them
pytestmark = pytest.mark.serial

TOPOLOGY = """
entry_url: {entry}
services:
  gtm: {{external: true}}
  east-router: {{cluster: east, namespace: chaos, labels: app=router, deployment: router, port: 80}}
  west-router: {{cluster: west, namespace: chaos, labels: app=router-west, port: 80}}
scale: {{cluster: east, namespace: chaos, deployment: gateway}}
locust_workers: 2
"""


@pytest.fixture
def emu():
    e = Emulator()
    e.add_control_plane()
    e.add_deployment("chaos", "router", 2, {"app": "router"}, port=80)
    # capacity: 4 CPUs; gateways request 250m each; placeholder pods hold 1 CPU in reserve
    for node in ("node-1", "node-2"):
        e.add_node(node, 2000)
    e.add_priority_class("overprovisioning", -10)
    e.add_deployment("chaos", "gateway", 2, {"app": "gateway"}, port=8080, cpu_millis=250)
    e.add_deployment(
        "chaos", "reserve", 4, {"app": "reserve"}, cpu_millis=250, priority_class="overprovisioning"
    )
    e.add_hpa("chaos", "gateway", current=2, desired=2, lo=2, hi=6)
    return e


@pytest.fixture
def west():
    """The west cluster: an API server of its own, whose routers take the traffic east loses."""
    w = Emulator()
    w.add_deployment("chaos", "router-west", 2, {"app": "router-west"}, port=80)
    return w


@pytest.fixture
def kubeconfig(emu, west, tmp_path):
    with emu.serving(tmp_path, west=west) as path:
        yield path


def run_experiments(target, kubeconfig, tmp_path, entry, *extra, ingress="", services=TOPOLOGY):
    tmp_path.mkdir(exist_ok=True)
    topology = tmp_path / "topology.yaml"
    # east's own ingress, past the traffic manager (the node-loss experiment probes it)
    own = f"cluster_urls: {{east: {ingress}}}\n" if ingress else ""
    topology.write_text(services.format(entry=entry) + own)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *target.split(),
        "-p",
        "no:cacheprovider",
        "-rs",
        "--platform",
        "kube",
    ]
    argv += ["--kube-context", "east=emu-east", "--kube-context", "west=emu-west"]
    argv += ["--kubeconfig", str(kubeconfig)]
    argv += ["--kube-namespace", "chaos", "--kube-topology", str(topology), "--chaos-reports", str(tmp_path)]
    return subprocess.run([*argv, *extra], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def figures(tmp_path):
    summary = json.loads((tmp_path / "summary.json").read_text())
    return {e["nodeid"].split("::")[-1]: e for e in summary["experiments"]}


def test_a_distributed_load_runs_as_pods_and_reports_into_the_timeline(emu, kubeconfig, tmp_path):
    ctx = RunContext(journal=Journal(tmp_path / "journal.json"), rng=random.Random(0))
    cluster = connect("east", "emu-east", kubeconfig=kubeconfig)
    with GlobalEntry(emu).serving() as entry:
        # 6 s: the workers take 2-3 s to connect and spawn their users on a loaded 2-core
        # machine, and CI once saw 10 requests in a 4 s run
        spec = LoadSpec(LOADTESTS_DIR / "workload.py", entry, users=4, duration=6, user_rps=2)
        with KubeLoad(ctx, spec, cluster, BlastRadius(("chaos",)), workers=2) as run:
            pods = {n: p for (ns, n), p in emu.pods.items() if ns == "chaos" and n.startswith(run.id)}
            assert sorted(p["metadata"]["labels"]["chaos.io/role"] for p in pods.values()) == [
                "locust-master",
                "locust-worker",
                "locust-worker",
            ]
            assert all(p["metadata"]["labels"][MANAGED] == "true" for p in pods.values())
            assert all(p["spec"]["activeDeadlineSeconds"] <= 6 + 120 for p in pods.values())
            assert ("chaos", run.id) in emu.configmaps  # the locustfile and shape
            run.wait()  # the master stops the run by itself at --run-time
        assert run.points and max(p.users for p in run.points) == 4
        assert run.requests() >= 12 and run.failures() == 0
        assert run.availability().value() == 1.0 and run.latency(50).value() is not None
    assert not [n for (ns, n) in emu.pods if n.startswith(run.id)] and ("chaos", run.id) not in emu.configmaps
    assert ctx.journal.entries() == []
    assert all(p.poll() is not None for p in emu.procs.values())  # every Locust process ended


def test_a_gtm_without_health_checks_and_an_autoscaler_without_room_fail_their_experiments(
    emu, west, kubeconfig, tmp_path
):
    """The negative controls on kube: each verdict must be able to fail."""
    gtm = GlobalEntry(emu, west=west, fragile=True)
    with gtm.serving() as entry, RequestRateAutoscaler(emu, gtm, target=15, lo=2, hi=2) as hpa:
        out = run_experiments(
            "experiments/test_cross_cluster_failover.py::test_traffic_fails_over_to_west_and_back[kill] "
            "experiments/test_reserved_capacity.py",
            kubeconfig,
            tmp_path,
            entry,
        )
    assert out.returncode == 1, out.stdout[-3000:]
    assert [e["outcome"] for e in figures(tmp_path).values()] == ["failed", "failed"]
    assert "[VIOLATED] entry failover to west" in out.stdout  # the GTM kept sending traffic east
    assert "[VIOLATED] east replicas scaled out" in out.stdout
    assert max(rate for _, rate, _ in hpa.history) >= 30  # the spike came; there was nowhere to go
    # the router scaled back (the emulator's replica set controller acts from its own thread)
    wait_until(
        lambda: len([n for (ns, n) in emu.pods if n.startswith("router-")]) == 2,
        timeout=5,
        interval=0.02,
        what="two router pods again",
    )
    assert [p for p in emu.pods.values() if MANAGED in p["metadata"]["labels"]] == []  # nothing else left


def test_every_experiment_runs_or_skips_saying_why(emu, west, kubeconfig, tmp_path):
    """The whole experiments/ directory, unchanged: HA through the actuator pod, failover
    through a NetworkPolicy partition and a scaled-down router, scale-out into the reserve, with
    Locust as pods; the rest skip with the reason the emulator cannot stand in for them. The
    storage experiments run one mode each (every mode skips for the same reason); the exploring
    one draws kills only (etcd members on the host network cannot be partitioned by policy).
    East and west are two API servers: the traffic manager fails over to west's own routers."""
    gtm = GlobalEntry(emu, west=west)
    with (
        gtm.serving() as entry,
        cluster_ingress(emu) as ingress,
        RequestRateAutoscaler(emu, gtm, target=15, lo=2, hi=6),
    ):
        out = run_experiments(
            "experiments",
            kubeconfig,
            tmp_path,
            entry,
            "--kube-control-plane",
            "-k",
            "not storage or io_error",
            "--chaos-explore-examples",
            "1",
            ingress=ingress,
        )
    assert out.returncode == 0, out.stdout[-4000:]
    results = figures(tmp_path)
    passed = sorted(n for n, e in results.items() if e["outcome"] == "passed")
    assert passed == [
        "test_follower_loss_keeps_writes",
        "test_leader_loss_keeps_writes",
        "test_losing_a_host_keeps_east_serving_and_replaces_its_replicas",  # node-1 cordoned, pods gone
        "test_masters_survive_generated_fault_schedules",  # kills only: partitions of etcd are not for kube
        "test_spike_scales_out_into_the_reserve",
        "test_traffic_fails_over_to_west_and_back[kill]",
        "test_traffic_fails_over_to_west_and_back[partition]",
    ]
    leader = results["test_leader_loss_keeps_writes"]["figures"]
    assert (
        leader["leader new leader elected [during]"] <= 5.0
        and leader["writes lost (acknowledged) [all]"] == 0
    )
    assert leader["writes time to recover [during]"] <= 5.0
    # killed once by the HA experiment and once per explored schedule, and back each time
    assert emu.etcd.restarts["etcd-node-1"] >= 1
    for cut in ("partition", "kill"):
        f = results[f"test_traffic_fails_over_to_west_and_back[{cut}]"]["figures"]
        assert 0 < f["entry failover to west [during]"] <= 5.0
        assert f["entry failback to east [recovery]"] <= 10.0
        assert f["load failed requests [all]"] <= 20
    scale = results["test_spike_scales_out_into_the_reserve"]["figures"]
    assert scale["east headroom min [baseline]"] == 0.875
    assert scale["east replicas scaled out [during]"] <= 5.0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["environment"]["platform"] == "kube"
    assert "v1.31.0-emulator" in summary["environment"]["context east"]
    posted = [p for m, p in emu.writes() if m == "POST"]
    assert posted.count("/apis/networking.k8s.io/v1/namespaces/chaos/networkpolicies") == 1  # the partition
    reasons = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED [")]
    assert reasons and all("not on platform kube: " in r for r in reasons)
    for why in ("no Prometheus URL", "host path on its control-plane node", "platform.inventory"):
        assert any(why in r for r in reasons), why
    # nothing of ours is left: no policy, no probe, actuator or Locust pod, no locustfile
    assert emu.policies() == [] and [p for p in emu.pods.values() if MANAGED in p["metadata"]["labels"]] == []
    assert not [k for k in emu.configmaps if k[1].startswith("chaos-locust-")]


def test_losing_a_node_spares_spread_replicas_and_fails_packed_ones(emu, kubeconfig, tmp_path):
    """The node-loss experiment on Kubernetes: the node with the most gateway pods is cordoned
    and its pods deleted; spread over two nodes, the service keeps serving and the lost pod is
    replaced on the other node. Packed on one node (every replica pinned there), all go at once
    and the replacements wait, Pending, for the node to come back: each check named goes red."""
    node_loss = "experiments/test_node_loss.py"
    with cluster_ingress(emu) as ingress:
        spread = run_experiments(node_loss, kubeconfig, tmp_path / "spread", "http://unused", ingress=ingress)
    assert spread.returncode == 0, spread.stdout[-3000:]
    [rec] = json.loads((tmp_path / "spread" / "summary.json").read_text())["experiments"]
    assert rec["outcome"] == "passed"
    assert rec["figures"]["east replicas elsewhere replaced [during]"] <= 5.0
    assert emu.nodes["node-1"]["spec"]["unschedulable"] is False  # uncordoned on revert
    patched = [p for m, p in emu.writes() if m == "PATCH" and p.startswith("/api/v1/nodes/")]
    assert patched == ["/api/v1/nodes/node-1"] * 2  # cordon, uncordon

    packed = Emulator()
    packed.placement = "packed"
    packed.add_control_plane()
    for node in ("node-1", "node-2"):
        packed.add_node(node, 2000)
    packed.add_deployment("chaos", "gateway", 2, {"app": "gateway"}, port=8080, cpu_millis=250)
    (tmp_path / "p").mkdir()
    with packed.serving(tmp_path / "p") as config, cluster_ingress(packed) as ingress:
        out = run_experiments(node_loss, config, tmp_path / "packed", "http://unused", ingress=ingress)
    assert out.returncode == 1, out.stdout[-3000:]
    [rec] = json.loads((tmp_path / "packed" / "summary.json").read_text())["experiments"]
    assert rec["category"] == "steady state violated" and rec["preconditions_held"] is True
    assert set(rec["violated"]) >= {
        "east replicas hosts min [baseline]",
        "east replicas elsewhere replaced [during]",
        "east orders availability [during]",
    }
    assert not packed.nodes["node-1"]["spec"]["unschedulable"]


REGISTRY_TOPOLOGY = """
entry_url: {entry}
services:
  registry: {{cluster: east, namespace: chaos, labels: app=registry, deployment: registry, port: 5000}}
  gateway: {{cluster: east, namespace: chaos, labels: app=gateway, deployment: gateway, port: 8080}}
scale: {{cluster: east, namespace: chaos, deployment: gateway}}
"""


def registry_cluster(tmp_path, *, pull_policy="IfNotPresent", strategy="RollingUpdate", mirror=False):
    """Two nodes, the clusters' own registry, and two gateway replicas spread over the nodes,
    their image cached where they run. ``mirror``: the nodes pull from elsewhere, so taking the
    registry down does not stop a pull."""
    e = Emulator()
    e.add_control_plane()
    for node in ("node-1", "node-2"):
        e.add_node(node, 2000)
    e.add_deployment("chaos", "registry", 1, {"app": "registry"}, port=5000)
    e.registry = None if mirror else ("chaos", "registry")
    e.progress_deadline_s = 3.0
    e.add_deployment(
        "chaos", "gateway", 2, {"app": "gateway"}, port=8080, image="shop/gateway:1", pull_policy=pull_policy
    )
    e.deployments[("chaos", "gateway")]["spec"]["strategy"] = {"type": strategy}
    return e


def run_registry_outage(emu, tmp_path):
    tmp_path.mkdir()
    with emu.serving(tmp_path) as config:
        out = run_experiments(
            "experiments/test_registry_outage.py",
            config,
            tmp_path,
            "http://unused",
            services=REGISTRY_TOPOLOGY,
        )
    return out, figures(tmp_path)


def test_a_registry_outage_spares_cached_images_and_stalls_a_rollout_whole(tmp_path):
    """Without its registry, a cluster restarts replicas from the images its nodes cached and a
    new version's rollout stalls, reported stuck, with the old version serving as at rest. Each
    check goes red on the set-up that breaks it: imagePullPolicy Always (nothing starts without
    a pull), a Recreate rollout (the old replicas go first), and nodes that pull from a mirror
    the outage does not reach (the rollout completes: nothing was stuck)."""
    lost = "test_lost_replicas_start_again_from_cached_images"
    rolled = "test_a_rollout_without_the_registry_is_stuck_not_half_applied"
    emu = registry_cluster(tmp_path)
    out, results = run_registry_outage(emu, tmp_path / "resilient")
    assert out.returncode == 0, out.stdout[-3000:]
    assert results[lost]["figures"]["replicas replaced from cached images [during]"] <= 10.0
    stuck = results[rolled]["figures"]
    assert stuck["rollout reported stuck [during]"] <= 10.0
    assert stuck["new version ready max [all]"] == 0
    assert stuck["ready replicas while rolling out min [during]"] == 2
    dep = emu.deployments[("chaos", "gateway")]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/gateway:1"  # rolled back
    assert emu.deployments[("chaos", "registry")]["spec"]["replicas"] == 1  # and the registry back

    weak = registry_cluster(tmp_path, pull_policy="Always", strategy="Recreate")
    out, results = run_registry_outage(weak, tmp_path / "always-recreate")
    assert out.returncode == 1, out.stdout[-3000:]
    for name, violated in (
        (lost, ["replicas replaced from cached images [during]"]),
        (rolled, ["ready replicas while rolling out min [during]"]),
    ):
        rec = results[name]
        assert rec["category"] == "steady state violated" and rec["preconditions_held"] is True, name
        assert rec["violated"] == violated, (name, rec["violated"])

    mirrored = registry_cluster(tmp_path, mirror=True)
    out, results = run_registry_outage(mirrored, tmp_path / "mirror")
    assert out.returncode == 1, out.stdout[-3000:]
    assert results[lost]["outcome"] == "passed"
    assert results[rolled]["violated"] == ["rollout reported stuck [during]", "new version ready max [all]"]


def test_a_dry_run_of_every_experiment_writes_nothing(emu, kubeconfig, tmp_path):
    with GlobalEntry(emu).serving() as entry:
        out = run_experiments("experiments", kubeconfig, tmp_path, entry, "--kube-control-plane", "--dry-run")
    assert out.returncode == 0, out.stdout[-4000:]
    assert "dry run: would partition gtm from east-router" in out.stdout
    assert "dry run: would scale deployment chaos/router on east to 0" in out.stdout
    assert emu.writes() == []
