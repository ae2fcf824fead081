"""Shedding a non-critical path: a spike of recommendation requests (slow, non-critical) well
beyond what the gateways can compute. Orders (critical) must keep their SLO, and the
recommendations beyond capacity must be shed at once (429) rather than queued in front of them."""

from typing import Any

from chaos import Loads, Platform, SLOs, Steady, experiment

# recommendations the gateways answer 429 per second, as their own metrics count them
SHEDDING = (
    'sum(rate(workload_requests_total{service="gateway",path="/recommendations",code="429"}[5s])) '
    "or vector(0)"
)


def shed(body: Any) -> bool:
    return isinstance(body, dict) and bool(body.get("shed"))


@experiment(
    verifies="overload protection",
    hypothesis="under a spike of recommendations (60 req/s of 0.4 s work) orders keep p99 <= 300 ms "
    "and >= 99 % success, while recommendations beyond capacity are shed (>= 20 % answered 429) "
    "and answered without queueing (p99 <= 1 s: the work itself takes 0.4 s), the gateways' own "
    "metrics showing >= 5 req/s shed",
    controls={
        "shared-pool": [
            "orders p99 latency [during]",
            "orders availability [during]",
            "recommendations share shed [during]",
            "recommendations p99 latency [during]",
            "gateways shedding max [during]",
        ],
    },
)
def test_a_spike_on_a_non_critical_path_is_shed_and_orders_keep_their_slo(
    platform: Platform, steady: Steady, load: Loads, slo: SLOs
) -> None:
    orders = steady.http("orders", platform.entry_url + "/orders", method="POST", hz=10, timeout=2)
    recommendations = steady.http(
        "recommendations", platform.entry_url + "/recommendations", hz=10, timeout=2, expect=(200, 429)
    )
    shedding = steady.promql("gateways shedding", SHEDDING, platform.prometheus_url, hz=2)
    steady.baseline(seconds=3)
    with load.spike(users=30, user_rps=2, duration=14, locustfile="recommend"):
        steady.hold(seconds=12, phase="spike")
    steady.hold(seconds=1, phase="recovery")
    steady.expect(
        orders.latency(99, "during") <= slo("p99_ms", 300),
        orders.availability("during") >= slo("availability", 0.99),
        recommendations.share(shed, "during", label="shed") >= slo("shed_share", 0.2),
        recommendations.latency(99, "during") <= slo("recommendations_p99_ms", 1000),
        shedding.value("max", "during") >= slo("shed_rps", 5),  # seen by the gateways themselves
    )
