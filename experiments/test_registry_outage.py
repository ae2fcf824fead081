"""Image registry outage (Kubernetes): with the registry the clusters pull from unreachable,
replicas that must start again come back from the images their nodes cached, and a new image
version cannot roll out: the rollout is reported stuck, and not partially applied (every ready
replica still runs the old version, as many as at rest). On a platform without images (the lab)
both skip before any fault, saying so.

Their negative controls are Kubernetes set-ups the lab's weakness catalogue cannot hold, proven
against the API emulator (tests/test_kube_experiments.py): ``imagePullPolicy: Always`` turns
"replaced from cached images" red; a ``Recreate`` rollout strategy, "ready replicas while
rolling out"; nodes that pull from a mirror the outage does not reach, "reported stuck" and
"new version ready"."""

from chaos import Platform, SLOs, Steady, experiment, lose_host, lose_registry, roll_out

SERVICE = "gateway"  # the service the kube topology names with its deployment
NEW = "next"  # the version rolled out: a tag of the service's image
REPLACE_S = 10.0
STUCK_S = 10.0


@experiment(
    verifies="HA",
    hypothesis="with the image registry unreachable, replicas lost with a node are replaced on the "
    "other nodes from their cached images within 10 s",
)
def test_lost_replicas_start_again_from_cached_images(platform: Platform, steady: Steady, slo: SLOs) -> None:
    outage = lose_registry(platform)  # asked first: without a registry this skips here
    placed = platform.hosts()
    host = max(placed, key=lambda h: len(placed[h]))  # the node with the most replicas
    at_rest = platform.capacity().ready
    replicas = steady.watch("replicas", lambda: platform.capacity().ready, hz=4)
    steady.baseline(seconds=2)
    with outage, lose_host(platform, host):
        replaced = replicas.recovers(
            within=slo("replace_s", REPLACE_S),
            where=lambda n: at_rest is not None and n >= at_rest,
            label="replaced from cached images",
        )
        steady.wait_for(replaced)
    steady.expect(replaced)


@experiment(
    verifies="HA",
    hypothesis="with the image registry unreachable, a new version's rollout is reported stuck within "
    "10 s, and not partially applied: no replica of the new version serves, and as many of the old "
    "as at rest do throughout",
)
def test_a_rollout_without_the_registry_is_stuck_not_half_applied(
    platform: Platform, steady: Steady, slo: SLOs
) -> None:
    outage = lose_registry(platform)
    platform.rollout(SERVICE)  # a service that cannot be rolled out skips here, before any fault
    at_rest = platform.rollout(SERVICE).ready
    stuck = steady.watch("rollout", lambda: int(platform.rollout(SERVICE).stuck), hz=4)

    def new_version_ready() -> int:
        rollout = platform.rollout(SERVICE)  # after the rollback the spec asks for the old one again
        return rollout.updated_ready if rollout.version.rsplit(":", 1)[-1] == NEW else 0

    new_ready = steady.watch("new version ready", new_version_ready, hz=4)
    serving = steady.watch("ready replicas while rolling out", lambda: platform.rollout(SERVICE).ready, hz=4)
    steady.baseline(seconds=2)
    with outage, roll_out(platform, SERVICE, NEW):
        reported = stuck.recovers(
            within=slo("stuck_s", STUCK_S), where=lambda v: v == 1, label="reported stuck"
        )
        steady.wait_for(reported)
        steady.hold(seconds=1, phase="stuck")
    steady.expect(
        reported,
        new_ready.value("max", "all") == 0,
        serving.value("min", "during") >= at_rest,
    )
