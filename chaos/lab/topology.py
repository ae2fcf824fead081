"""The lab's shape as data: which node runs what, at which address. Pure: no side effects,
so the plan can be printed, tested and diffed.

    198.18.0.11-13  m1..m3          etcd masters
    198.18.0.20     gtm             global traffic manager (HAProxy), the single entry point
    198.18.0.21     prom            Prometheus
    198.18.0.22     api             the masters' API front (only with a masters_api weakness;
                                    the spooling one keeps its spool on volume "api")
    198.18.0.30+    east-router, east-gw1.., east-inv    cluster east
    198.18.0.40+    west-router, west-gw1.., west-inv    cluster west
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from chaos.lab.profiles import Profile

SUBNET = ipaddress.ip_network("198.18.0.0/24")
CLUSTER_BASE = {"east": 30, "west": 40}
ENTRY_PORT = 80
SERVICE_PORT = 8080
PROMETHEUS_PORT = 9090
ETCD_CLIENT_PORT = 2379


def _addr(host: int) -> str:
    return str(SUBNET.network_address + host)


@dataclass(frozen=True)
class Service:
    """One process of the lab (other than etcd) and where it listens."""

    name: str  # also the node (namespace) it runs on
    kind: str  # "gtm", "router", "gateway", "inventory", "prometheus", "masters-api", "autoscaler", "fencing"
    cluster: str  # "" for global services
    address: str
    port: int
    health_path: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


def services(profile: Profile) -> list[Service]:
    out = [
        Service("gtm", "gtm", "", _addr(20), ENTRY_PORT, "/healthz"),
        Service("prom", "prometheus", "", _addr(21), PROMETHEUS_PORT, "/-/ready"),
    ]
    if profile.masters_api != "direct":
        out.append(Service("api", "masters-api", "", _addr(22), ETCD_CLIENT_PORT, "/health"))
    if profile.fencing:
        # runs in the root namespace: it watches every member and kills one it fences
        out.append(Service("fencing", "fencing", "", "", 0, ""))
    for cluster in profile.clusters:
        base = CLUSTER_BASE[cluster]
        out.append(Service(f"{cluster}-router", "router", cluster, _addr(base), ENTRY_PORT, "/healthz"))
        for i in range(1, profile.gateway_slots + 1):
            out.append(
                Service(f"{cluster}-gw{i}", "gateway", cluster, _addr(base + i), SERVICE_PORT, "/healthz")
            )
        out.append(Service(f"{cluster}-inv", "inventory", cluster, _addr(base + 9), SERVICE_PORT, "/healthz"))
        if profile.autoscale:
            # runs in the root namespace: it talks to the router's admin socket, not the network
            out.append(Service(f"{cluster}-scaler", "autoscaler", cluster, "", 0, ""))
    return out


def has_volume(svc: Service, profile: Profile) -> bool:
    """Whether the service keeps its data on a lab volume of its own (named as the service)."""
    return svc.kind == "inventory" or (svc.kind == "masters-api" and profile.masters_api == "spooling")


def hosts(profile: Profile, cluster: str) -> dict[str, list[str]]:
    """The hosts (machines) ``cluster``'s gateway slots run on, each with its slots: round-robin
    over ``profile.hosts`` ("spread"), or all on the first ("packed"). A host is a placement of
    lab nodes, not a namespace of its own: losing it takes every node placed there."""
    placed: dict[str, list[str]] = {f"{cluster}-host{h}": [] for h in range(1, profile.hosts + 1)}
    for i in range(profile.gateway_slots):
        h = 1 if profile.placement == "packed" else i % profile.hosts + 1
        placed[f"{cluster}-host{h}"].append(f"{cluster}-gw{i + 1}")
    return placed


def entry_url() -> str:
    return f"http://{_addr(20)}:{ENTRY_PORT}"


def reserve_slots(profile: Profile) -> range:
    """The gateway slot numbers held out of rotation at rest (the reserve)."""
    return range(profile.min_replicas + 1, profile.gateway_slots + 1)
