"""The control plane's etcd on a cluster: its members (static pods in kube-system), the
leader (each member's own state, read by ``etcd_status``), and a durability target that writes
through the API server into etcd (one ConfigMap per write)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from chaos.durability import WriteTimeout
from chaos.errors import NotSupported, PlatformError
from chaos.kube.connect import Cluster
from chaos.kube.etcd_status import ETCD_NAMESPACE, EtcdReader, MemberStatus
from chaos.platform import Masters, Member, failure_tolerance, quorum
from chaos.slo import Measure

ETCD_SELECTOR = "component=etcd"
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
            if exc.status == 409:
                # the key is this write's alone: an earlier attempt of it (a client retry) stored it
                return
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
        self.reader = EtcdReader(cluster)

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

    def pod(self, name: str) -> Any:
        return next(p for p in self.pods() if p.metadata.name == name)

    def statuses(self) -> dict[str, MemberStatus]:
        """Every member's own state. Raises ObservationError when one cannot be seen: a member
        is down only on positive evidence (its container gone, its process refusing)."""
        return {s.name: s for s in self.reader.read_all(self.pods())}

    def status(self, name: str) -> MemberStatus:
        return self.reader.read_all([self.pod(name)])[0]

    def leader(self) -> str | None:
        answers = self.statuses()
        leaders = [n for n, s in answers.items() if s.is_leader]
        answering = sum(1 for s in answers.values() if s.answering)
        # a leader only counts while a quorum of members answers
        return leaders[0] if len(leaders) == 1 and answering >= quorum(len(answers)) else None

    def healthy(self) -> list[str]:
        return [n for n, s in self.statuses().items() if s.answering and s.has_leader]

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
        answers = self.statuses()
        if self.reader.path != "exec":
            raise NotSupported(
                f"the raft lag of {name}: etcd's metrics carry no raft index; the exec path "
                "(etcdctl in the member, used where the metrics are not exposed) does"
            )
        leader = next((s for s in answers.values() if s.is_leader), None)
        mine = answers.get(name)
        if leader is None or mine is None or not mine.answering or mine.raft_index is None:
            raise PlatformError(f"the raft lag of {name}: it or the leader does not answer")
        return max(0, (leader.raft_index or 0) - mine.raft_index)
