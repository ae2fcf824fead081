"""A cold standby on Kubernetes: every deployment the topology names on the backup cluster is
scaled to zero (journaled first) and the activation scales each back; the primary is refused,
and a cluster whose deployments the topology does not name skips, saying what to give."""

import random

import pytest

from chaos import ConfigError, Journal, NotSupported, RunContext, cold_standby
from chaos.kube import BlastRadius, connect
from chaos.kube.platform import KubePlatform
from chaos.kube.topology import load_topology
from chaos.wait import wait_until
from tests.kube_emulator import Emulator

TOPOLOGY = """
services:
  east-router: {cluster: east, namespace: chaos, labels: app=router, deployment: router, port: 80}
  west-router: {cluster: west, namespace: chaos, labels: app=router-west, port: 80}
  west-gw: {cluster: west, namespace: chaos, labels: app=gateway-west, deployment: gateway-west, port: 8080}
"""


@pytest.fixture
def west():
    w = Emulator()
    w.add_deployment("chaos", "router-west", 2, {"app": "router-west"}, port=80)
    w.add_deployment("chaos", "gateway-west", 3, {"app": "gateway-west"}, port=8080)
    return w


@pytest.fixture
def kubeconfig(tmp_path, west):
    east = Emulator()
    east.add_deployment("chaos", "router", 2, {"app": "router"}, port=80)
    with east.serving(tmp_path, west=west) as path:
        yield path


def platform(kubeconfig, tmp_path, topology=TOPOLOGY):
    path = tmp_path / "topology.yaml"
    path.write_text(topology)
    problems: list[str] = []
    topo = load_topology(path, {"east", "west"}, problems)
    assert problems == []
    ctx = RunContext(journal=Journal(tmp_path / "journal.json"), rng=random.Random(0))
    clusters = {role: connect(role, f"emu-{role}", kubeconfig=kubeconfig) for role in ("east", "west")}
    return KubePlatform(ctx, clusters, BlastRadius(("chaos",)), topo)


def replicas(emu, name):
    dep = emu.deployments[("chaos", name)]
    return dep["spec"]["replicas"], dep.get("status", {}).get("readyReplicas", 0)


def test_the_standby_is_scaled_to_zero_and_activated_back(kubeconfig, tmp_path, west):
    p = platform(kubeconfig, tmp_path)
    with cold_standby(p, "west") as cold:
        assert replicas(west, "gateway-west") == (0, 0)
        assert replicas(west, "router-west")[0] == 2  # not named with a deployment: untouched
        [entry] = p.ctx.journal.entries()
        assert "back to 3" in entry.description
        cold.revert()  # the activation, inside the block
        assert west.deployments[("chaos", "gateway-west")]["spec"]["replicas"] == 3
        wait_until(lambda: replicas(west, "gateway-west") == (3, 3), timeout=10, what="west to run again")
        assert p.ctx.journal.entries() == []
    assert "gateway-west scaled to 0" in cold.describe()
    assert replicas(west, "gateway-west") == (3, 3)  # leaving the block changed nothing more


def test_the_primary_is_refused_and_an_unnamed_standby_skips(kubeconfig, tmp_path, west):
    p = platform(kubeconfig, tmp_path)
    with pytest.raises(
        ConfigError, match="east is the primary cluster; only a backup cluster can be held cold: west"
    ):
        cold_standby(p, "east")
    bare = platform(kubeconfig, tmp_path, TOPOLOGY.replace(", deployment: gateway-west", ""))
    with pytest.raises(NotSupported, match="no service of cluster west names its deployment"):
        cold_standby(bare, "west")
    assert replicas(west, "gateway-west")[0] == 3
