"""Reserved-capacity scale-out: the platform holds a share of its gateway capacity in reserve
(warm, out of rotation) so a load spike is absorbed while the autoscaler scales out."""

from chaos import Loads, Platform, SLOs, Steady, experiment

SCALE_OUT_S = 5.0
SCALE_IN_S = 12.0  # the autoscaler averages 2 s and waits 5 s of low load before it scales in


@experiment(
    verifies="scale-out",
    hypothesis="east holds >= 20% of its gateway capacity in reserve; a 3x load spike is served with "
    "p99 <= 300 ms and >= 99.5% success while replicas scale out into the reserve within 5 s, "
    "and they scale back in after the spike",
    controls={
        "slow-autoscaler": ["east replicas scaled out [during]"],
        "no-scale-in": ["east replicas scaled in [recovery]"],
        "cold-reserve": ["orders p99 latency [during]"],
        "unready-reserve": ["orders availability [during]"],
    },
)
def test_spike_scales_out_into_the_reserve(
    platform: Platform, steady: Steady, load: Loads, slo: SLOs
) -> None:
    replicas = steady.watch("east replicas", lambda: platform.capacity("east")["ready"], hz=4)
    headroom = steady.watch("east headroom", lambda: platform.capacity("east")["headroom"], hz=1)
    # 10 Hz: with the load's 10 req/s the baseline stays at the 2 replicas in rotation
    orders = steady.http("orders", platform.entry_url + "/orders", method="POST", hz=10, timeout=5)
    with load(users=5, user_rps=2, duration=50):
        steady.baseline(seconds=3)
        replicas_at_rest = platform.capacity("east")["ready"]
        steady.require(headroom.value("min", "baseline") >= slo("reserve", 0.2))
        with load.spike(users=10, user_rps=2, duration=15):  # 3x the baseline users
            steady.expect(
                replicas.recovers(
                    within=slo("scale_out_s", SCALE_OUT_S),
                    where=lambda n: n > replicas_at_rest,
                    label="scaled out",
                )
            )
            steady.hold(seconds=10, phase="spike")  # >= 100 orders: enough for a p99
        steady.expect(
            replicas.recovers(
                within=slo("scale_in_s", SCALE_IN_S),
                after="end",
                where=lambda n: n <= replicas_at_rest,
                label="scaled in",
            ),
            orders.latency(99, "during") <= slo("p99_ms", 300),
            orders.availability("during") >= slo("availability", 0.995),
        )
