"""The lab as a Platform: what experiments see of the embedded container cloud."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from chaos.context import RunContext
from chaos.durability import KV
from chaos.errors import ConfigError, NotSupported, PlatformError, UnsafeFaultRefused
from chaos.fault import Fault, Together
from chaos.lab import custom, topology
from chaos.lab.binaries import find
from chaos.lab.cold_standby import ColdStandby
from chaos.lab.etcd_http import EtcdClient, EtcdRegisters
from chaos.lab.inventory_kv import Inventory
from chaos.lab.kill_master import KillMaster
from chaos.lab.kill_service import KillService
from chaos.lab.lab import Lab, LabState
from chaos.lab.netfaults import Degrade, Partition
from chaos.lab.profiles import Profile
from chaos.lab.storage import FailStorage
from chaos.lab.topofile import PROMETHEUS, ClusterRole, MastersRole, Topology
from chaos.platform import (
    Capacity,
    LinkFault,
    Masters,
    Member,
    Platform,
    StorageFault,
    failure_tolerance,
    quorum,
)
from chaos.slo import Measure
from chaos.wait import WaitTimeout, wait_until

if TYPE_CHECKING:
    from chaos.config import RunConfig


class _OneMember:
    def __init__(self, url: str) -> None:
        self.url = url

    def kv(self) -> KV:
        return EtcdClient([self.url])


class TopologyStore:
    """A topology's store, or one of its members, as a durability target: its client (made
    for it alone), and the URL it answers at."""

    def __init__(self, url: str, client: KV) -> None:
        self.url = url
        self.client = client

    def kv(self) -> KV:
        return self.client


def _api_url(st: LabState) -> str | None:
    """The masters' API front, when the lab has one (a ``masters-api`` weakness): writers go
    through it as a platform's clients would, not around it."""
    front = next((s for s in st.services if s.kind == "masters-api"), None)
    return None if front is None else front.url


class LabMasters(Masters):
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def _state(self) -> LabState:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        return st

    def _role(self, st: LabState) -> tuple[Topology, MastersRole] | None:
        """The topology and its masters when the lab runs one; None for the shop. A topology
        without masters cannot answer anything the masters are asked."""
        topo = st.topo
        if topo is None:
            return None
        if topo.masters is None:
            raise NotSupported(f"topology {topo.name} declares no masters (masters: {{members: [...]}})")
        return topo, topo.masters

    def names(self) -> list[str]:
        st = self._state()
        self._role(st)
        return [m.name for m in st.members]

    def kv(self) -> KV:
        # the writer gets a client of its own: its failover preference must not steer others
        st = self._state()
        role = self._role(st)
        if role is not None:
            topo, masters = role
            nodes = [topo.node(m) for m in masters.members]
            return custom.store_kv(topo, masters.durability, nodes, Path(st.source), "masters")
        front = _api_url(st)
        return EtcdClient([front] if front else [m.client_url for m in st.members])

    def leader(self) -> str | None:
        role = self._role(self._state())
        if role is not None and role[1].leader is None:
            raise NotSupported(f"topology {role[0].name}: masters declare no leader question (leader: ...)")
        return self.lab.leader()

    def healthy(self) -> list[str]:
        st = self._state()
        role = self._role(st)
        if role is not None:
            topo = role[0]
            with httpx.Client() as http:
                return [
                    m.name
                    for m in st.members
                    if m.proc.alive() and custom.ready(topo, topo.node(m.name), self.lab.root, http)
                ]
        client = self.lab.client(st)
        return [m.name for m in st.members if m.proc.alive() and client.healthy(m.client_url, 0.5)]

    def only(self, name: str) -> Member:
        """One member as a write target: no failover to the others (to probe a minority).
        Through a write-back or spooling front, the front's route to that member."""
        st = self._state()
        role = self._role(st)
        if role is not None:
            topo, masters = role
            node = topo.node(name)
            single = custom.store_kv(topo, masters.durability, [node], Path(st.source), "masters")
            return TopologyStore(f"http://{node.address}:{node.port}", single)
        front = _api_url(st) if st.shape.masters_api in ("write-back", "spooling") else None
        return _OneMember(f"{front}/member/{name}" if front else st.member(name).client_url)

    def registers(self, member: str | None = None) -> EtcdRegisters:
        """Registers through member ``member`` alone, or any member (failing over). Straight
        to the members, not through a masters-api front: this observes what members serve.
        Reads are linearizable unless the lab's clients read serializably (a weakness)."""
        st = self._state()
        role = self._role(st)
        if role is not None and (role[1].durability is None or role[1].durability.kind != "etcd"):
            raise NotSupported(f"topology {role[0].name}: register clients speak etcd; these masters do not")
        urls = [st.member(member).client_url] if member else [m.client_url for m in st.members]
        return EtcdRegisters(urls, member, serializable=st.shape.register_reads == "serializable")

    def lag(self, name: str) -> int:
        """How many raft entries member ``name`` is behind the leader (raises if either does
        not answer)."""
        role = self._role(self._state())
        if role is not None and (role[1].leader is None or role[1].leader.kind != "etcd"):
            raise NotSupported(f"topology {role[0].name}: replication lag is known for etcd masters only")
        leader = self.leader()
        if leader is None:
            raise PlatformError("no leader")
        lead, member = self.lab.member_status(leader), self.lab.member_status(name)
        if lead is None or member is None:
            raise PlatformError(f"{name if member is None else leader} does not answer")
        return max(0, lead.raft_index - member.raft_index)

    def quorum(self) -> int:
        return quorum(len(self.names()))

    def tolerance(self) -> Measure:
        return failure_tolerance(self)


class LabPlatform(Platform):
    name = "lab"

    def __init__(self, lab: Lab, ctx: RunContext) -> None:
        self.lab = lab
        self.ctx = ctx
        self._masters = LabMasters(lab)
        self._scraped = False

    @property
    def masters(self) -> LabMasters:
        return self._masters

    def _topo(self) -> Topology | None:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        return st.topo

    @property
    def entry_url(self) -> str:
        """Where users and load enter: the global traffic manager, or a topology's entry."""
        topo = self._topo()
        if topo is None:
            return topology.entry_url()
        if not topo.entry:
            raise NotSupported(
                f"topology {topo.name} declares no entry (entry: http://${{address:NODE}}:PORT)"
            )
        return topo.render(topo.entry, None, self.lab.root)

    @property
    def prometheus_url(self) -> str:
        """Prometheus, once it scrapes every workload target: the first PromQL user after a lab
        up waits for that (and the timeline says how long), every later one finds it done."""
        topo = self._topo()
        if topo is not None and not topo.metrics:
            raise NotSupported(
                f"topology {topo.name} declares no metrics, so the lab runs no Prometheus for it "
                "(metrics: {NODE: /metrics})"
            )
        if not self._scraped:
            waited = self.lab.await_scrapes()
            self._scraped = True
            if waited >= 0.1:
                self.ctx.tl.note(
                    "prometheus", what=f"waited {waited:.1f} s for Prometheus to scrape every workload target"
                )
        if topo is not None:
            prom = topo.node(PROMETHEUS)
            return f"http://{prom.address}:{prom.port}"
        return next(s.url for s in topology.services(self._profile()) if s.kind == "prometheus")

    def service_urls(self, kind: str, cluster: str | None = None) -> list[str]:
        """Base URLs of the lab's services of ``kind`` (gateway, inventory, router, gtm; a
        topology's nodes of that ``kind``)."""
        topo = self._topo()
        if topo is not None:
            return [
                f"http://{n.address}:{n.port}"
                for n in topo.nodes
                if n.kind == kind and (cluster is None or n.cluster == cluster)
            ]
        return [
            s.url
            for s in topology.services(self._profile())
            if s.kind == kind and (cluster is None or s.cluster == cluster)
        ]

    def _profile(self) -> Profile:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        return st.shape

    @property
    def profile(self) -> str | None:
        st = self.lab.state()
        return st.profile if st else None

    def kill_master(self, pick: str = "leader", *, allow_below_quorum: bool = False) -> Fault:
        return KillMaster(self.ctx, self.lab, pick, allow_below_quorum)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Block until every master and service answers and the traffic manager routes to the
        primary cluster: an experiment starts from a healthy platform, not from the tail of
        the previous one's fault. A process a previous experiment left stopped (a fenced
        member, say) is started again first, and the timeline says so."""
        self._repair()
        topo = self._topo()
        wants_leader = topo is None or bool(topo.masters and topo.masters.leader)

        def problems() -> list[str]:
            status = self.lab.status()
            bad = [m["name"] for m in status.members if not m["healthy"]]
            bad += [s["name"] for s in status.services if not s["healthy"]]
            if wants_leader and status.leader is None:
                bad.append("no leader among the masters")
            if topo is not None:
                return bad
            if not self._primary_in_service():
                bad.append("the traffic manager does not route to the primary cluster yet")
            if not self._at_rest():
                bad.append("the autoscaler still wants more than the replicas at rest")
            return bad

        try:
            wait_until(lambda: not problems(), timeout=timeout, interval=0.1, what="the lab to be healthy")
        except WaitTimeout as exc:
            raise PlatformError(
                f"the lab is not healthy: {', '.join(problems())}; see `chaos lab status`"
            ) from exc

    def _repair(self) -> None:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        for m in st.members:
            if not m.proc.alive():
                self.ctx.tl.note("repair", what=f"etcd {m.name} was not running: started it again")
                self.lab.start_member(m.name)
        for svc in st.services:
            if not svc.proc.alive():
                self.ctx.tl.note("repair", what=f"{svc.kind} {svc.name} was not running: started it again")
                self.lab.start_service(svc.name)

    def _at_rest(self) -> bool:
        """Each cluster back at its replicas at rest, once its autoscaler no longer wants more
        (its rate window has emptied): the autoscaler scales in only after its own window, and
        an experiment that found the reserve already taken by the previous one's load would
        fail on its baseline headroom for a reason that is not its own."""
        import json

        from chaos.lab.autoscaler import BACKEND, admin, state_path, stats
        from chaos.lab.services import socket_path

        profile = self._profile()
        if not profile.autoscale:
            return True
        for cluster in profile.clusters:
            try:
                wanted = json.loads(state_path(self.lab.root, cluster).read_text()).get("desired")
            except (OSError, ValueError):
                return False
            if wanted is None or wanted > profile.min_replicas:
                return False
            sock = str(socket_path(self.lab.root, f"{cluster}-router"))
            servers = stats(sock)
            reserve = [f"{cluster}-gw{i}" for i in range(profile.min_replicas + 1, profile.gateway_slots + 1)]
            extra = [s for s in reserve if "MAINT" not in servers.get(s, {}).get("status", "MAINT")]
            for name in extra:
                admin(sock, f"set server {BACKEND}/{name} state maint")
            if extra:
                self.ctx.tl.note(
                    "repair", what=f"{cluster}: took {', '.join(extra)} out of rotation (back at rest)"
                )
        return True

    def _primary_in_service(self) -> bool:
        from chaos.lab.autoscaler import stats
        from chaos.lab.services import socket_path

        primary = self._profile().clusters[0]
        try:
            servers = stats(str(socket_path(self.lab.root, "gtm")), backend="clusters")
        except OSError:
            return False
        return servers.get(primary, {}).get("status", "").startswith("UP")

    def capacity(self, cluster: str | None = None) -> Capacity:
        """The cluster's gateway capacity (the first cluster's by default), in slots: replicas
        in rotation and ready, the reserve the profile holds, free slots and headroom (free /
        capacity), and what the autoscaler wants. Scale events come from the autoscaler's own
        record. On a topology: see ``_replica_capacity``."""
        from chaos.lab.autoscaler import state_path
        from chaos.lab.capacity import in_rotation
        from chaos.lab.services import socket_path

        topo = self._topo()
        if topo is not None:
            return self._replica_capacity(topo, cluster)
        profile = self._profile()
        cluster = self._cluster(cluster)
        return in_rotation(
            str(socket_path(self.lab.root, f"{cluster}-router")),
            "gateways",
            [s.name for s in topology.services(profile) if s.kind == "gateway" and s.cluster == cluster],
            state_path(self.lab.root, cluster),
            reserve=profile.reserve,
            reserved=profile.reserved_slots,
            autoscaled=profile.autoscale,
        )

    def _replica_capacity(self, topo: Topology, cluster: str | None) -> Capacity:
        """A topology's cluster (the primary when None): autoscaled, as the shop's (its
        balancer's rotation, the autoscaler's record); otherwise its declared replicas, ``ready``
        the ones running and passing their readiness checks now, headroom and reserve unknown."""
        import httpx

        from chaos.lab import custom

        if not topo.clusters:
            raise NotSupported(
                f"topology {topo.name} declares no clusters, so no capacity: add "
                "clusters: {NAME: {replicas: [NODE, ...]}} to count a cluster's ready replicas"
            )
        role = topo.cluster(cluster)
        if role.autoscale is not None:
            from chaos.lab.autoscaler import state_path
            from chaos.lab.capacity import in_rotation

            slots = len(role.replicas)
            return in_rotation(
                topo.render(role.autoscale.socket, None, self.lab.root),
                role.autoscale.backend,
                list(role.replicas),
                state_path(self.lab.root, role.name),
                reserve=(slots - role.autoscale.min) / slots,
                reserved=slots - role.autoscale.min,
                autoscaled=True,
            )
        if not role.replicas:
            raise NotSupported(
                f"topology {topo.name}: cluster {role.name} declares no replicas (replicas: [NODE, ...])"
            )
        st = self.lab.state()
        assert st is not None
        with httpx.Client() as http:
            ready = [
                n
                for n in role.replicas
                if st.service(n).proc.alive() and custom.ready(topo, topo.node(n), self.lab.root, http)
            ]
        return Capacity(
            headroom=None,
            reserve=None,
            ready=len(ready),
            unit="replicas",
            figures={"replicas": len(role.replicas), "ready_replicas": ready},
            hint=f"topology {topo.name}'s clusters are not autoscaled: the lab counts replicas that pass "
            "their readiness checks, and knows no headroom, reserve or desired count",
        )

    def nodes(self) -> list[str]:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        return [m.name for m in st.members] + [s.name for s in st.services if s.address]

    def partition(
        self,
        groups: list[list[str]],
        *,
        label: str = "",
        cuts: list[tuple[list[str], list[str]]] | None = None,
    ) -> Fault:
        return Partition(self.ctx, self.lab, groups or None, label, cuts)

    def degrade(self, src: list[str], dst: str, link: LinkFault) -> Fault:
        return Degrade(self.ctx, self.lab, src, dst, link)

    def kill_service(self, name: str) -> Fault:
        return KillService(self.ctx, self.lab, name)

    def cold_standby(self, cluster: str) -> Fault:
        topo = self._topo()
        if topo is not None and not any(c.replicas for c in topo.clusters):
            raise NotSupported(
                f"topology {topo.name} declares no cluster replicas to hold cold: add "
                "clusters: {NAME: {replicas: [NODE, ...]}} (the first cluster is the primary)"
            )
        return ColdStandby(self.ctx, self.lab, cluster)

    def cluster_url(self, cluster: str) -> str:
        topo = self._topo()
        if topo is not None:
            role = topo.cluster(cluster)
            if not role.entry:
                raise NotSupported(
                    f"topology {topo.name}: cluster {role.name} declares no entry of its own "
                    "(clusters: {NAME: {entry: URL}})"
                )
            return topo.render(role.entry, None, self.lab.root)
        urls = self.service_urls("router", self._cluster(cluster))
        if not urls:
            raise NotSupported(f"cluster {cluster!r} of this lab has no router")
        return urls[0]

    def hosts(self, cluster: str | None = None) -> dict[str, list[str]]:
        """The hosts ``cluster``'s gateway slots are placed on, each with its replicas that are
        in rotation and up (the router's own view); on a topology, the file's hosts, each with
        its nodes (of ``cluster``, when given) whose process runs (an autoscaled cluster's
        replicas: those its balancer has in rotation and up)."""
        from chaos.lab.autoscaler import stats
        from chaos.lab.services import socket_path

        topo = self._topo()
        if topo is not None:
            now = self.lab.state()
            assert now is not None
            clusters = sorted({n.cluster for n in topo.nodes if n.cluster})
            if cluster and cluster not in clusters:
                raise ConfigError(
                    f"no cluster {cluster!r} in topology {topo.name}; "
                    f"clusters are: {', '.join(clusters) or 'none (no node declares one)'}"
                )

            role = next((c for c in topo.clusters if c.name == cluster and c.autoscale), None)
            # an autoscaled cluster's replica serves when its balancer has it in rotation and up
            serving = (
                {n for n, row in self._rotation(topo, role).items() if row["status"] == "UP"}
                if role is not None
                else set()
            )

            def up(name: str) -> bool:
                if role is not None and name in role.replicas:
                    return name in serving
                return (now.member(name) if topo.is_member(name) else now.service(name)).proc.alive()

            return {
                h: [n for n in on if (not cluster or topo.node(n).cluster == cluster) and up(n)]
                for h, on in self._placed().items()
            }
        profile = self._profile()
        cluster = self._cluster(cluster)
        st = stats(str(socket_path(self.lab.root, f"{cluster}-router")))
        serving = {n for n, row in st.items() if row["status"] == "UP"}
        return {
            h: [g for g in slots if g in serving] for h, slots in topology.hosts(profile, cluster).items()
        }

    def _rotation(self, topo: Topology, role: ClusterRole) -> dict[str, dict[str, str]]:
        """The autoscaled cluster's backend as its balancer reports it, by server."""
        from chaos.lab.autoscaler import stats

        assert role.autoscale is not None
        return stats(topo.render(role.autoscale.socket, None, self.lab.root), role.autoscale.backend)

    def _placed(self) -> dict[str, list[str]]:
        """Every host with the nodes placed on it."""
        topo = self._topo()
        if topo is None:
            profile = self._profile()
            return {h: on for c in profile.clusters for h, on in topology.hosts(profile, c).items()}
        if not topo.hosts:
            raise NotSupported(
                f"topology {topo.name} declares no hosts, so every node is a machine of its own: "
                "add hosts: {NAME: [NODE, ...]} to the file, or take a node away with kill_service "
                "and partition"
            )
        return {h: list(on) for h, on in topo.hosts.items()}

    def lose_host(self, host: str) -> Fault:
        """Every process placed on ``host`` is SIGKILLed and the host's nodes are cut off from
        every other node (dropped, as a dead machine's packets are); the revert heals the
        network first, then starts each process again and waits until it serves. A host whose
        loss would leave the masters below quorum is refused before anything changes."""
        placed = self._placed()
        if host not in placed:
            raise ConfigError(f"no host {host!r} in this lab; hosts are: {', '.join(placed)}")
        nodes = placed[host]
        if not nodes:
            busy = ", ".join(h for h, slots in placed.items() if slots)
            raise ConfigError(
                f"host {host!r} runs nothing here, so losing it proves nothing; hosts with replicas: {busy}"
            )
        topo = self._topo()
        members = [n for n in nodes if topo is not None and topo.is_member(n)]
        if members:
            st = self.lab.state()
            assert st is not None
            # counted from the members running now: one already down counts against the quorum
            left = [m.name for m in st.members if m.proc.alive() and m.name not in members]
            if len(left) < quorum(len(st.members)):
                raise UnsafeFaultRefused(
                    f"losing host {host} takes masters {', '.join(members)} and leaves "
                    f"{len(left)} of {len(st.members)} running, below quorum: put fewer members on one host"
                )
        others = [n for n in self.nodes() if n not in nodes]
        # the kills first and the cut last, so the revert (newest first) heals the network
        # before the processes start again and are checked for serving
        parts: list[Fault] = [
            KillMaster(self.ctx, self.lab, n, allow_below_quorum=False)
            if n in members
            else KillService(self.ctx, self.lab, n)
            for n in nodes
        ]
        parts.append(Partition(self.ctx, self.lab, [nodes, others], f"{host} lost", None))
        return Together(
            self.ctx, parts, kind="lose_host", description=f"lose host {host} ({', '.join(nodes)})"
        )

    def _cluster(self, cluster: str | None) -> str:
        profile = self._profile()
        cluster = cluster or profile.clusters[0]
        if cluster not in profile.clusters:
            raise ConfigError(
                f"no cluster {cluster!r} in this lab; clusters are: {', '.join(profile.clusters)}"
            )
        return cluster

    def volumes(self) -> list[str]:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        return [v.name for v in st.volumes]

    def fail_storage(
        self, volumes: list[str], fault: StorageFault, *, allow_below_quorum: bool = False
    ) -> Fault:
        return FailStorage(self.ctx, self.lab, volumes, fault, allow_below_quorum)

    def inventory(self, cluster: str | None = None) -> Inventory:
        """The workload's inventory in ``cluster`` (the first by default) as a durability
        target: each write is a reservation, acknowledged only once it is on its volume."""
        topo = self._topo()
        if topo is not None:
            raise NotSupported(
                f"topology {topo.name} is not the shop: it has no inventory; use platform.store(NAME) "
                "with a store its file declares (stores:)"
            )
        urls = self.service_urls("inventory", cluster or self._profile().clusters[0])
        if not urls:
            raise ConfigError(
                f"no inventory in cluster {cluster!r}; clusters are: {', '.join(self._profile().clusters)}"
            )
        return Inventory(urls[0])

    def store(self, name: str) -> TopologyStore:
        """A store a topology declares (``stores:``) as a durability target."""
        st = self.lab.state()
        topo = st.topo if st else None
        if st is None or topo is None:
            raise NotSupported("the shop declares no stores; its durability target is platform.inventory()")
        role = next((x for x in topo.stores if x.name == name), None)
        if role is None:
            known = ", ".join(x.name for x in topo.stores) or "none"
            raise ConfigError(f"topology {topo.name} declares no store {name!r}; stores: {known}")
        node = topo.node(role.node)
        return TopologyStore(
            f"http://{node.address}:{node.port}",
            custom.store_kv(topo, role.durability, [node], Path(st.source), f"store {name}"),
        )

    def environment(self) -> dict[str, Any]:
        st = self.lab.state()
        topo = st.topo if st else None
        if st is not None and topo is not None:
            return {
                "platform": "lab",
                "topology": topo.title,
                "topology file": st.source,
                "nodes": ", ".join(f"{n.name}={n.address}" for n in topo.nodes),
                "masters": ", ".join(topo.masters.members) if topo.masters else "none",
                "entry": topo.render(topo.entry, None, self.lab.root) if topo.entry else "none",
            }
        return {
            "platform": "lab",
            "profile": st.profile if st else None,
            "weaknesses": ", ".join(st.weaknesses) if st and st.weaknesses else "none",
            "masters": ", ".join(f"{m.name}={m.address}" for m in st.members) if st else "",
            "etcd": _version([find("etcd"), "--version"]),
            "haproxy": _version([find("haproxy"), "-v"]),
            "prometheus": _version([find("prometheus"), "--version"]),
            "entry": self.entry_url,
        }


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return out.splitlines()[0] if out else "unknown"


def build(cfg: RunConfig, ctx: RunContext, fixture: Callable[[str], Any]) -> LabPlatform:
    """``--platform lab`` (chaos.registry): the session's lab, brought up by its fixture."""
    return LabPlatform(fixture("chaos_lab"), ctx)
