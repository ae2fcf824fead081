"""Network faults on the real lab: reachability matches the partition shape, revert removes
exactly the fault's rules, bad input changes nothing, and a fault outlives neither a killed
run (`chaos recover`) nor its time-to-live (the dead man's switch)."""

import time

import pytest

from chaos import (
    ConfigError,
    bridge,
    cut_cluster,
    degrade,
    isolate,
    partition,
)
from chaos.context import default_journal
from chaos.lab.iptables import rules_tagged
from chaos.lab.nsexec import can_connect
from chaos.wait import wait_until
from tests.lab.conftest import chaos_cli, kill_a_run_when_ready

pytestmark = pytest.mark.lab


def reach(plat, a, b):
    st = plat.lab.state()
    nodes = {m.name: (m.address, 2380) for m in st.members} | {
        s.name: (s.address, s.port) for s in st.services
    }
    return can_connect(f"chaos-{a}", *nodes[b])


def chaos_rules(plat):
    return sum(len(rules_tagged(f"chaos-{n}")) for n in plat.nodes())


def test_isolating_a_node_cuts_it_from_every_other_and_revert_heals(plat):
    with isolate(plat, "m1"):
        assert not reach(plat, "m1", "m2") and not reach(plat, "m3", "m1") and not reach(plat, "gtm", "m1")
        # the isolated node's own rules cut both directions: no other namespace is touched
        assert [n for n in plat.nodes() if rules_tagged(f"chaos-{n}")] == ["m1"]
        assert reach(plat, "m2", "m3")
    assert reach(plat, "m1", "m2") and reach(plat, "m3", "m1")
    assert chaos_rules(plat) == 0
    assert plat.ctx.journal.entries() == []


def test_minority_from_majority(plat):
    with partition(plat, ["m1"], ["m2", "m3"]):
        assert not reach(plat, "m1", "m2") and not reach(plat, "m1", "m3")
        assert reach(plat, "m2", "m3")
        assert reach(plat, "m1", "gtm")  # only the named groups are cut apart
    assert chaos_rules(plat) == 0


def test_bridge_keeps_the_middle_node_connected_to_both_sides(plat):
    with bridge(plat, ["m1"], "m2", ["m3"]):
        assert not reach(plat, "m1", "m3") and not reach(plat, "m3", "m1")
        assert reach(plat, "m1", "m2") and reach(plat, "m2", "m3")
    assert chaos_rules(plat) == 0


def test_a_whole_cluster_is_cut_from_the_traffic_manager(plat):
    with cut_cluster(plat, "east"):
        assert not reach(plat, "gtm", "east-router") and not reach(plat, "gtm", "east-gw1")
        assert reach(plat, "gtm", "west-router")
        assert reach(plat, "east-router", "east-gw1")  # the cluster itself still works
    assert chaos_rules(plat) == 0


def test_revert_removes_only_its_own_rules(plat):
    outer = partition(plat, ["m1"], ["m3"])
    with outer:
        with partition(plat, ["m2"], ["gtm"]):
            assert not reach(plat, "m2", "gtm")
        assert reach(plat, "m2", "gtm")
        assert not reach(plat, "m1", "m3")  # the outer fault's rules are untouched
    assert chaos_rules(plat) == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: partition(p, ["m1"], ["m9"]), "unknown node 'm9'"),
        (lambda p: partition(p, ["m1"], []), "needs at least one node"),
        (lambda p: partition(p, ["m1", "m2"], ["m2", "m3"]), "on both sides of a cut"),
        (lambda p: partition(p, ["m1"]), "at least two groups"),
        (lambda p: degrade(p, "east-gw1", "east-inv", latency=99), "latency=99"),
        (lambda p: degrade(p, "east-gw1", "east-inv", loss=1.5), "loss=1.5"),
        (lambda p: degrade(p, "east-gw1", "east-inv", latency=0.1, jitter=0.5), "jitter=0.5"),
        (lambda p: degrade(p, "east-gw1", "nowhere", latency=0.1), "unknown destination 'nowhere'"),
        (lambda p: degrade(p, "east-gw1", "east-inv"), "needs at least one of"),
        (lambda p: degrade(p, "east-gw1", "east-inv", latency=0.1, reset=0.5), "too few would get through"),
    ],
)
def test_bad_input_is_refused_before_any_rule_is_added(plat, make, message):
    with pytest.raises(ConfigError, match=message), make(plat):
        pass
    assert chaos_rules(plat) == 0
    assert plat.ctx.journal.entries() == []


def test_latency_is_added_on_the_link_and_verified(plat):
    with degrade(plat, ["east-gw1", "east-gw2"], "east-inv", latency=0.3, jitter=0.02) as fault:
        added = fault.details()["measured_s"] - fault.details()["baseline_s"]
        assert 0.24 <= added <= 0.36
        assert reach(plat, "west-gw1", "west-inv")  # other links untouched
    assert chaos_rules(plat) == 0
    assert not any("faultproxy" in open(f"/proc/{pid}/cmdline").read() for pid in _pids_in("chaos-east-inv"))


def test_resets_and_loss_and_bandwidth(plat):
    with degrade(plat, "east-gw1", "east-inv", reset=1.0):
        assert not reach(plat, "east-gw1", "east-inv")
        assert reach(plat, "east-gw2", "east-inv")
    with degrade(plat, "east-gw1", "east-inv", loss=0.5, bandwidth_kbit=2000):
        assert len(rules_tagged("chaos-east-inv")) == 1
    assert chaos_rules(plat) == 0


def _pids_in(ns):
    from chaos.lab.net import pids_in_netns

    return pids_in_netns(ns)


KILLED_RUN = """
    import pathlib, time
    from chaos import partition

    def test_partitioned(platform):
        with partition(platform, ["m1"], ["m2", "m3"]):
            pathlib.Path({ready!r}).write_text("in force")
            time.sleep(120)
"""


def start_and_kill_a_partitioned_run(tmp_path, *extra):
    kill_a_run_when_ready(tmp_path, KILLED_RUN, *extra)


def test_chaos_recover_removes_every_rule_of_a_killed_run(plat, tmp_path):
    start_and_kill_a_partitioned_run(tmp_path)
    assert chaos_rules(plat) > 0
    assert not reach(plat, "m1", "m2")
    out = chaos_cli("recover")
    assert out.returncode == 0, out.stderr
    assert "undone: remove rules of partition" in out.stdout
    assert chaos_rules(plat) == 0
    assert reach(plat, "m1", "m2")
    assert default_journal().entries() == []


def test_the_dead_mans_switch_removes_a_fault_when_its_ttl_passes(plat, tmp_path):
    start_and_kill_a_partitioned_run(tmp_path, "--chaos-fault-ttl", "3s")
    assert chaos_rules(plat) > 0
    t0 = time.monotonic()
    wait_until(lambda: chaos_rules(plat) == 0, timeout=30, interval=0.2, what="the TTL to remove the rules")
    assert time.monotonic() - t0 < 10
    assert reach(plat, "m1", "m2")
    assert default_journal().entries() == []


def test_resets_reach_the_connections_a_latency_fault_redirects(plat):
    """With latency in force a new connection arrives at the destination redirected to the fault
    proxy's port: resets (and loss) must match the port it was sent to, or a link asked for
    both would only be slow. Verification samples connections until one is refused."""
    fault = degrade(plat, ["east-gw1"], "east-inv", latency=0.05, reset=0.2)
    with fault:
        sampled = fault.details()["sampled"]
        assert 1 <= sampled["refused"] <= sampled["tried"]
    assert chaos_rules(plat) == 0
