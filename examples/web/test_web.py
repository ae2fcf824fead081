"""Two nginx replicas behind HAProxy (``topology.yaml`` beside this file): the site must stay
up when a replica dies or is cut off from the balancer. The ``unchecked`` variant (no health
checks, no retries) is the negative control; ``chaos checks --run --topology
examples/web/topology.yaml examples/web`` proves it turns both experiments red.

What it found where the system is not resilient: without checks and retries, HAProxy keeps
sending every other request to the dead replica (about half the site's requests fail while it
is down), and to a replica it cannot reach each of those requests waits out the connect
timeout and fails.
"""

from chaos import Platform, Steady, experiment, kill_service, partition

MIN_AVAILABILITY = 0.95  # the balancer needs a few hundred ms of failed checks to notice


@experiment(
    verifies="HA",
    hypothesis="with one of two nginx replicas killed, >= 95% of requests through the balancer are "
    "served while it is down, and all of them once it is back",
    controls={"unchecked": ["site availability [during]"]},
)
def test_losing_a_replica_keeps_the_site_up(platform: Platform, steady: Steady) -> None:
    site = steady.http("site", platform.entry_url + "/", hz=20)
    steady.baseline(seconds=1)
    with kill_service(platform, "web1"):
        steady.hold(seconds=3, phase="during")
    steady.hold(seconds=2, phase="recovery")
    steady.expect(site.availability("during") >= MIN_AVAILABILITY, site.availability("recovery") >= 0.99)


@experiment(
    verifies="HA",
    hypothesis="with one replica cut off from the balancer, >= 95% of requests are served while "
    "it is unreachable, and all of them after the partition heals",
    controls={"unchecked": ["site availability [during]"]},
)
def test_a_replica_cut_off_from_the_balancer(platform: Platform, steady: Steady) -> None:
    site = steady.http("site", platform.entry_url + "/", hz=20)
    steady.baseline(seconds=1)
    with partition(platform, ["lb"], ["web2"], label="balancer from web2"):
        steady.hold(seconds=3, phase="during")
    steady.hold(seconds=2, phase="recovery")
    steady.expect(site.availability("during") >= MIN_AVAILABILITY, site.availability("recovery") >= 0.99)
