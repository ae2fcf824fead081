"""Retry storm: inventory turns slow, every answer later than the gateways wait for. Callers
that retry at once multiply the load on it just when it can least take it; gateways whose
retries come out of a budget (10 % of their first attempts, with jittered backoff) add little,
and serve the last known stock meanwhile."""

from chaos import Platform, SLOs, Steady, degrade, experiment

SLOW_S = 0.5  # inventory's added latency: beyond the gateways' 0.1 s read timeout, so every read fails

# requests the gateways send inventory for the catalogue, per catalogue request they serve
AMPLIFICATION = (
    'sum(rate(workload_upstream_attempts_total{cluster="east",path="/stock"}[5s])) / '
    'sum(rate(workload_requests_total{cluster="east",service="gateway",path="/catalog"}[5s]))'
)


@experiment(
    verifies="overload protection",
    hypothesis="when inventory turns slow (0.5 s, beyond the gateways' timeout), the gateways' "
    "retries add at most half to the load they send it (amplification <= 1.5), and the catalogue "
    "stays available (>= 99 %, served stale) and fast (p99 <= 400 ms)",
    controls={
        "retry-storm": [
            "inventory load amplification max [during]",
            "catalogue p99 latency [during]",
        ],
        "no-fallback": ["catalogue availability [during]"],  # no stale stock: the catalogue fails
    },
)
def test_retries_do_not_multiply_the_load_on_a_slow_dependency(
    platform: Platform, steady: Steady, slo: SLOs
) -> None:
    catalogue = steady.http("catalogue", platform.entry_url + "/catalog", hz=20, timeout=2)
    gateways = [n for n in platform.nodes() if n.startswith("east-gw")]  # every slot, in rotation or not
    steady.hold(seconds=3, phase="warm-up")  # the rates need catalogue requests in their 5 s window
    amplification = steady.promql(
        "inventory load amplification", AMPLIFICATION, platform.prometheus_url, hz=2
    )
    steady.baseline(seconds=3)
    with degrade(platform, gateways, "east-inv", latency=SLOW_S):
        steady.hold(seconds=8, phase="inventory slow")
    steady.hold(seconds=2, phase="recovery")
    steady.expect(
        amplification.value("max", "during") <= slo("amplification", 1.5),
        catalogue.availability("during") >= slo("availability", 0.99),
        catalogue.latency(99, "during") <= slo("p99_ms", 400),
    )
