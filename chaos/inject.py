"""Public fault constructors: platform-neutral names that dispatch to the platform driver."""

from __future__ import annotations

from chaos.errors import ConfigError
from chaos.fault import Fault
from chaos.platform import LinkFault, Platform, StorageFault


def kill_master(platform: Platform, pick: str = "leader", *, allow_below_quorum: bool = False) -> Fault:
    """SIGKILL one etcd master: ``pick`` is "leader", "follower" (seeded choice) or a member
    name. Refuses before touching anything if the kill would cost quorum, unless
    ``allow_below_quorum``. Reverting restarts the member and waits until it has rejoined."""
    return platform.kill_master(pick, allow_below_quorum=allow_below_quorum)


def partition(platform: Platform, *groups: list[str] | tuple[str, ...], label: str = "") -> Fault:
    """Nodes in different groups cannot reach each other, e.g.
    ``partition(platform, ["m1"], ["m2", "m3"])``. Reverting removes exactly its rules."""
    return platform.partition([list(g) for g in groups], label=label)


def bridge(platform: Platform, left: list[str], via: str, right: list[str]) -> Fault:
    """Jepsen's bridge: ``left`` and ``right`` cannot reach each other, but ``via`` still
    reaches (and is reached by) both sides."""
    return platform.partition([], cuts=[(list(left), list(right))], label=f"bridge via {via}")


def cut_cluster(platform: Platform, cluster: str) -> Fault:
    """Cut a whole cluster (its router and every replica) off from the traffic manager."""
    members = [n for n in platform.nodes() if n.startswith(f"{cluster}-")]
    return platform.partition([["gtm"], members], label=f"cluster {cluster} cut off")


def isolate(platform: Platform, node: str) -> Fault:
    """Cut ``node`` off from every other node of the platform."""
    others = [n for n in platform.nodes() if n != node]
    return platform.partition([[node], others], label=f"isolate {node}")


def degrade(
    platform: Platform,
    src: list[str] | str,
    dst: str,
    *,
    latency: float = 0.0,
    jitter: float = 0.0,
    loss: float = 0.0,
    reset: float = 0.0,
    bandwidth_kbit: int | None = None,
) -> Fault:
    """Degrade the link from ``src`` node(s) to the service on ``dst``: added latency (seconds,
    with jitter), packet loss and connection resets (probabilities), a bandwidth cap."""
    sources = [src] if isinstance(src, str) else list(src)
    return platform.degrade(sources, dst, LinkFault(latency, jitter, loss, reset, bandwidth_kbit))


def kill_service(platform: Platform, name: str) -> Fault:
    """SIGKILL a service process (a router, a gateway...); reverting restarts it."""
    return platform.kill_service(name)


def lose_host(platform: Platform, host: str) -> Fault:
    """A whole host goes at once, every process on it and its network (``platform.hosts()``
    says which hosts there are and what runs where); reverting brings it back."""
    return platform.lose_host(host)


def cold_standby(platform: Platform, cluster: str) -> Fault:
    """Hold ``cluster`` cold (its replicas stopped, serving nothing); ``fault.revert()`` inside
    the block activates it (every replica started at once), as the runbook does when the
    primary is lost. Leaving the block activates it if nothing did."""
    return platform.cold_standby(cluster)


def lose_registry(platform: Platform) -> Fault:
    """The image registry unreachable (pulls fail) until the revert."""
    return platform.lose_registry()


def roll_out(platform: Platform, service: str, version: str) -> Fault:
    """Start rolling ``service`` out to ``version``; reverting rolls it back. ``platform.rollout``
    says how it stands."""
    return platform.roll_out(service, version)


def fail_storage(
    platform: Platform,
    volume: str | list[str],
    mode: str | StorageFault,
    *,
    latency: float = 0.0,
    rate: float = 1.0,
    errno: str = "EIO",
    allow_below_quorum: bool = False,
) -> Fault:
    """Fail the storage of lab volume(s) (a master's etcd data, e.g. ``"m1"``, or the
    workload's, e.g. ``"east-inv"``): ``mode`` is ``full``, ``read_only``, ``io_error``,
    ``slow`` (``latency`` seconds per operation), ``flaky`` (a share ``rate`` of operations
    fail with ``errno``) or ``lost`` (the storage daemon dies); or a whole ``StorageFault``
    (e.g. ``STORAGE_EXAMPLES["slow"]``). Refuses, before anything
    changes, to take masters below quorum unless ``allow_below_quorum``. Reverting restores
    the volume (a fresh mount when it no longer answers) and restarts its owner if it died."""
    names = [volume] if isinstance(volume, str) else list(volume)
    if isinstance(mode, StorageFault):
        if (latency, rate, errno) != (0.0, 1.0, "EIO"):
            raise ConfigError(
                "fail_storage(): give latency=, rate= and errno= in the StorageFault, not beside it"
            )
        spec = mode
    else:
        spec = StorageFault(mode, latency, rate, errno)
    return platform.fail_storage(names, spec, allow_below_quorum=allow_below_quorum)
