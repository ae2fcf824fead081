"""The Kubernetes clusters as a Platform: what experiments see of real clusters (or the API
emulator). The names experiments use (``east-router``, ``east-inv``, ``gtm``) come from the
kube topology (``--kube-topology``). What a cluster cannot do (Chaos Mesh not installed, a
name the topology lacks, etcd's host-path data) raises ``NotSupported``, which the pytest
plugin reports as a skip with the reason."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chaos.context import RunContext
from chaos.errors import ConfigError, NotSupported, PlatformError
from chaos.fault import Fault, Together
from chaos.kube.connect import Cluster
from chaos.kube.events import EventRecorder
from chaos.kube.kill_master import KubeKillMaster
from chaos.kube.masters import EXPIRES, KubeMasters
from chaos.kube.pod_faults import KillPods, ScaleDeployment
from chaos.kube.targets import BlastRadius, running_pods
from chaos.kube.topology import Service, Topology
from chaos.load import Load, LoadEngine, LoadRun, LoadSpec
from chaos.platform import Capacity, Platform, Rollout, Store

if TYPE_CHECKING:
    from chaos.config import RunConfig
from chaos.platform import LinkFault, StorageFault
from chaos.wait import WaitTimeout, wait_until

NO_TOPOLOGY = "give the services experiments name in --kube-topology FILE (docs/kube.md)"


NO_SCALE = "name the autoscaled workload (scale:) in --kube-topology"


class KubePlatform(Platform):
    name = "kube"

    def __init__(
        self,
        ctx: RunContext,
        clusters: dict[str, Cluster],
        radius: BlastRadius,
        topology: Topology | None = None,
        load: str = "cluster",
    ) -> None:
        if not clusters:
            raise ConfigError("--platform kube needs at least one --kube-context ROLE=CONTEXT")
        if not radius.namespaces:
            raise ConfigError("--platform kube needs a blast radius: --kube-namespace NAMESPACE (repeatable)")
        self.ctx, self.clusters, self.radius = ctx, clusters, radius
        self.topology = topology or Topology()
        self.load = load  # where Locust runs: as pods in the first cluster, or here ("local")
        self.primary = next(iter(clusters.values()))
        self.namespace = radius.namespaces[0]  # where the framework's own objects live
        self._masters = KubeMasters(self.primary, self.namespace, ctx.fault_ttl)

    @property
    def masters(self) -> KubeMasters:
        return self._masters

    @property
    def entry_url(self) -> str:
        if not self.topology.entry_url:
            raise NotSupported("no global entry URL: set entry_url in --kube-topology FILE")
        return self.topology.entry_url

    @property
    def prometheus_url(self) -> str:
        if not self.topology.prometheus_url:
            raise NotSupported("no Prometheus URL: set prometheus_url in --kube-topology FILE")
        return self.topology.prometheus_url

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

    def capacity(self, cluster: str | None = None) -> Capacity:
        """Of ``cluster`` (the first one by default), in millicores: CPU allocatable, used,
        held in reserve by placeholder pods, free; headroom (free + reserve, as a share) and
        pending pods; and, for the topology's ``scale:`` workload, its ready replicas and its
        HPA's status (``desired``)."""
        from chaos.kube.observe import capacity, scaled

        c = self._cluster(cluster)
        figures = capacity(c)
        target = self.topology.scale
        if target and target["cluster"] == c.role:
            figures.update(scaled(c, target["namespace"], target["deployment"]))
        hpa = figures.get("hpa") or {}
        return Capacity(
            headroom=figures["headroom"],
            reserve=figures["reserve"],
            ready=figures.get("ready"),
            desired=hpa.get("desired"),
            unit="mcpu",
            figures=figures,
            hint="" if target else NO_SCALE,
        )

    def cluster_url(self, cluster: str) -> str:
        self._cluster(cluster)
        url = self.topology.cluster_urls.get(cluster)
        if not url:
            raise NotSupported(
                f"no entry of cluster {cluster!r} past the traffic manager: give cluster_urls: "
                f"{{{cluster}: URL}} (its ingress's address) in --kube-topology"
            )
        return url

    def hosts(self, cluster: str | None = None) -> dict[str, list[str]]:
        """The cluster's nodes, each with the ready pods of the topology's ``scale:`` workload
        running there now."""
        from chaos.kube.observe import placement

        c = self._cluster(cluster)
        target = self.topology.scale
        if not target or target["cluster"] != c.role:
            raise NotSupported(f"no autoscaled workload on {c.role} to place: {NO_SCALE}")
        return placement(c, target["namespace"], target["deployment"])

    def lose_host(self, host: str) -> Fault:
        """The node ``host`` cordoned and every pod of the blast radius on it deleted at once."""
        from chaos.kube.node_faults import LoseNode
        from chaos.kube.observe import node_names

        known = {role: node_names(c) for role, c in self.clusters.items()}
        for role, names in known.items():
            if host in names:
                return LoseNode(self.ctx, self.clusters[role], host, self.radius)
        listed = "; ".join(f"{role}: {', '.join(names)}" for role, names in known.items())
        raise ConfigError(f"no node {host!r} in any cluster ({listed})")

    def cold_standby(self, cluster: str) -> Fault:
        """Every deployment the topology names on ``cluster`` scaled to zero until activated;
        the activation scales each back to what it ran (all at once) and does not wait: the
        experiment's probes measure when the cluster serves again."""
        c = self._cluster(cluster)
        if c is self.primary:
            backups = ", ".join(r for r in self.clusters if r != c.role) or "none in this topology"
            raise ConfigError(
                f"{cluster} is the primary cluster; only a backup cluster can be held cold: {backups}"
            )
        held = [
            s
            for s in self.topology.services.values()
            if s.cluster == c.role and s.deployment and not s.external
        ]
        if not held:
            raise NotSupported(
                f"no service of cluster {cluster} names its deployment in --kube-topology: give "
                "deployment: for the services a cold standby stops"
            )
        parts: list[Fault] = [
            ScaleDeployment(self.ctx, c, s.namespace, s.deployment, self.radius, replicas=0) for s in held
        ]
        names = ", ".join(f"{s.namespace}/{s.deployment}" for s in held)
        return Together(
            self.ctx,
            parts,
            kind="cold_standby",
            description=f"hold cluster {cluster} cold ({names} scaled to 0 until activated)",
        )

    def lose_registry(self) -> Fault:
        """The topology's ``registry`` (the clusters' own image registry) scaled to zero until
        the revert: every pull fails while it is out."""
        svc = self.topology.services.get("registry")
        if svc is None or svc.external or not svc.deployment:
            raise NotSupported(
                "name the clusters' image registry in --kube-topology (services: registry: {cluster, "
                "namespace, labels, deployment}): a registry outside the clusters cannot be taken away "
                "through their API"
            )
        cluster = self._cluster(svc.cluster)
        part = ScaleDeployment(self.ctx, cluster, svc.namespace, svc.deployment, self.radius, replicas=0)
        where = f"{svc.namespace}/{svc.deployment} on {cluster.role}"
        return Together(
            self.ctx, [part], kind="lose_registry", description=f"lose the image registry ({where})"
        )

    def roll_out(self, service: str, version: str) -> Fault:
        from chaos.kube.rollout import RollOut

        svc = self._rolled(service)
        cluster = self._cluster(svc.cluster)
        return RollOut(self.ctx, cluster, svc.namespace, svc.deployment, version=version, radius=self.radius)

    def rollout(self, service: str) -> Rollout:
        from chaos.kube.rollout import status

        svc = self._rolled(service)
        return status(self._cluster(svc.cluster), svc.namespace, svc.deployment, svc.selector)

    def _rolled(self, service: str) -> Service:
        svc = self._service(service)
        if svc.external or not svc.deployment:
            raise NotSupported(
                f"{service} names no deployment in --kube-topology: give deployment: to roll it out"
            )
        return svc

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
        """The topology's services: what partitions and degraded links can name."""
        if not self.topology.services:
            raise NotSupported(f"no services to partition: {NO_TOPOLOGY}")
        return list(self.topology.services)

    def _service(self, name: str) -> Service:
        if name in self.topology.services:
            return self.topology.services[name]
        if not self.topology.services:
            raise NotSupported(f"{name!r} is not a service on Kubernetes: {NO_TOPOLOGY}")
        if name in self._masters_names():
            raise NotSupported(
                f"{name} is an etcd member on the host network: NetworkPolicies do not apply to it"
            )
        return self.topology.service(name)  # ConfigError naming the services there are

    def _masters_names(self) -> list[str]:
        try:
            return self._masters.names()
        except PlatformError:
            return []

    def partition(
        self,
        groups: list[list[str]],
        *,
        label: str = "",
        cuts: list[tuple[list[str], list[str]]] | None = None,
    ) -> Fault:
        from chaos.kube.netpol import KubePartition

        if cuts:
            raise NotSupported("partial partitions (cuts=) on Kubernetes: give exactly two sides")
        sides = [[self._service(n) for n in g] for g in groups]
        return KubePartition(
            self.ctx,
            self.clusters,
            self.radius,
            sides,
            label=label,
            probe_image=self.topology.probe_image,
        )

    def degrade(self, src: list[str], dst: str, link: LinkFault) -> Fault:
        from chaos.kube.chaosmesh import ChaosMeshFault, netem, selector

        if link.problems():
            raise ConfigError(link.problems())
        sources = [self._service(n) for n in src]
        target = self._service(dst)
        if any(s.external for s in [*sources, target]):
            raise NotSupported("degrading a link from outside the clusters: Chaos Mesh acts on pods only")
        roles = {s.cluster for s in [*sources, target]}
        if len(roles) > 1:
            raise NotSupported(f"degrading a link between clusters ({', '.join(sorted(roles))})")
        to = {"mode": "all", "selector": selector([target])}
        specs = [
            {"action": action, "selector": selector(sources), "direction": "to", "target": to, **effects}
            for action, effects in netem(link)
        ]
        return ChaosMeshFault(
            self.ctx,
            self._cluster(roles.pop()),
            self.radius,
            "NetworkChaos",
            specs,
            describe=f"degrade {', '.join(src)} -> {dst} ({link.describe()})",
            targets=[*sources, target],
        )

    def kill_service(self, name: str) -> Fault:
        """Its deployment scaled to zero until revert (a sustained outage) when the topology
        names one, else its pods killed (their controller restarts them)."""
        svc = self._service(name)
        if svc.external:
            raise NotSupported(f"{name} is outside the clusters: nothing to kill there")
        return self._take_down(svc)

    def _take_down(self, svc: Service) -> Fault:
        cluster = self._cluster(svc.cluster)
        if svc.deployment:
            return ScaleDeployment(self.ctx, cluster, svc.namespace, svc.deployment, self.radius, replicas=0)
        count = max(1, len(running_pods(cluster, svc.namespace, svc.selector)))
        return KillPods(self.ctx, cluster, svc.namespace, self.radius, labels=svc.selector, count=count)

    def load_engine(self) -> LoadEngine:
        """Loads as Locust pods (master, workers) on the first cluster, in the blast radius;
        or, with ``load="local"``, a Locust process here."""
        from chaos.kube.locust import KubeLoad

        if self.load == "local":
            return Load

        topo = self.topology

        def engine(ctx: RunContext, spec: LoadSpec, name: str) -> LoadRun:
            image, workers = topo.locust_image, topo.locust_workers
            return KubeLoad(ctx, spec, self.primary, self.radius, name, image=image, workers=workers)

        return engine

    def inventory(self, cluster: str | None = None) -> Store:
        raise NotSupported(
            f"platform.inventory({cluster!r}) is the lab's sample workload; on Kubernetes write your "
            "service's own durability target (a KV with put/read_prefix)"
        )

    def volumes(self) -> list[str]:
        """Services whose pods mount a claim (topology ``claim:``)."""
        named = [n for n, s in self.topology.services.items() if s.claim]
        if not named:
            raise NotSupported(f"no volumes: name a service's claim: {NO_TOPOLOGY}")
        return named

    def fail_storage(
        self, volumes: list[str], fault: StorageFault, *, allow_below_quorum: bool = False
    ) -> Fault:
        from chaos.kube.chaosmesh import ChaosMeshFault
        from chaos.kube.storage import FillClaim, claim_mount, iochaos_spec, using_pod

        if fault.problems():
            raise ConfigError(fault.problems())
        members = set(self._masters_names())
        masters = [v for v in volumes if v in members]
        if masters:
            raise NotSupported(
                f"{masters[0]}'s data is a host path on its control-plane node, shared with the node's own "
                "disk: the framework does not fill or break it"
            )
        if len(volumes) != 1:
            raise NotSupported("on Kubernetes a storage fault names one volume at a time")
        name = volumes[0]
        svc = self._service(name)
        if not svc.claim:
            raise NotSupported(
                f"{name} has no claim: in the kube topology (volumes: {', '.join(self.volumes())})"
            )
        cluster = self._cluster(svc.cluster)
        if fault.mode == "full":
            return FillClaim(self.ctx, cluster, self.radius, svc, image=self.topology.probe_image)
        if fault.mode == "lost":
            backend = self.topology.storage_backend
            if backend is None:
                raise NotSupported(f"mode 'lost' on Kubernetes takes the storage backend away: {NO_TOPOLOGY}")
            return self._take_down(backend)
        container, path = claim_mount(using_pod(cluster, svc), svc.claim)
        return ChaosMeshFault(
            self.ctx,
            cluster,
            self.radius,
            "IOChaos",
            [iochaos_spec(fault, svc, container, path)],
            describe=f"{fault.describe()} storage under {name} ({svc.claim} at {path})",
            targets=[svc],
        )

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
    """Delete the framework's objects (label chaos.io/managed) whose expiry has passed: pods,
    ConfigMaps, NetworkPolicies, and Chaos Mesh objects where Chaos Mesh is installed."""
    from chaos.kube.connect import NotFound
    from chaos.kube.objects import KINDS, delete, list_managed

    now = time.time() if now is None else now
    removed = []
    for ns in namespaces:
        for kind in KINDS.values():
            try:
                listed = list_managed(cluster, kind.name, ns)
            except NotFound:  # a CRD that is not installed has nothing to reap
                continue
            for obj in listed:
                expires = obj["annotations"].get(EXPIRES)
                expired = expires and calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) < now
                if expired and delete(cluster, kind.name, ns, obj["name"]):
                    removed.append(f"{kind.name.lower()} {ns}/{obj['name']} on {cluster.role}")
    return removed


def build(cfg: RunConfig, ctx: RunContext, fixture: Callable[[str], Any]) -> KubePlatform:
    """``--platform kube`` (chaos.registry): a client per --kube-context, the blast radius of
    --kube-namespace, the services of --kube-topology."""
    from chaos.kube.connect import connect

    clusters = {
        role: connect(role, context, kubeconfig=cfg.kubeconfig) for role, context in cfg.kube_contexts
    }
    radius = BlastRadius(cfg.kube_namespaces, cfg.kube_control_plane)
    return KubePlatform(ctx, clusters, radius, cfg.kube_topology, load=cfg.kube_load)
