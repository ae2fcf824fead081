"""The control plane's etcd on a cluster: its members (static pods in kube-system), the
leader (each member's ``etcd_server_is_leader`` through the API server's pod proxy), and a
durability target that writes through the API server into etcd (one ConfigMap per write)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from chaos.durability import WriteTimeout
from chaos.errors import NotSupported, PlatformError
from chaos.kube.connect import Cluster
from chaos.platform import Masters, Member, failure_tolerance, quorum
from chaos.slo import Measure

ETCD_NAMESPACE = "kube-system"
ETCD_SELECTOR = "component=etcd"
METRICS_PORT = 2381  # etcd's --listen-metrics-urls on kubeadm control planes
MANAGED = "chaos.io/managed"
EXPIRES = "chaos.io/expires-at"
PROBE = "chaos.io/probe"


def managed_metadata(name: str, ttl: float, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Every object the framework creates carries these: the reaper deletes it once expired."""
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl))
    return {"name": name, "labels": {MANAGED: "true", **(labels or {})}, "annotations": {EXPIRES: expires}}


class ConfigMapKV:
    """Writes as ConfigMaps: acknowledged when the API server has stored them in etcd."""

    def __init__(self, cluster: Cluster, namespace: str, ttl: float) -> None:
        self.cluster, self.namespace, self.ttl = cluster, namespace, ttl

    @staticmethod
    def _probe_id(key: str) -> str:
        return hashlib.sha1(key.rsplit("/", 2)[0].encode()).hexdigest()[:12]

    def put(self, key: str, value: str, timeout: float) -> None:
        from kubernetes.client.exceptions import ApiException

        name = "chaos-w-" + hashlib.sha1(key.encode()).hexdigest()[:20]
        meta = managed_metadata(name, self.ttl, {PROBE: self._probe_id(key)})
        meta["annotations"]["chaos.io/key"] = key
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"value": value}}
        try:
            self.cluster.core.create_namespaced_config_map(self.namespace, body, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status in (500, 504) or exc.status is None:
                # the API server may have stored it before etcd timed out: outcome unknown
                raise WriteTimeout(f"HTTP {exc.status}: {exc.reason}") from exc
            raise PlatformError(f"write refused: HTTP {exc.status} {exc.reason}") from exc
        except Exception as exc:  # urllib3 timeouts and resets: outcome unknown
            raise WriteTimeout(f"{type(exc).__name__}: {exc}") from exc

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        selector = f"{PROBE}={self._probe_id(prefix + 'x')}"
        listed = self.cluster.call(
            "list",
            "configmaps",
            self.namespace,
            self.cluster.core.list_namespaced_config_map,
            self.namespace,
            label_selector=selector,
        )
        out = {}
        for cm in listed.items:
            key = (cm.metadata.annotations or {}).get("chaos.io/key", "")
            if key.startswith(prefix):
                out[key] = (cm.data or {}).get("value", "")
        return out


class KubeMasters(Masters):
    def __init__(self, cluster: Cluster, kv_namespace: str, ttl: float) -> None:
        self.cluster = cluster
        self.kv_namespace = kv_namespace
        self.ttl = ttl

    def pods(self) -> list[Any]:
        core = self.cluster.core
        listed = self.cluster.call(
            "list",
            "pods",
            ETCD_NAMESPACE,
            core.list_namespaced_pod,
            ETCD_NAMESPACE,
            label_selector=ETCD_SELECTOR,
        )
        pods = sorted(listed.items, key=lambda p: p.metadata.name)
        if not pods:
            raise PlatformError(
                f"no etcd pods ({ETCD_SELECTOR}) in {ETCD_NAMESPACE} on {self.cluster.role}: "
                "a managed control plane hides etcd, so master experiments cannot run there"
            )
        return pods

    def names(self) -> list[str]:
        return [p.metadata.name for p in self.pods()]

    def node_of(self, name: str) -> str:
        return str(next(p.spec.node_name for p in self.pods() if p.metadata.name == name))

    def metrics(self, name: str, timeout: float = 1.0) -> dict[str, float] | None:
        """The member's own metrics, or None when it does not answer."""
        core = self.cluster.core
        try:
            text = core.connect_get_namespaced_pod_proxy_with_path(
                f"{name}:{METRICS_PORT}", ETCD_NAMESPACE, "metrics", _request_timeout=timeout
            )
        except Exception:  # noqa: BLE001  a dead or unreachable member simply has no metrics
            return None
        out = {}
        for line in str(text).splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    continue
        return out

    def leader(self) -> str | None:
        answers = {n: self.metrics(n) for n in self.names()}
        leaders = [n for n, m in answers.items() if m and m.get("etcd_server_is_leader") == 1]
        answering = sum(1 for m in answers.values() if m is not None)
        # a leader only counts while a quorum of members answers
        return leaders[0] if len(leaders) == 1 and answering >= self.quorum() else None

    def healthy(self) -> list[str]:
        return [
            n
            for n in self.names()
            if (m := self.metrics(n)) is not None and m.get("etcd_server_has_leader") == 1
        ]

    def quorum(self) -> int:
        return quorum(len(self.names()))

    def tolerance(self) -> Measure:
        return failure_tolerance(self)

    def kv(self) -> ConfigMapKV:
        return ConfigMapKV(self.cluster, self.kv_namespace, self.ttl)

    def only(self, name: str) -> Member:
        raise NotSupported(
            f"writing to etcd member {name} alone: on Kubernetes every write goes through the API "
            "server, which picks the member; the framework holds no etcd client certificates"
        )

    def lag(self, name: str) -> int:
        raise NotSupported(
            f"the raft lag of {name}: etcd's status endpoint needs its client certificates, which the "
            "framework does not hold on Kubernetes"
        )
