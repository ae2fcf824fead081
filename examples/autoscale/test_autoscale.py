"""Reserved-capacity scale-out (``topology.yaml`` beside this file): five nginx replicas behind
HAProxy, two in rotation and three warm in reserve; the lab's autoscaler puts replicas in and
out of rotation on the request rate, as an HPA scales into reserved capacity. A 3x load spike
must be served within the SLOs while replicas scale out into the reserve within T, and they
must scale back in after it. ``chaos checks --run --topology examples/autoscale
examples/autoscale`` proves ``slow-autoscaler`` (10 s of high load before it acts) turns the
scale-out red, ``no-scale-in`` (an hour of low load first) the scale-in, ``broken-reserve``
(replicas that pass their health check and fail every request) the availability and
``cold-reserve`` (400 ms a request) the latency.
"""

from chaos import Loads, Platform, Steady, experiment

SCALE_OUT_S = 5.0  # the autoscaler averages the rate over 2 s and steps every 0.5 s
SCALE_IN_S = 12.0  # 2 s of average, then 5 s of low load before it scales in


@experiment(
    verifies="scale-out",
    hypothesis="east holds >= 20% of its capacity in reserve; a 3x load spike is served with p99 <= "
    "300 ms and >= 99.5% success while replicas scale out into the reserve within 5 s, and they "
    "scale back in within 12 s of the spike's end",
    controls={
        "slow-autoscaler": ["east replicas scaled out [during]"],
        "no-scale-in": ["east replicas scaled in [recovery]"],
        "broken-reserve": ["site availability [during]"],
        "cold-reserve": ["site p99 latency [during]"],
    },
)
def test_a_spike_scales_out_into_the_reserve_and_back(
    platform: Platform, steady: Steady, load: Loads
) -> None:
    replicas = steady.watch("east replicas", lambda: platform.capacity("east")["ready"], hz=4)
    headroom = steady.watch("east headroom", lambda: platform.capacity("east")["headroom"], hz=1)
    site = steady.http("site", platform.entry_url + "/", hz=20)
    # 10 requests a second of load and 20 of the probe: two replicas at 20 a replica; the spike
    # adds 20 more, which three serve
    with load(users=5, user_rps=2, duration=35, locustfile="browse"):
        steady.baseline(seconds=3)
        at_rest = platform.capacity("east")["ready"]
        steady.require(headroom.value("min", "baseline") >= 0.2)
        with load.spike(users=10, user_rps=2, duration=12, locustfile="browse"):  # 3x the users
            scaled_out = replicas.recovers(
                within=SCALE_OUT_S, where=lambda n: n > at_rest, label="scaled out"
            )
            steady.wait_for(scaled_out)
            steady.hold(seconds=5, phase="spike")  # >= 100 samples of the site: enough for a p99
        scaled_in = replicas.recovers(
            within=SCALE_IN_S, after="end", where=lambda n: n <= at_rest, label="scaled in"
        )
        steady.wait_for(scaled_in)
    steady.expect(
        scaled_out,
        scaled_in,
        site.latency(99, "during") <= 300,
        site.availability("during") >= 0.995,
    )
