"""Steady state: with no fault, under steady Locust load through the global traffic manager,
the workload meets its SLOs. This is the baseline every other experiment compares against.

The bounds are defaults a team can tune per environment: ``--chaos-slo p99_ms=200``.
"""

from chaos import Loads, Platform, SLOs, Steady, experiment


@experiment(
    verifies="steady state",
    hypothesis="under steady load through the traffic manager the workload serves >= 99.5% of "
    "requests with p99 <= 300 ms, and every service stays scraped by Prometheus",
    controls={
        "slow-gateway": ["load p99 latency [all]"],
        "flaky-gateway": ["load availability [all]", "entry availability [all]"],
        "broken-metrics": ["targets up min [all]"],
    },
)
def test_workload_meets_its_slos(platform: Platform, steady: Steady, load: Loads, slo: SLOs) -> None:
    entry = steady.http("entry", platform.entry_url + "/")
    scraped = steady.promql("targets up", 'min(up{job="workload"})', platform.prometheus_url, hz=2)
    with load(users=20, user_rps=2, duration=15, shape="steady") as run:
        # no fault: the whole run is the hypothesis, so there is no separate baseline to require
        steady.hold(seconds=13, phase="steady load")
        run.wait()
    steady.expect(
        run.availability() >= slo("availability", 0.995),
        run.latency(99) <= slo("p99_ms", 300),
        entry.availability() >= slo("entry_availability", 0.99),
        scraped.value("min") >= 1,
    )
