"""HAProxy configurations for the lab's routers and global traffic manager."""

from __future__ import annotations

from pathlib import Path

from chaos.lab.profiles import Profile
from chaos.lab.topology import SUBNET, Service

# what every HAProxy of the lab shares
_BASE = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin
defaults
    mode http
    option http-server-close
    timeout connect 500ms
    timeout client 30s
    timeout server 10s
"""
# a health-checked proxy that retries a request its server failed on another
_DEFAULTS = (
    _BASE
    + """\
    timeout check 500ms
    retries 2
    option redispatch
    retry-on conn-failure empty-response response-timeout
    default-server inter 200ms fastinter 200ms downinter 200ms fall 2 rise 2
"""
)


def router_config(
    router: Service, gateways: list[Service], socket: Path, in_rotation: int | None = None
) -> str:
    """A cluster's router: round-robin over its gateway replicas, health-checked every 200 ms.
    Slots past ``in_rotation`` start disabled: warm, held for the autoscaler."""
    active = len(gateways) if in_rotation is None else in_rotation
    servers = "\n".join(
        f"    server {g.name} {g.address}:{g.port} check" + (" disabled" if i >= active else "")
        for i, g in enumerate(gateways)
    )
    return (
        _DEFAULTS.format(socket=socket)
        + f"""\
frontend entry
    bind {router.address}:{router.port}
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""
    )


def gtm_config(gtm: Service, routers: list[Service], socket: Path, profile: Profile) -> str:
    """The traffic manager: the first cluster's router is primary, the others are backups
    that take traffic only when no primary is healthy. Its health checks are the profile's:
    how often, how many failures to leave a cluster, how many successes to trust it again."""
    lines = []
    every = f"{profile.gtm_check_ms}ms"
    checks = (
        f" inter {every} fastinter {every} downinter {every} fall {profile.gtm_fall} rise {profile.gtm_rise}"
    )
    for i, r in enumerate(routers):
        backup = " backup" if i > 0 else ""
        lines.append(f"    server {r.cluster} {r.address}:{r.port} check{checks}{backup}")
    return (
        _DEFAULTS.format(socket=socket)
        + f"""\
frontend entry
    bind {gtm.address}:{gtm.port}
    default_backend clusters
backend clusters
    option httpchk GET /healthz
    # a request in flight when its cluster dies is retried on the other one
{chr(10).join(lines)}
"""
    )


def unchecked_lb_config(api: Service, members: int, socket: Path) -> str:
    """A load balancer in front of the masters' API the way it should not be: round robin over
    every member, no health checks, no retries, no redispatch (the ``unchecked-lb`` weakness)."""
    servers = "\n".join(
        f"    server m{i} {SUBNET.network_address + 10 + i}:2379" for i in range(1, members + 1)
    )
    return (
        _BASE.format(socket=socket)
        + f"""\
    retries 0
frontend api
    bind {api.address}:{api.port}
    default_backend members
backend members
    balance roundrobin
{servers}
"""
    )
