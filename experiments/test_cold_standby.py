"""Cold-standby activation: the standby cluster (west) is held cold, serving nothing, until it is
needed. When the primary (east) is lost, the standby is activated, as the runbook says; the
entry point must serve from it within T of the loss, and it must run its full capacity soon
after. Time to first served request and to full capacity are both measured from the loss."""

from chaos import NotSupported, Platform, SLOs, Steady, answered, cold_standby, experiment, kill_service

FIRST_SERVED_S = 8.0
FULL_CAPACITY_S = 10.0


@experiment(
    verifies="failover",
    hypothesis="with west held cold, when east is lost and west is activated, the entry point serves "
    "from west within 8 s of the loss and west runs its full capacity within 10 s of it",
    controls={
        "slow-standby": ["entry first served by west [during]", "west replicas at full capacity [during]"],
    },
)
def test_a_cold_standby_takes_traffic_within_t_of_the_primary_loss(
    platform: Platform, steady: Steady, slo: SLOs
) -> None:
    # asked first: a platform that cannot hold a cluster cold skips here, before any probe or fault
    cold = cold_standby(platform, "west")
    full = platform.capacity("west").ready  # what west runs at rest: its full capacity
    if full is None:
        raise NotSupported(f"west's ready replicas are not reported: {platform.capacity('west').hint}")
    entry = steady.http("entry", platform.entry_url + "/", hz=20)
    # west's replicas serving now, as its own router sees them
    west = steady.watch("west replicas", lambda: platform.capacity("west").ready, hz=4)
    steady.baseline(seconds=2)
    steady.require(
        entry.share(answered(cluster="east"), "baseline", label="served by east") >= 0.99,
        west.value("min", "baseline") >= 1,
    )
    with cold, kill_service(platform, "east-router"):
        cold.revert()  # the runbook: east is gone, activate west
        first = entry.recovers(
            within=slo("first_served_s", FIRST_SERVED_S),
            where=answered(cluster="west"),
            label="first served by west",
        )
        capacity = west.recovers(
            within=slo("full_capacity_s", FULL_CAPACITY_S),
            where=lambda n: n >= full,
            label="at full capacity",
        )
        steady.wait_for(first, capacity)
        steady.hold(seconds=1, phase="west serving")
    steady.expect(first, capacity)
