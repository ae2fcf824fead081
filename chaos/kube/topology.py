"""What the experiments' names mean on real clusters (``--kube-topology FILE``): the global
entry URL, Prometheus, and each named service (``east-router``, ``east-inv``, ``gtm``...) as
pods on a cluster, so an experiment written against the lab runs unchanged on Kubernetes.

    entry_url: https://shop.example.com          # the global traffic manager / global LB
    cluster_urls: {east: https://east.shop.example.com}   # each cluster's own ingress, past the GTM
    prometheus_url: http://prometheus.example.com:9090
    services:
      gtm: {external: true}                      # outside every cluster
      east-router: {cluster: east, namespace: ingress, labels: app=router, deployment: router, port: 80}
      east-inv: {cluster: east, namespace: shop, labels: app=inventory, port: 8080, claim: inventory-data}
    storage_backend: {cluster: east, namespace: storage, labels: app=csi-node}
    scale: {cluster: east, namespace: shop, deployment: gateway}
    probe_image: busybox:1.36                    # runs nc (partition checks) and sh (claim fills)
    locust_image: locustio/locust:2.47.0         # distributed load (default: the version installed)
    locust_workers: 2
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from chaos.errors import ConfigError
from chaos.load.spec import MAX_WORKERS
from chaos.plan import Problems, compose, scalar
from chaos.typed import check, node_at

LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")


def parse_labels(text: str) -> dict[str, str]:
    """``app=router,tier=edge`` as a dict; equality terms only (a NetworkPolicy can negate
    those, which a partition needs)."""
    out = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = term.partition("=")
        if not sep or "!" in key or not LABEL.match(key.strip()) or not LABEL.match(value.strip()):
            raise ConfigError(f"labels {text!r}: write key=value[,key=value], e.g. app=router")
        out[key.strip()] = value.strip()
    if not out:
        raise ConfigError("labels '': a service needs a label selector, e.g. app=router")
    return out


@dataclass(frozen=True)
class Service:
    """A named group of pods on one cluster (or, ``external``, something outside them)."""

    name: str
    cluster: str = ""
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    deployment: str = ""
    port: int = 0
    claim: str = ""
    external: bool = False

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.labels.items())

    def describe(self) -> str:
        return (
            "outside the clusters" if self.external else f"{self.namespace}/{self.selector} on {self.cluster}"
        )


@dataclass(frozen=True)
class Topology:
    entry_url: str = ""
    prometheus_url: str = ""
    services: dict[str, Service] = field(default_factory=dict)
    storage_backend: Service | None = None
    scale: dict[str, str] = field(default_factory=dict)
    probe_image: str = "busybox:1.36"
    locust_image: str = ""  # default: locustio/locust of the version installed here
    locust_workers: int = 2
    cluster_urls: dict[str, str] = field(default_factory=dict)  # each cluster's own entry, by role

    def service(self, name: str) -> Service:
        if name not in self.services:
            known = ", ".join(self.services) or "none: give --kube-topology FILE"
            raise ConfigError(f"no service {name!r} in the kube topology; services are: {known}")
        return self.services[name]


URL = "^https?://"


class ServiceFile(BaseModel):
    """A named group of pods on one cluster, or ``external: true``: something outside them."""

    model_config = ConfigDict(extra="forbid")

    cluster: str = Field("", description="the context's role", examples=["east"])
    namespace: str = Field("", examples=["shop"])
    labels: str = Field("", description="key=value[,key=value]", examples=["app=router"])
    deployment: str = Field("", examples=["router"])
    port: int | None = Field(None, ge=1, le=65535, examples=[8080])
    claim: str = Field("", description="its data's PersistentVolumeClaim", examples=["inventory-data"])
    external: bool = Field(False, examples=[True])


class ScaleFile(BaseModel):
    """The autoscaled workload."""

    model_config = ConfigDict(extra="forbid")

    cluster: str = Field(examples=["east"])
    namespace: str = Field(examples=["shop"])
    deployment: str = Field(examples=["gateway"])


class KubeTopologyFile(BaseModel):
    """What the experiments' names mean on real clusters (docs/kube.md)."""

    # types only: `load_topology` checks the rest (URLs, roles, label selectors)
    model_config = ConfigDict(extra="forbid", title="chaos kube topology (docs/kube.md)")

    entry_url: str | None = Field(
        None,
        description="the global entry",
        examples=["https://shop.example.com"],
        json_schema_extra={"pattern": URL},
    )
    cluster_urls: dict[str, str | None] | None = Field(
        None,
        description="each cluster's own entry, by role",
        examples=[{"east": "https://east.shop.example.com"}],
    )
    prometheus_url: str | None = Field(
        None, examples=["http://prometheus.example.com:9090"], json_schema_extra={"pattern": URL}
    )
    services: dict[str, ServiceFile] | None = Field(
        None, examples=[{"east-router": {"cluster": "east", "namespace": "ingress", "labels": "app=router"}}]
    )
    storage_backend: ServiceFile | None = Field(
        None, examples=[{"cluster": "east", "namespace": "storage", "labels": "app=csi-node"}]
    )
    scale: ScaleFile | None = Field(
        None, examples=[{"cluster": "east", "namespace": "shop", "deployment": "gateway"}]
    )
    probe_image: str | None = Field(None, examples=["busybox:1.36"])
    locust_image: str | None = Field(None, examples=["locustio/locust:2.47.0"])
    locust_workers: int = Field(2, ge=1, le=MAX_WORKERS, examples=[2])


SERVICE_KEYS = set(ServiceFile.model_fields)


def _service(
    name: str, raw: ServiceFile, node: yaml.Node | None, where: str, *, roles: set[str], problems: Problems
) -> Service | None:
    if raw.external:
        return Service(name, external=True)
    before = len(problems.items)
    for key in ("cluster", "namespace", "labels"):
        if not getattr(raw, key):
            problems.add(node, f"{where}: {key} is missing")
    if roles and raw.cluster and raw.cluster not in roles:
        problems.add(
            node, f"{where}: cluster {raw.cluster!r} is not a context's role ({', '.join(sorted(roles))})"
        )
    labels: dict[str, str] = {}
    if raw.labels:
        try:
            labels = parse_labels(raw.labels)
        except ConfigError as exc:
            for p in exc.problems:
                problems.add(node_at(node, ("labels",)) if node else None, f"{where}: {p}")
    if len(problems.items) > before:
        return None
    return Service(name, raw.cluster, raw.namespace, labels, raw.deployment, raw.port or 0, raw.claim)


def load_topology(path: Path | None, roles: set[str], problems: list[str]) -> Topology:
    """The topology file, every problem collected in ``problems`` (none: an empty topology),
    each with its file and line."""
    if path is None:
        return Topology()
    found = Problems(path, prefix="--kube-topology ")
    try:
        return _load(path, roles, found)
    except ConfigError as exc:
        found.items += [f"--kube-topology {p}" for p in exc.problems]
        return Topology()
    finally:
        problems += found.items


def _load(path: Path, roles: set[str], problems: Problems) -> Topology:
    root = compose(path, "kube topology")
    if not isinstance(root, yaml.MappingNode):
        problems.add(root, "a mapping with services:, entry_url:, prometheus_url:")
        return Topology()
    doc = scalar(root)
    raw_services = doc.pop("services", None) or {}  # each service is checked on its own
    topo, _ = check(KubeTopologyFile, doc, root, problems)
    cluster_urls = topo.cluster_urls or {}
    urls: dict[tuple[str, ...], Any] = {(key,): getattr(topo, key) for key in ("entry_url", "prometheus_url")}
    urls |= {("cluster_urls", role): url for role, url in cluster_urls.items()}
    for loc, url in urls.items():
        given = bool(url) or loc[0] == "cluster_urls"  # a role named must have its URL
        if given and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            problems.add(node_at(root, loc), f"{'.'.join(loc)} {url!r}: an http:// or https:// URL")
    for role in cluster_urls:
        if roles and role not in roles:
            problems.add(
                node_at(root, ("cluster_urls", role)),
                f"cluster_urls.{role}: not a context's role ({', '.join(sorted(roles))})",
            )
    services = {}
    if not isinstance(raw_services, dict):
        problems.add(
            node_at(root, ("services",)), "services: a mapping of name: {cluster, namespace, labels}"
        )
        raw_services = {}
    for name, raw in raw_services.items():
        node = node_at(root, ("services", name))
        where = f"services.{name}"
        if not isinstance(raw, dict):
            problems.add(
                node, f"{where}: a mapping such as {{cluster: east, namespace: shop, labels: app=x}}"
            )
            continue
        assert node is not None
        typed, _ = check(ServiceFile, raw, node, problems, ("services", name))
        svc = _service(str(name), typed, node, where, roles=roles, problems=problems)
        if svc is not None:
            services[str(name)] = svc
    backend = None
    if topo.storage_backend is not None:
        node = node_at(root, ("storage_backend",))
        backend = _service(
            "storage backend", topo.storage_backend, node, "storage_backend", roles=roles, problems=problems
        )
    scale = topo.scale.model_dump() if topo.scale else {}
    return Topology(
        topo.entry_url or "",
        topo.prometheus_url or "",
        services,
        backend,
        scale,
        topo.probe_image or "busybox:1.36",
        topo.locust_image or "",
        topo.locust_workers,
        {str(k): str(v) for k, v in cluster_urls.items()},
    )
