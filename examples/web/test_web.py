"""Two nginx replicas behind HAProxy (``topology.yaml`` beside this file): the site must stay
up when a replica dies, is cut off from the balancer, or loses the machine it runs on. The
``unchecked`` variant (no health checks, no retries) is the negative control of all three, the
``packed`` one (both replicas on one machine) of the last; ``chaos checks --run --topology
examples/web/topology.yaml examples/web`` proves they turn them red.

What it found where the system is not resilient: without checks and retries, HAProxy keeps
sending every other request to the dead replica (about half the site's requests fail while it
is down), and to a replica it cannot reach each of those requests waits out the connect
timeout and fails. With both replicas on one machine, losing it leaves the balancer nothing to
send to: no request is served until the machine is back.
"""

from chaos import Fault, Platform, Steady, experiment, kill_service, lose_host, partition

MIN_AVAILABILITY = 0.95  # the balancer needs a few hundred ms of failed checks to notice


def site_stays_up(platform: Platform, steady: Steady, fault: Fault) -> None:
    """The site through the balancer, 20 requests a second: 1 s of baseline, 3 s with
    ``fault`` in force, 2 s after it is reverted."""
    site = steady.http("site", platform.entry_url + "/", hz=20)
    steady.baseline(seconds=1)
    with fault:
        steady.hold(seconds=3, phase="during")
    steady.hold(seconds=2, phase="recovery")
    steady.expect(site.availability("during") >= MIN_AVAILABILITY, site.availability("recovery") >= 0.99)


@experiment(
    verifies="HA",
    hypothesis="with one of two nginx replicas killed, >= 95% of requests through the balancer are "
    "served while it is down, and all of them once it is back",
    controls={"unchecked": ["site availability [during]"]},
)
def test_losing_a_replica_keeps_the_site_up(platform: Platform, steady: Steady) -> None:
    site_stays_up(platform, steady, kill_service(platform, "web1"))


@experiment(
    verifies="HA",
    hypothesis="with one replica cut off from the balancer, >= 95% of requests are served while "
    "it is unreachable, and all of them after the partition heals",
    controls={"unchecked": ["site availability [during]"]},
)
def test_a_replica_cut_off_from_the_balancer(platform: Platform, steady: Steady) -> None:
    site_stays_up(platform, steady, partition(platform, ["lb"], ["web2"], label="balancer from web2"))


@experiment(
    verifies="HA",
    hypothesis="with the machine one replica runs on lost (its processes and its network at once), "
    ">= 95% of requests are served while it is gone, and all of them once it is back",
    controls={"unchecked": ["site availability [during]"], "packed": ["site availability [during]"]},
)
def test_losing_a_machine_keeps_the_site_up(platform: Platform, steady: Steady) -> None:
    site_stays_up(platform, steady, lose_host(platform, "host-a"))
