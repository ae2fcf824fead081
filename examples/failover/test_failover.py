"""Active / standby across two clusters (``topology.yaml`` beside this file): east serves
behind the global HAProxy; when east's balancer is cut off or dies, west must serve the global
entry within T and east must take it back after the repair. With west held cold (its replicas
stopped), activating it when east is lost must bring the entry back from west within T, at
west's full capacity. ``chaos checks --run --topology examples/failover examples/failover``
proves the ``unchecked`` variant (no health checks on the global balancer) turns the failover
red, ``late-failback`` (40 good checks before a cluster is trusted again) the failback and
``slow-standby`` (west's replicas warm up for 12 s when started again) the activation.

What it found where the system is not resilient: a backup server without health checks is
never used. HAProxy sends to a backup only when every active server is marked down, and
without ``check`` nothing marks east down, so with east's balancer gone every request through
the global entry fails (503) until east is back.
"""

import pytest

from chaos import Platform, Steady, answered, cold_standby, experiment, kill_service, partition

FAILOVER_S = 3.0  # two failed checks 200 ms apart, and the 300 ms each may wait
FAILBACK_S = 5.0
FIRST_SERVED_S = 8.0
FULL_CAPACITY_S = 10.0


@experiment(
    verifies="failover",
    hypothesis="with east's balancer cut off from the global one or dead, the global entry serves "
    "from west within 3 s, and from east again within 5 s of the repair",
    controls={
        "unchecked": ["entry failover to west [during]"],
        "late-failback": ["entry failback to east [recovery]"],
    },
)
@pytest.mark.parametrize("cut", ["partition", "kill"])
def test_traffic_fails_over_to_west_and_back(platform: Platform, steady: Steady, cut: str) -> None:
    entry = steady.http("entry", platform.entry_url + "/", hz=20)
    # west's own entry, bypassing the global one: the standby must be able to serve at all
    west = steady.http("west", platform.cluster_url("west") + "/", hz=5)
    steady.baseline(seconds=2)
    steady.require(
        entry.share(answered(cluster="east"), "baseline", label="served by east") >= 0.99,
        west.availability("baseline") >= 0.99,
    )
    fault = (
        partition(platform, ["gtm"], ["east-lb"], label="east cut off")
        if cut == "partition"
        else kill_service(platform, "east-lb")
    )
    with fault:
        failover = entry.recovers(within=FAILOVER_S, where=answered(cluster="west"), label="failover to west")
        steady.wait_for(failover)
        steady.hold(seconds=1, phase="failed over")
    failback = entry.recovers(
        within=FAILBACK_S, after="end", where=answered(cluster="east"), label="failback to east"
    )
    steady.wait_for(failback)
    steady.hold(seconds=1, phase="recovery")
    steady.expect(failover, failback)


@experiment(
    verifies="failover",
    hypothesis="with west held cold, when east's balancer dies and west is activated, the global "
    "entry serves from west within 8 s of the loss and west runs both its replicas within 10 s",
    controls={
        "unchecked": ["entry first served by west [during]"],
        "slow-standby": ["entry first served by west [during]", "west replicas at full capacity [during]"],
    },
)
def test_a_cold_standby_takes_traffic_within_t_of_the_primary_loss(
    platform: Platform, steady: Steady
) -> None:
    cold = cold_standby(platform, "west")
    full = platform.capacity("west")["ready"]  # both its replicas, ready
    entry = steady.http("entry", platform.entry_url + "/", hz=20)
    west = steady.watch("west replicas", lambda: platform.capacity("west").ready, hz=4)
    steady.baseline(seconds=2)
    steady.require(
        entry.share(answered(cluster="east"), "baseline", label="served by east") >= 0.99,
        west.value("min", "baseline") >= 2,
    )
    with cold:
        # cold long enough for both balancers' checks to mark west down, as a standby held cold
        # for days would be: the activation then has to win them back
        steady.hold(seconds=1, phase="west cold")
        with kill_service(platform, "east-lb"):
            cold.revert()  # the runbook: east is gone, activate west
            first = entry.recovers(
                within=FIRST_SERVED_S, where=answered(cluster="west"), label="first served by west"
            )
            capacity = west.recovers(
                within=FULL_CAPACITY_S, where=lambda n: n >= full, label="at full capacity"
            )
            steady.wait_for(first, capacity)
            steady.hold(seconds=1, phase="west serving")
    steady.expect(first, capacity)
