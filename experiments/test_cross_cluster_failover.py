"""Cross-cluster failover: cluster east is cut off from the global traffic manager (its
router partitioned away, or killed). Traffic must move to west within T, losing at most N
requests, and come back to east after healing."""

import pytest

from chaos import Loads, Platform, SLOs, Steady, answered, experiment, kill_service, partition

FAILOVER_S = 5.0
FAILBACK_S = 10.0


@experiment(
    verifies="failover",
    hypothesis="with east cut off, west serves the entry point within 5 s losing at most 20 requests, "
    "and traffic returns to east within 10 s of healing",
    controls={
        "slow-failover": [
            "entry failover to west [during]",
            "entry failed samples [during]",
            "load failed requests [all]",
        ],
        "late-failback": ["entry failback to east [recovery]"],
    },
)
@pytest.mark.parametrize("cut", ["partition", "kill"])
def test_traffic_fails_over_to_west_and_back(
    platform: Platform, steady: Steady, load: Loads, slo: SLOs, cut: str
) -> None:
    entry = steady.http("entry", platform.entry_url + "/", hz=20)
    with load(users=10, user_rps=2, duration=30) as run:
        steady.baseline(seconds=2)
        steady.require(entry.share(answered(cluster="east"), "baseline", label="served by east") >= 0.99)
        fault = (
            partition(platform, ["gtm"], ["east-router"], label="east cut off")
            if cut == "partition"
            else kill_service(platform, "east-router")
        )
        with fault:
            failover = entry.recovers(
                within=slo("failover_s", FAILOVER_S), where=answered(cluster="west"), label="failover to west"
            )
            steady.wait_for(failover)  # judged below, with what the failover cost
            steady.hold(seconds=2, phase="failed over")
        failback = entry.recovers(
            within=slo("failback_s", FAILBACK_S),
            after="end",
            where=answered(cluster="east"),
            label="failback to east",
        )
        steady.wait_for(failback)
        steady.hold(seconds=1, phase="recovery")
    steady.expect(
        failover,
        failback,
        entry.failures("during") <= slo("max_failed_probe", 10),
        run.failed() <= slo("max_failed", 20),
    )
