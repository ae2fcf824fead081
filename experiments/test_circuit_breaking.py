"""Circuit breaking: inventory turns slow, then fails, under steady load. Gateways must fail
fast and serve the fallback while the breaker is open, and close it again after recovery."""

from chaos import Loads, Platform, SLOs, Steady, degrade, experiment

SLOW_S = 2.0


@experiment(
    verifies="circuit breaking",
    hypothesis="when inventory turns slow (2 s) and then fails, orders through the entry point stay "
    "fast (p99 <= 1000 ms, half the slowness) and available, the breaker opens, fallback orders are "
    "served, and the breaker closes within 10 s of recovery",
    controls={
        "slow-breaker": ["orders p99 latency [during]"],
        "sticky-breaker": ["east breaker state closed again [recovery]"],
        "no-fallback": ["orders availability [during]", "orders share fallback [during]"],
        "no-breaker": ["east breaker state max [during]"],
    },
)
def test_breaker_protects_callers_from_a_failing_dependency(
    platform: Platform, steady: Steady, load: Loads, slo: SLOs
) -> None:
    orders = steady.http("orders", platform.entry_url + "/orders", method="POST", hz=20, timeout=10)
    gateways = [n for n in platform.nodes() if n.startswith("east-gw")]  # every slot, in rotation or not
    with load(users=10, user_rps=2, duration=45):
        steady.hold(seconds=3, phase="warm-up")  # the breaker query needs orders in its 5 s rate window
        # gateways taking orders right now: one the autoscaler took out of rotation keeps its last
        # breaker state (pybreaker only moves on a call), and is not serving anyone
        breaker = steady.promql(
            "east breaker state",
            'max(workload_breaker_state{cluster="east"} and on(instance) '
            '(sum by (instance) (rate(workload_requests_total{path="/orders"}[5s])) > 0))',
            platform.prometheus_url,
            hz=4,
        )
        steady.baseline(seconds=3)
        with degrade(platform, gateways, "east-inv", latency=SLOW_S):
            steady.hold(seconds=5, phase="inventory slow")
        with degrade(platform, gateways, "east-inv", reset=1.0):
            steady.hold(seconds=4, phase="inventory failing")
        # judged while the load still runs: the breaker closes only on calls
        steady.expect(
            breaker.recovers(
                within=slo("close_s", 10), after="end", where=lambda state: state == 0, label="closed again"
            ),
            orders.latency(99, "during") <= slo("p99_ms", 1000),
            orders.availability("during") >= slo("availability", 0.99),
            breaker.value("max", "during") >= 2,  # 2 = open
            orders.share(lambda body: body.get("fallback"), "during", label="fallback") >= 0.5,
        )
