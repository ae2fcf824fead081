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

from chaos.errors import ConfigError

LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")
SERVICE_KEYS = {"cluster", "namespace", "labels", "deployment", "port", "claim", "external"}


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


def _service(name: str, raw: Any, where: str, roles: set[str], problems: list[str]) -> Service | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a mapping such as {{cluster: east, namespace: shop, labels: app=x}}")
        return None
    unknown = set(raw) - SERVICE_KEYS
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(SERVICE_KEYS))}"
        )
    if raw.get("external"):
        return Service(name, external=True)
    before = len(problems)
    for key in ("cluster", "namespace", "labels"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            problems.append(f"{where}: {key} is missing")
    if roles and isinstance(raw.get("cluster"), str) and raw["cluster"] not in roles:
        problems.append(
            f"{where}: cluster {raw['cluster']!r} is not a context's role ({', '.join(sorted(roles))})"
        )
    port = raw.get("port", 0)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        problems.append(f"{where}: port {port!r}: a TCP port number")
    labels: dict[str, str] = {}
    if isinstance(raw.get("labels"), str):
        try:
            labels = parse_labels(raw["labels"])
        except ConfigError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)
    if len(problems) > before:
        return None
    return Service(
        name,
        raw["cluster"],
        raw["namespace"],
        labels,
        str(raw.get("deployment", "")),
        int(port),
        str(raw.get("claim", "")),
    )


def load_topology(path: Path | None, roles: set[str], problems: list[str]) -> Topology:
    """The topology file, every problem collected in ``problems`` (none: an empty topology)."""
    if path is None:
        return Topology()
    import yaml

    from chaos.userfiles import read_user_file

    try:
        doc = yaml.safe_load(read_user_file(path, "kube topology"))
    except ConfigError as exc:
        problems += [f"--kube-topology {p}" for p in exc.problems]
        return Topology()
    except yaml.YAMLError as exc:
        problems.append(f"--kube-topology {path}: not valid YAML: {exc}")
        return Topology()
    if not isinstance(doc, dict):
        problems.append(f"--kube-topology {path}: a mapping with services:, entry_url:, prometheus_url:")
        return Topology()
    known = {"entry_url", "prometheus_url", "services", "storage_backend", "scale", "probe_image"}
    known |= {"locust_image", "locust_workers", "cluster_urls"}
    if set(doc) - known:
        problems.append(f"--kube-topology {path}: unknown key(s) {', '.join(sorted(set(doc) - known))}")
    cluster_urls = doc.get("cluster_urls") or {}
    if not isinstance(cluster_urls, dict):
        problems.append(f"--kube-topology {path}: cluster_urls: a mapping of cluster role: URL")
        cluster_urls = {}
    urls = {key: doc.get(key, "") for key in ("entry_url", "prometheus_url")}
    urls |= {f"cluster_urls.{role}": url for role, url in cluster_urls.items()}
    for key, url in urls.items():
        given = bool(url) or key.startswith("cluster_urls.")  # a role named must have its URL
        if given and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            problems.append(f"--kube-topology {path}: {key} {url!r}: an http:// or https:// URL")
    for role in cluster_urls:
        if roles and role not in roles:
            problems.append(
                f"--kube-topology {path}: cluster_urls.{role}: not a context's role "
                f"({', '.join(sorted(roles))})"
            )
    services = {}
    raw_services = doc.get("services") or {}
    if not isinstance(raw_services, dict):
        problems.append(
            f"--kube-topology {path}: services: a mapping of name: {{cluster, namespace, labels}}"
        )
        raw_services = {}
    for name, raw in raw_services.items():
        svc = _service(str(name), raw, f"--kube-topology {path}: services.{name}", roles, problems)
        if svc is not None:
            services[str(name)] = svc
    backend = None
    if doc.get("storage_backend") is not None:
        backend = _service(
            "storage backend",
            doc["storage_backend"],
            f"--kube-topology {path}: storage_backend",
            roles,
            problems,
        )
    scale = doc.get("scale") or {}
    if not isinstance(scale, dict) or (scale and not {"cluster", "namespace", "deployment"} <= set(scale)):
        problems.append(
            f"--kube-topology {path}: scale: {{cluster, namespace, deployment}} of the autoscaled workload"
        )
        scale = {}
    return Topology(
        str(doc.get("entry_url") or ""),
        str(doc.get("prometheus_url") or ""),
        services,
        backend,
        {str(k): str(v) for k, v in scale.items()},
        str(doc.get("probe_image") or "busybox:1.36"),
        str(doc.get("locust_image") or ""),
        _workers(doc.get("locust_workers", 2), path, problems),
        {str(k): str(v) for k, v in cluster_urls.items()},
    )


def _workers(raw: Any, path: Path, problems: list[str]) -> int:
    from chaos.load import MAX_WORKERS

    if not isinstance(raw, int) or not 1 <= raw <= MAX_WORKERS:
        problems.append(f"--kube-topology {path}: locust_workers {raw!r}: 1 to {MAX_WORKERS} worker pods")
        return 1
    return raw
