"""The Kubernetes clusters as a Platform: what experiments see of real clusters (or the API
emulator). Faults of part 2 (partitions, degraded links, storage) are not here yet: asking
for one raises ``NotSupported``, which the pytest plugin reports as a skip with the reason."""

from __future__ import annotations

import calendar
import time
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, NotSupported, PlatformError
from chaos.fault import Fault
from chaos.kube.connect import Cluster
from chaos.kube.events import EventRecorder
from chaos.kube.faults import KillPods, ScaleDeployment
from chaos.kube.kill_master import KubeKillMaster
from chaos.kube.masters import EXPIRES, MANAGED, KubeMasters
from chaos.kube.targets import BlastRadius
from chaos.platform import LinkFault, StorageFault
from chaos.wait import WaitTimeout, wait_until

PART_2 = (
    "on Kubernetes this fault comes with the kube platform's part 2 (NetworkPolicy, Chaos Mesh, PVC faults)"
)


class KubePlatform:
    name = "kube"

    def __init__(self, ctx: RunContext, clusters: dict[str, Cluster], radius: BlastRadius) -> None:
        if not clusters:
            raise ConfigError("--platform kube needs at least one --kube-context ROLE=CONTEXT")
        if not radius.namespaces:
            raise ConfigError("--platform kube needs a blast radius: --kube-namespace NAMESPACE (repeatable)")
        self.ctx, self.clusters, self.radius = ctx, clusters, radius
        self.primary = next(iter(clusters.values()))
        self.namespace = radius.namespaces[0]  # where the framework's own objects live
        self._masters = KubeMasters(self.primary, self.namespace, ctx.fault_ttl)

    @property
    def masters(self) -> KubeMasters:
        return self._masters

    @property
    def entry_url(self) -> str:
        raise NotSupported("no global entry URL is configured for the kube platform yet")

    @property
    def prometheus_url(self) -> str:
        raise NotSupported("no Prometheus URL is configured for the kube platform yet")

    def kill_master(self, pick: str = "leader", *, allow_below_quorum: bool = False) -> Fault:
        return KubeKillMaster(
            self.ctx,
            self._masters,
            radius=self.radius,
            namespace=self.namespace,
            pick=pick,
            allow_below_quorum=allow_below_quorum,
        )

    def kill_pods(self, namespace: str, *, labels: str = "", count: int = 1, evict: bool = False) -> Fault:
        return KillPods(
            self.ctx, self.primary, namespace, self.radius, labels=labels, count=count, evict=evict
        )

    def scale(self, namespace: str, deployment: str, replicas: int = 0) -> Fault:
        return ScaleDeployment(self.ctx, self.primary, namespace, deployment, self.radius, replicas=replicas)

    def record_events(self) -> EventRecorder:
        """Start putting the clusters' events in the blast radius on the timeline."""
        return EventRecorder(self.primary, self.radius.namespaces, self.ctx.tl).start()

    def capacity(self, cluster: str | None = None) -> dict[str, Any]:
        """CPU allocatable, used, held in reserve by placeholder pods, free; headroom (free +
        reserve, as a share) and pending pods, of ``cluster`` (the first one by default)."""
        from chaos.kube.observe import capacity

        return capacity(self._cluster(cluster))

    def wait_ready(
        self,
        namespace: str,
        name: str,
        *,
        kind: str = "deployment",
        cluster: str | None = None,
        timeout: float = 60.0,
    ) -> float:
        """Seconds until the deployment (or ``kind="statefulset"``) is fully ready, by watch."""
        from chaos.kube.observe import wait_ready

        return wait_ready(self._cluster(cluster), namespace, name, kind=kind, timeout=timeout)

    def _cluster(self, role: str | None) -> Cluster:
        if role is None:
            return self.primary
        if role not in self.clusters:
            raise ConfigError(f"no cluster {role!r}; clusters are: {', '.join(self.clusters)}")
        return self.clusters[role]

    def nodes(self) -> list[str]:
        raise NotSupported(PART_2)

    def partition(
        self,
        groups: list[list[str]],
        *,
        label: str = "",
        cuts: list[tuple[list[str], list[str]]] | None = None,
    ) -> Fault:
        raise NotSupported(PART_2)

    def degrade(self, src: list[str], dst: str, link: LinkFault) -> Fault:
        raise NotSupported(PART_2)

    def kill_service(self, name: str) -> Fault:
        raise NotSupported(
            f"kill_service({name!r}): on Kubernetes, use platform.kill_pods(namespace, labels=...)"
        )

    def volumes(self) -> list[str]:
        raise NotSupported(PART_2)

    def fail_storage(
        self, volumes: list[str], fault: StorageFault, *, allow_below_quorum: bool = False
    ) -> Fault:
        raise NotSupported(PART_2)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every etcd member answers and agrees there is a leader."""
        try:
            wait_until(
                lambda: len(self._masters.healthy()) == len(self._masters.names()),
                timeout=timeout,
                interval=0.2,
                what="every etcd member to be healthy",
            )
        except WaitTimeout as exc:
            raise PlatformError(f"the control plane of {self.primary.role} is not healthy: {exc}") from exc

    def environment(self) -> dict[str, Any]:
        env: dict[str, Any] = {"platform": "kube", "namespaces": ", ".join(self.radius.namespaces)}
        for role, c in self.clusters.items():
            try:
                version = c.call("get", "version", "-", _version_api(c).get_code).git_version
            except (PlatformError, ValueError) as exc:  # ValueError: an answer the client cannot read
                version = f"unknown ({exc})"
            env[f"context {role}"] = f"{c.context} ({version})"
        return env


def _version_api(cluster: Cluster) -> Any:
    from kubernetes import client

    return client.VersionApi(cluster.api)


def reap(cluster: Cluster, namespaces: tuple[str, ...], now: float | None = None) -> list[str]:
    """Delete the framework's objects (label chaos.io/managed) whose expiry has passed."""
    now = time.time() if now is None else now
    core = cluster.core
    removed = []
    for ns in namespaces:
        for resource, lister, deleter in (
            ("pods", core.list_namespaced_pod, core.delete_namespaced_pod),
            ("configmaps", core.list_namespaced_config_map, core.delete_namespaced_config_map),
        ):
            listed = cluster.call("list", resource, ns, lister, ns, label_selector=f"{MANAGED}=true")
            for obj in listed.items:
                expires = (obj.metadata.annotations or {}).get(EXPIRES)
                if expires and calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) < now:
                    cluster.call("delete", resource, ns, deleter, obj.metadata.name, ns)
                    removed.append(f"{resource[:-1]} {ns}/{obj.metadata.name} on {cluster.role}")
    return removed
