"""The kube platform's part 2 against the API emulator over real HTTP: partitions by
NetworkPolicy (verified by probe pods, failing loudly on a CNI that does not enforce them),
Chaos Mesh NetworkChaos and IOChaos, claim fills, the storage backend taken away. Each test
checks the objects created, their labels and expiry, that the revert deletes exactly them, and
that a dry run or a refusal writes nothing."""

import calendar
import random
import time

import pytest
from hypothesis import given

from chaos import (
    ConfigError,
    DryRunPlan,
    FaultNotInEffect,
    Journal,
    NotSupported,
    PlatformError,
    RunContext,
    UnsafeFaultRefused,
    degrade,
    fail_storage,
    isolate,
    kill_service,
    partition,
)
from chaos.journal import recover
from chaos.kube import BlastRadius, connect
from chaos.kube.masters import EXPIRES, MANAGED
from chaos.kube.platform import KubePlatform, reap
from chaos.kube.topology import load_topology
from chaos.wait import wait_until
from tests.fuzzing import replaced, replacements
from tests.kube_emulator import Emulator

TOPOLOGY = """
services:
  gtm: {external: true}
  east-router: {cluster: east, namespace: chaos, labels: app=router, deployment: router, port: 80}
  east-gw: {cluster: east, namespace: chaos, labels: app=gateway, port: 8080}
  east-inv: {cluster: east, namespace: chaos, labels: app=inventory, port: 8080, claim: inventory-data}
  east-other: {cluster: east, namespace: elsewhere, labels: app=other, port: 80}
  west-router: {cluster: west, namespace: chaos, labels: app=router, port: 80}
  Inventory_Store: {cluster: east, namespace: chaos, labels: app=inventory, port: 8080}
storage_backend: {cluster: east, namespace: chaos, labels: app=storage, deployment: storage}
scale: {cluster: east, namespace: chaos, deployment: gateway}
"""


@pytest.fixture
def emu():
    e = Emulator()
    e.add_control_plane()
    e.add_deployment("chaos", "router", 2, {"app": "router"}, port=80)
    e.add_deployment("chaos", "gateway", 2, {"app": "gateway"}, port=8080)
    e.add_deployment("chaos", "inventory", 1, {"app": "inventory"}, port=8080, claim="inventory-data")
    e.add_deployment("chaos", "storage", 1, {"app": "storage"})
    e.add_claim("chaos", "inventory-data")
    return e


@pytest.fixture
def kubeconfig(emu, tmp_path):
    with emu.serving(tmp_path) as path:
        yield path


def make_platform(kubeconfig, tmp_path, *, dry_run=False, namespaces=("chaos",)):
    ctx = RunContext(journal=Journal(tmp_path / "journal.json"), rng=random.Random(0), dry_run=dry_run)
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    problems: list[str] = []
    topology = load_topology(tmp_path / "topology.yaml", {"east", "west"}, problems)
    assert problems == []
    clusters = {role: connect(role, f"emu-{role}", kubeconfig=kubeconfig) for role in ("east", "west")}
    return KubePlatform(ctx, clusters, BlastRadius(namespaces), topology)


@pytest.fixture
def plat(kubeconfig, tmp_path):
    return make_platform(kubeconfig, tmp_path)


def pod_of(emu, app):
    return next(p for p in emu.pods.values() if p["metadata"]["labels"].get("app") == app)


def admits(emu, src_app, dst_app):
    """What the emulated CNI does to a new connection between two of the workload's pods."""
    src = pod_of(emu, src_app)
    return emu._admits("chaos", src["metadata"]["labels"], pod_of(emu, dst_app))


def managed_and_expiring(obj, ttl):
    meta = obj["metadata"]
    expires = calendar.timegm(time.strptime(meta["annotations"][EXPIRES], "%Y-%m-%dT%H:%M:%SZ"))
    return meta["labels"][MANAGED] == "true" and 0 < expires - time.time() <= ttl + 5


def ours(emu):
    """Everything the framework left on the cluster: policies, chaos objects, its pods."""
    pods = [n for (ns, n), p in emu.pods.items() if p["metadata"].get("labels", {}).get(MANAGED)]
    return [*pods, *(k[2] for k in emu.objects)]


def test_a_partition_cuts_exactly_the_two_groups_and_is_verified_by_connecting(emu, plat):
    assert admits(emu, "gateway", "inventory") and admits(emu, "inventory", "gateway")
    with partition(plat, ["east-gw"], ["east-inv"], label="gateways from inventory") as fault:
        policies = emu.policies("chaos")
        assert len(policies) == 2
        assert all(managed_and_expiring(p, plat.ctx.fault_ttl) for p in policies)
        assert not admits(emu, "gateway", "inventory") and not admits(emu, "inventory", "gateway")
        assert admits(emu, "router", "inventory") and admits(emu, "router", "gateway")  # only the cut
        assert [ok for _, ok in emu.probes] == [True, True, False, False]  # before: connect; after: not
        assert fault.details()["policies"] == [f"chaos/{p['metadata']['name']}" for p in policies]
    assert ours(emu) == []
    assert admits(emu, "gateway", "inventory")
    assert plat.ctx.journal.entries() == []


def test_policy_names_are_valid_object_names_whatever_the_service_is_called(emu, plat):
    import re

    with partition(plat, ["east-gw"], ["Inventory_Store"]):
        names = [p["metadata"]["name"] for p in emu.policies()]
        assert len(names) == 2 and all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) for n in names)
        assert any(n.endswith("-inventory-store") for n in names)
    assert ours(emu) == []


def test_isolating_a_clusters_ingress_refuses_every_connection_to_its_router(emu, plat):
    with partition(plat, ["gtm"], ["east-router"]):
        [policy] = emu.policies("chaos")
        assert policy["spec"]["ingress"] == [] and policy["spec"]["podSelector"]["matchLabels"] == {
            "app": "router"
        }
        assert not admits(emu, "gateway", "router")
        assert [ok for _, ok in emu.probes] == [True, False]
    assert ours(emu) == []


def test_isolating_a_service_cuts_its_ingress_and_egress(emu, plat):
    with isolate(plat, "east-gw"):
        [policy] = emu.policies("chaos")
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"] == {"app": "gateway"}
        assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == spec["egress"] == []
        assert not admits(emu, "router", "gateway") and not admits(emu, "inventory", "gateway")
        assert not admits(emu, "gateway", "inventory") and not admits(emu, "gateway", "router")  # egress
    assert ours(emu) == [] and admits(emu, "router", "gateway") and admits(emu, "gateway", "inventory")


def test_a_cni_that_ignores_policies_fails_the_partition_loudly_and_leaves_nothing(emu, plat):
    emu.cni = "none"  # flannel: policies are stored and never enforced
    fault = partition(plat, ["east-gw"], ["east-inv"])
    fault.enforce_within = 1.0
    with pytest.raises(FaultNotInEffect, match="does not enforce NetworkPolicies"), fault:
        pass
    assert ours(emu) == []
    assert plat.ctx.journal.entries() == []


def test_a_target_that_never_answered_is_refused_before_any_policy(emu, plat):
    emu.pod_specs[("chaos", "inventory")]["port"] = 9999  # the topology's port is not served
    for key in [k for k in emu.pods if k[1].startswith("inventory-")]:
        del emu.pods[key]
    emu._reconcile("chaos", "inventory")
    with pytest.raises(PlatformError, match="do not connect even before the partition"):
        with partition(plat, ["east-gw"], ["east-inv"]):
            pass
    assert emu.policies() == [] and ours(emu) == []


@pytest.mark.parametrize(
    ("groups", "error", "message"),
    [
        (
            [["east-gw"], ["east-other"]],
            UnsafeFaultRefused,
            "namespace elsewhere is outside the blast radius",
        ),
        ([["east-router"], ["west-router"]], UnsafeFaultRefused, "cannot cut traffic between clusters"),
        ([["east-gw"], ["nonesuch"]], ConfigError, "no service 'nonesuch' in the kube topology"),
        ([["gtm"], ["gtm"]], ConfigError, "both sides are outside the clusters"),
        ([["east-gw"], ["east-inv"], ["east-router"]], ConfigError, "exactly two non-empty sides"),
    ],
)
def test_bad_partitions_are_refused_with_zero_writes(emu, plat, groups, error, message):
    with pytest.raises(error, match=message):
        with partition(plat, *groups):
            pass
    assert emu.writes() == []


def test_dry_run_resolves_the_partition_and_writes_nothing(emu, kubeconfig, tmp_path):
    plat = make_platform(kubeconfig, tmp_path, dry_run=True)
    with pytest.raises(DryRunPlan, match="would partition east-gw from east-inv"):
        with partition(plat, ["east-gw"], ["east-inv"]):
            pass
    assert emu.writes() == []


def test_without_chaos_mesh_a_degraded_link_is_not_supported_and_nothing_is_written(emu, plat):
    with pytest.raises(NotSupported, match="needs Chaos Mesh's NetworkChaos"):
        with degrade(plat, ["east-gw"], "east-inv", latency=0.2):
            pass
    assert emu.writes() == []


def test_a_degraded_link_is_a_networkchaos_deleted_on_revert(emu, plat):
    emu.chaos_mesh = True
    with degrade(plat, ["east-gw"], "east-inv", latency=0.2, loss=0.1, bandwidth_kbit=512):
        objs = [o for (pl, _, _), o in emu.objects.items() if pl == "networkchaos"]
        assert sorted(o["spec"]["action"] for o in objs) == ["bandwidth", "netem"]
        netem = next(o["spec"] for o in objs if o["spec"]["action"] == "netem")
        assert netem["delay"]["latency"] == "200ms" and netem["loss"]["loss"] == "10"
        assert netem["selector"] == {"namespaces": ["chaos"], "labelSelectors": {"app": "gateway"}}
        assert netem["target"]["selector"]["labelSelectors"] == {"app": "inventory"}
        assert netem["duration"] == f"{int(plat.ctx.fault_ttl)}s"  # Chaos Mesh ends it by itself too
        assert all(managed_and_expiring(o, plat.ctx.fault_ttl) for o in objs)
    assert ours(emu) == []
    with degrade(plat, ["east-gw"], "east-inv", reset=1.0):
        [obj] = emu.objects.values()
        assert obj["spec"]["action"] == "partition"
    with pytest.raises(ConfigError, match="cannot reset a share of connections"):
        with degrade(plat, ["east-gw"], "east-inv", reset=0.5):
            pass
    assert ours(emu) == []


def test_a_full_claim_is_a_fill_pod_on_the_claims_node_deleted_on_revert(emu, plat):
    inv = pod_of(emu, "inventory")
    with fail_storage(plat, "east-inv", "full"):
        [fill] = [
            p for p in emu.pods.values() if p["metadata"]["labels"].get("chaos.io/role") == "claim-fill"
        ]
        assert emu.full_claims() == ["inventory-data"]
        assert fill["spec"]["nodeName"] == inv["spec"]["nodeName"]
        assert managed_and_expiring(fill, plat.ctx.fault_ttl)
        assert "trap 'rm -f" in fill["spec"]["containers"][0]["command"][2]  # the file goes with the pod
    assert emu.full_claims() == [] and ours(emu) == []


def test_io_faults_are_iochaos_at_the_claims_mount_path(emu, plat):
    with pytest.raises(NotSupported, match="needs Chaos Mesh's IOChaos"):
        with fail_storage(plat, "east-inv", "slow", latency=0.2):
            pass
    assert emu.writes() == []
    emu.chaos_mesh = True
    expected = {
        ("slow", 0.2, 1.0): ("latency", None),
        ("io_error", 0.0, 1.0): ("fault", 5),
        ("read_only", 0.0, 1.0): ("fault", 30),
        ("flaky", 0.0, 0.5): ("fault", 5),
    }
    for (mode, latency, rate), (action, errno) in expected.items():
        kwargs = {"latency": latency} if latency else {"rate": rate} if rate != 1.0 else {}
        with fail_storage(plat, "east-inv", mode, **kwargs):
            [obj] = emu.objects.values()
            spec = obj["spec"]
            assert (spec["action"], spec.get("errno")) == (action, errno), mode
            assert spec["volumePath"] == "/data" and spec["containerNames"] == ["main"]
        assert ours(emu) == []
    with fail_storage(plat, "east-inv", "flaky", rate=0.5):
        assert next(iter(emu.objects.values()))["spec"]["percent"] == 50


def test_lost_storage_takes_the_backend_away_until_revert(emu, plat):
    with fail_storage(plat, "east-inv", "lost"):
        assert emu.deployments[("chaos", "storage")]["spec"]["replicas"] == 0
    assert emu.deployments[("chaos", "storage")]["spec"]["replicas"] == 1


def test_master_volumes_and_unknown_volumes_say_why(emu, plat):
    with pytest.raises(NotSupported, match="host path on its control-plane node"):
        fail_storage(plat, "etcd-node-1", "full")
    with pytest.raises(NotSupported, match="no claim"):
        fail_storage(plat, "east-gw", "full")
    assert emu.writes() == []


def test_kill_service_scales_the_named_deployment_to_zero_and_back(emu, plat):
    def routers() -> int:
        return len([p for p in emu.pods.values() if p["metadata"]["labels"].get("app") == "router"])

    with kill_service(plat, "east-router"):
        assert not [p for p in emu.active() if p["metadata"]["labels"].get("app") == "router"]
    assert emu.deployments[("chaos", "router")]["spec"]["replicas"] == 2
    # the replica set controller acts on the scale-up 50 ms later, from its own thread (a
    # fresh-clone run, at nice 19, once looked before it had)
    wait_until(lambda: routers() == 2, timeout=5, interval=0.02, what="two router pods again")


def test_a_scale_down_whose_pods_stay_ready_is_not_in_effect_and_is_scaled_back(emu, plat):
    emu.stuck_terminating = True
    fault = kill_service(plat, "east-router")
    fault.settle_within = 1.0
    with pytest.raises(FaultNotInEffect, match="2 replicas still ready"), fault:
        pass
    assert emu.deployments[("chaos", "router")]["spec"]["replicas"] == 2
    assert plat.ctx.journal.entries() == []


def test_a_crashed_partition_is_undone_by_recover(emu, plat):
    fault = partition(plat, ["east-gw"], ["east-inv"])
    fault.__enter__()  # the run dies with the policies in place
    assert len(emu.policies()) == 2
    report = recover(plat.ctx.journal, include_live=True)
    assert len(report.undone) == 6  # two policies, four probe pods (already gone: nothing to do)
    assert ours(emu) == [] and admits(emu, "gateway", "inventory")


def test_the_reaper_deletes_expired_policies_and_chaos_objects_only(emu, kubeconfig, tmp_path):
    emu.chaos_mesh = True
    for plural, name, expires in (
        ("networkpolicies", "old", "2020-01-01T00:00:00Z"),
        ("networkpolicies", "fresh", "2099-01-01T00:00:00Z"),
        ("iochaos", "old-io", "2020-01-01T00:00:00Z"),
    ):
        meta = {"name": name, "labels": {MANAGED: "true"}, "annotations": {EXPIRES: expires}}
        emu.objects[(plural, "chaos", name)] = {"metadata": {**meta, "namespace": "chaos"}, "spec": {}}
    emu.objects[("networkpolicies", "chaos", "theirs")] = {"metadata": {"name": "theirs"}, "spec": {}}
    removed = reap(connect("east", "emu-east", kubeconfig=kubeconfig), ("chaos",))
    assert sorted(removed) == ["iochaos chaos/old-io on east", "networkpolicy chaos/old on east"]
    assert sorted(k[2] for k in emu.objects) == ["fresh", "theirs"]


def test_capacity_reads_the_scaled_workload_and_its_hpa(emu, plat):
    emu.add_hpa("chaos", "gateway", current=2, desired=3, lo=2, hi=6)
    cap = plat.capacity("east")
    assert cap["ready"] == 2 and cap["replicas"] == 2
    assert cap["hpa"] == {"current": 2, "desired": 3, "min": 2, "max": 6}


def test_a_bad_topology_reports_every_problem_at_once_with_its_line(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "entry_url: shop.example.com\n"
        "colour: blue\n"
        "services:\n"
        "  a: {cluster: east, namespace: shop, labels: 'app!=x', port: 99999}\n"
        "  b: {cluster: mars, namespace: shop, labels: app=b, replicas: 3}\n"
        "  c: [1, 2]\n"
        "locust_workers: 50\n"
        "cluster_urls: {east: null, mars: 'http://m'}\n"
    )
    problems: list[str] = []
    load_topology(path, {"east"}, problems)
    text = "\n".join(problems)
    for expected in (
        f"{path}:2: unknown key 'colour'",
        f"{path}:1: entry_url 'shop.example.com': an http:// or https:// URL",
        f"{path}:4: services.a.port: 99999: should be less than or equal to 65535",
        f"{path}:4: services.a: labels 'app!=x': write key=value",
        f"{path}:5: unknown key 'services.b.replicas'",
        f"{path}:5: services.b: cluster 'mars' is not a context's role (east)",
        f"{path}:6: services.c: a mapping",
        f"{path}:7: locust_workers: 50: should be less than or equal to 8",
        f"{path}:8: cluster_urls.east None: an http:// or https:// URL",
        f"{path}:8: cluster_urls.mars: not a context's role (east)",
    ):
        assert expected in text, expected
    assert all(p.startswith(f"--kube-topology {path}:") for p in problems), problems


_VALID_TOPOLOGY = {
    "entry_url": "https://shop.example.com",
    "prometheus_url": "http://prometheus:9090",
    "services": {
        "gtm": {"external": True},
        "east-router": {"cluster": "east", "namespace": "ingress", "labels": "app=router", "port": 80},
        "east-inv": {
            "cluster": "east",
            "namespace": "shop",
            "labels": "app=inv",
            "port": 8080,
            "claim": "data",
        },
    },
    "storage_backend": {"cluster": "east", "namespace": "storage", "labels": "app=csi"},
    "scale": {"cluster": "east", "namespace": "shop", "deployment": "gateway"},
    "probe_image": "busybox:1.36",
    "locust_workers": 2,
}
_TOPOLOGY_PATHS = [(k,) for k in _VALID_TOPOLOGY] + [
    ("services", "east-router"),
    ("services", "east-router", "labels"),
    ("services", "east-router", "port"),
    ("services", "east-inv", "claim"),
    ("services", "gtm", "external"),
    ("storage_backend", "labels"),
    ("scale", "cluster"),
]


@given(pairs=replacements(_TOPOLOGY_PATHS))
def test_any_field_of_any_type_gives_a_topology_or_listed_problems(tmp_path_factory, pairs):
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "topology.yaml"
    path.write_text(yaml.safe_dump(replaced(_VALID_TOPOLOGY, pairs)))
    problems: list[str] = []
    load_topology(path, {"east", "west"}, problems)  # never raises: every problem is listed
    assert all(p.startswith(f"--kube-topology {path}") for p in problems), problems


def test_a_chaos_object_that_selected_no_pod_is_not_in_effect(emu, plat):
    """Chaos Mesh reports AllInjected over the pods it selected: over none it is vacuously
    true. A degrade whose callers are gone (scaled to zero) selects nothing; it must not pass
    as in effect, and its object is deleted."""
    emu.chaos_mesh = True
    with degrade(plat, ["east-gw"], "east-inv", latency=0.2) as fault:
        assert sum(fault.details()["pods_injected"].values()) == 2  # both gateway replicas
    emu.scale("chaos", "gateway", 0)
    nothing = "it selected no pod \\(selectors chaos: \\{'app': 'gateway'\\}"
    with pytest.raises(FaultNotInEffect, match=nothing):
        with degrade(plat, ["east-gw"], "east-inv", latency=0.2) as fault:
            pass
    assert ours(emu) == [] and plat.ctx.journal.entries() == []


def test_each_cluster_is_an_api_server_of_its_own(tmp_path):
    """With one server behind both contexts, a request for west sent through east's client
    would find the same objects and pass. With two, west's fault writes only to west, and each
    cluster's capacity is its own."""
    east, west = Emulator(), Emulator()
    for emu, cpu in ((east, 4000), (west, 16000)):
        emu.add_deployment("chaos", "router", 2, {"app": "router"}, port=80)
        emu.add_node("node-1", cpu)
    east.add_deployment("chaos", "gateway", 2, {"app": "gateway"}, port=8080)  # the topology's scale:
    with east.serving(tmp_path, west=west) as kubeconfig:
        plat = make_platform(kubeconfig, tmp_path)
        with kill_service(plat, "west-router"):
            pass
        assert [p for m, p in west.writes() if m == "DELETE" and "/pods/" in p]
        assert east.writes() == []
        assert plat.capacity("west").figures["allocatable_mcpu"] == 16000
        assert plat.capacity("east").figures["allocatable_mcpu"] == 4000


def user_policy(emu, name, spec):
    """A NetworkPolicy the cluster's owners keep in the namespace (not the framework's)."""
    emu.objects[("networkpolicies", "chaos", name)] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "chaos", "labels": {}},
        "spec": spec,
    }


@pytest.mark.parametrize(
    "spec",
    [
        # hardened namespaces deny egress by default: the probe pods cannot connect to anything
        {"podSelector": {}, "policyTypes": ["Egress"], "egress": []},
        # inventory admits the gateways on its metrics port only, not the port the topology names
        {
            "podSelector": {"matchLabels": {"app": "inventory"}},
            "ingress": [{"ports": [{"port": 9090}]}],
        },
        # inventory admits only an address block (a load balancer), no pod
        {
            "podSelector": {"matchLabels": {"app": "inventory"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}],
        },
    ],
    ids=["default-deny-egress", "another-port", "ip-block-only"],
)
def test_policies_already_in_place_that_stop_the_probes_refuse_the_partition_before_any_cut(emu, plat, spec):
    """With the owners' policies the probes cannot connect even before the cut: a cut that
    cannot be seen to take effect is refused, not reported."""
    user_policy(emu, "owners", spec)
    with (
        pytest.raises(PlatformError, match="do not connect even before the partition"),
        partition(plat, ["east-gw"], ["east-inv"]),
    ):
        pass
    assert ours(emu) == ["owners"] and plat.ctx.journal.entries() == []  # no policy or probe of ours


def test_a_policy_in_place_that_still_admits_the_other_side_makes_the_cut_not_in_effect(emu, plat):
    """Policies add up: the owners' rule admitting the namespace's pods and an address block
    still admits the gateways after ours is in place, so the cut is not in effect, loudly."""
    user_policy(
        emu,
        "owners",
        {
            "podSelector": {"matchLabels": {"app": "inventory"}},
            "ingress": [
                {"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}
            ],
        },
    )
    fault = partition(plat, ["east-gw"], ["east-inv"])
    fault.enforce_within = 1.0
    with pytest.raises(FaultNotInEffect, match="another policy admits this traffic"), fault:
        pass
    assert ours(emu) == ["owners"] and plat.ctx.journal.entries() == []


def test_traffic_from_outside_is_judged_by_address_blocks(emu):
    router = pod_of(emu, "router")
    user_policy(
        emu,
        "lb-only",
        {
            "podSelector": {"matchLabels": {"app": "router"}},
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
                    "ports": [{"port": 80}],
                }
            ],
        },
    )
    assert emu.reachable_from_outside(router, src_ip="192.0.2.10")
    assert not emu.reachable_from_outside(router, src_ip="192.0.2.200")  # excepted
    assert not emu.reachable_from_outside(router, src_ip="192.0.2.10", port=443)  # another port
    assert not admits(emu, "gateway", "router")  # pods are not in the block
