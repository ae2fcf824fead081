"""The lab: real etcd masters and services in network namespaces on one machine.

Its state lives in the machine-wide state directory, changed only under an exclusive lock
(``store``). ``up`` is idempotent and clears a stale lab (processes gone, namespaces left);
``down`` removes everything by name as well as by record, so it also cleans up after a lost
state. Status is in ``status``, members and services starting and stopping in ``lifecycle``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import httpx

from chaos.errors import ConfigError, EnvironmentNotReady
from chaos.journal import process_start
from chaos.lab import custom, net, procs, services, topology, volumes
from chaos.lab.autoscaler import state_path, stats
from chaos.lab.binaries import find
from chaos.lab.etcd_member import Member, etcd_argv
from chaos.lab.lifecycle import LabLifecycle
from chaos.lab.profiles import Profile, get_profile
from chaos.lab.services import Running
from chaos.lab.state import DEFAULT_VARIANT, LabState, Progress, Status, quiet, require_root
from chaos.lab.status import LabStatus
from chaos.lab.topofile import ClusterRole, Topology, load_topology, variant_of
from chaos.lab.weaknesses import WEAKNESSES, weaken
from chaos.wait import wait_until

# the services in the order they start: dependencies first, so health checks upstream find
# something to check; the autoscalers once every replica serves (see _up_locked)
EARLY = ("inventory", "gateway", "router", "gtm", "masters-api", "fencing")
LATE = ("autoscaler",)
# the HAProxy backend each kind of proxy balances over
BACKENDS = {"router": "gateways", "gtm": "clusters"}

__all__ = ["Lab", "LabState", "Status"]


class Lab(LabLifecycle, LabStatus):
    # -- up ------------------------------------------------------------------------------------
    def up(
        self,
        profile_name: str = "resilient",
        progress: Progress = quiet,
        weaknesses: tuple[str, ...] | list[str] = (),
        topology: Path | None = None,
    ) -> tuple[LabState, bool]:
        """Bring the lab up; returns (state, started). Already up with this profile and these
        weaknesses: no-op. With ``topology`` (a topology file), the lab runs that system
        instead of the shop, ``profile_name`` naming one of its variants."""
        topo = None if topology is None else load_topology(topology, variant_of(profile_name))
        if topo is not None and weaknesses:
            raise ConfigError(
                f"--lab-weakness seeds weaknesses into the shop, not into topology {topo.name}: "
                "declare a variant in the topology file (variants:) and pick it with --lab-profile"
            )
        profile = weaken(get_profile("resilient" if topo else profile_name), tuple(weaknesses))
        wanted = topo.title if topo else " + ".join((profile.name, *profile.weaknesses))
        require_root()
        with self.locked():
            st = self.state()
            if st is not None:
                problems = self._problems(st)
                if not problems:
                    same = (
                        (st.source, st.profile) == (str(topo.path), topo.variant or DEFAULT_VARIANT)
                        if topo
                        else (
                            not st.topology
                            and (st.profile, st.weaknesses) == (profile.name, profile.weaknesses)
                        )
                    )
                    if not same:
                        raise ConfigError(
                            f"the lab is already up as {st.title!r}, not {wanted!r}: "
                            "run `chaos lab down` first"
                        )
                    progress(f"lab already up ({st.title}); nothing to do")
                    return st, False
                progress(f"clearing a stale lab ({'; '.join(problems)})")
                self._down_locked(progress)
            else:
                leftovers = net.lab_netns() + net.host_links()
                if leftovers:
                    raise EnvironmentNotReady(
                        f"lab names are taken but no lab is recorded ({', '.join(leftovers)}): "
                        "if they are left from an earlier lab, `chaos lab down` removes them"
                    )
            etcd = find("etcd") if topo is None else ""
            for tool in ("ip", "nsenter", "mkfs.ext4", "losetup", "mount", "fusermount3"):
                find(tool)
            if not Path("/dev/fuse").exists():
                raise EnvironmentNotReady(
                    "/dev/fuse is missing: the lab's storage daemon needs FUSE (modprobe fuse; in a "
                    "container, pass the device: --device /dev/fuse)"
                )
            if topo is not None:
                try:
                    return self._up_topology_locked(topo, progress), True
                except BaseException:
                    progress("bring-up failed; removing what was started")
                    self._down_locked(quiet)
                    raise
            services.check_binaries()
            try:
                return self._up_locked(profile, etcd, progress), True
            except BaseException:
                progress("bring-up failed; removing what was started")
                self._down_locked(quiet)
                raise

    def _up_locked(self, profile: Profile, etcd: str, progress: Progress) -> LabState:
        t0 = time.monotonic()
        net.ensure_bridge()
        members = tuple(
            Member(f"m{i}", str(net.SUBNET.network_address + 10 + i)) for i in range(1, profile.masters + 1)
        )
        me = os.getpid()
        st = LabState(
            profile.name, members, time.time(), me, process_start(me) or "", weaknesses=profile.weaknesses
        )
        self._save(st)  # recorded first, so a crash here leaves something `down` can read
        stages: dict[str, float] = {}
        mark = time.monotonic()

        def stage(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            stages[name] = stages.get(name, 0.0) + now - mark
            mark = now

        for m in members:
            net.add_node(m.name, m.address)
            st = self._make_volume(st, m.name)
            progress(
                f"node {m.name}: namespace chaos-{m.name}, {m.address}, "
                f"volume {self.volume(m.name).mountpoint}"
            )
        stage("masters' nodes and volumes")
        started = []
        for m in members:
            proc = procs.spawn(
                etcd_argv(etcd, m, members, profile),
                self.logs / f"{m.name}.log",
                netns=f"chaos-{m.name}",
                role=procs.role_of(self.root, m.name),
            )
            started.append(replace(m, pid=proc.pid, start=proc.start))
            st = replace(st, members=tuple(started) + members[len(started) :])
            self._save(st)
        # etcd elects its first leader (a second or two) while the other nodes are made and
        # the services start: each comes up on its own (a gateway reads its configuration
        # again every second) and is only awaited once the masters lead. The autoscalers
        # start last, once every replica serves: started earlier they would "replace"
        # replicas still booting and hold the reserve in rotation after the lab is up
        st = self._create_nodes_and_start_prometheus(st, profile)
        stage("services' nodes and volumes")
        st = self._spawn_services(st, profile, EARLY)
        client = self.client(st)
        wait_until(
            lambda: self._leader(client, st),
            timeout=30,
            interval=0.1,
            what="etcd to elect a leader",
            abort=lambda: self._dead_members(st),
        )
        stage("etcd's first election (the rest of it)")
        for m in st.members:
            progress(f"etcd {m.name} pid {m.pid} serving {m.client_url}")
        # Prometheus answering is awaited, its scrapes are not: it applies its targets only ~5 s
        # after it starts, and the first PromQL user waits for them (await_scrapes), so a lab
        # up and every experiment that never asks Prometheus anything do not
        self._await_services(st, progress, (*EARLY, "prometheus"))
        self._await_routed(st)
        st = self._spawn_services(st, profile, LATE)
        self._await_services(st, progress, LATE)
        stage("services serving (the rest of it)")
        progress(f"entry point (global traffic manager): {topology.entry_url()}")
        progress(f"lab up ({st.title}: {profile.description}) in {time.monotonic() - t0:.1f} s")
        progress("stages: " + ", ".join(f"{name} {took:.1f} s" for name, took in stages.items()))
        for name in profile.weaknesses:
            progress(f"weakness {name}: {WEAKNESSES[name].description}")
        return st

    def _up_topology_locked(self, topo: Topology, progress: Progress) -> LabState:
        """A topology's nodes, volumes and processes, started in the file's order; each must
        pass its readiness check, and the masters (if any) must agree on a leader."""
        t0 = time.monotonic()
        net.ensure_bridge()
        me = os.getpid()
        role = topo.masters
        nodes = {n.name: n for n in topo.nodes}
        members = tuple(
            Member(name, nodes[name].address, port=nodes[name].port)
            for name in (role.members if role else ())
        )
        st = LabState(
            topo.variant or DEFAULT_VARIANT,
            members,
            time.time(),
            me,
            process_start(me) or "",
            topology=str(custom.copy_topology(topo.path, self.root)),
            source=str(topo.path),
        )
        self._save(st)  # recorded first, so a crash here leaves something `down` can read
        for n in topo.nodes:
            net.add_node(n.name, n.address)
            if n.volume_mb:
                st = self._make_volume(st, n.name, n.volume_mb)
            volume = f", volume {self.volume(n.name).mountpoint}" if n.volume_mb else ""
            progress(f"node {n.name}: namespace chaos-{n.name}, {n.address}{volume}")
        for n in topo.nodes:
            # a fresh log per bring-up: the tail a failed start shows must be this start's
            custom.log_path(self.root, n.name).unlink(missing_ok=True)
            proc = custom.spawn(topo, n, self.root)
            if topo.is_member(n.name):
                st = replace(
                    st,
                    members=tuple(
                        replace(m, pid=proc.pid, start=proc.start) if m.name == n.name else m
                        for m in st.members
                    ),
                )
            else:
                health = n.ready.target if n.ready.kind == "http" else ""
                svc = Running(n.name, n.kind, n.cluster, n.address, n.port, health, proc.pid, proc.start)
                st = replace(st, services=(*st.services, svc))
            self._save(st)
        http = httpx.Client()
        try:
            for n in topo.nodes:
                proc = st.member(n.name).proc if topo.is_member(n.name) else st.service(n.name).proc
                self._await_ready(topo, n, proc, http)
                progress(f"{n.name} pid {proc.pid} ready: {custom.describe_ready(n)}")
            if role is not None and role.leader is not None:
                wait_until(
                    lambda: self.leader() is not None,
                    timeout=30,
                    interval=0.1,
                    what=f"the masters ({', '.join(role.members)}) to agree on a leader",
                    abort=lambda: self._dead_members(st),
                )
                progress(f"masters {', '.join(role.members)}: leader {self.leader()}")
            for cluster in topo.clusters:
                if cluster.autoscale is not None:
                    st = self._start_autoscaler(st, topo, cluster)
                    progress(
                        f"{cluster.scaler} pid {st.service(cluster.scaler).pid}: {cluster.autoscale.min} of "
                        f"{len(cluster.replicas)} replicas of {cluster.name} in rotation, the rest in reserve"
                    )
        finally:
            http.close()
        if topo.entry:
            progress(f"entry point: {topo.render(topo.entry, None, self.root)}")
        what = topo.description or topo.path
        progress(f"lab up (topology {topo.title}: {what}) in {time.monotonic() - t0:.1f} s")
        return st

    def _start_autoscaler(self, st: LabState, topo: Topology, cluster: ClusterRole) -> LabState:
        """Start a cluster's autoscaler, record it, and wait for its first step (it reached
        the balancer's runtime API and found the backend); one that cannot fails the bring-up
        with the end of its log."""
        proc = custom.spawn_autoscaler(topo, cluster, self.root)
        st = replace(
            st,
            services=(
                *st.services,
                Running(cluster.scaler, "autoscaler", cluster.name, "", 0, "", proc.pid, proc.start),
            ),
        )
        self._save(st)
        self._await_started(
            cluster.scaler,
            proc,
            state_path(self.root, cluster.name).exists,
            timeout=10,
            interval=0.05,
            what=f"{cluster.scaler} to read {cluster.name}'s balancer",
            where=f"topology {topo.name}, clusters: {cluster.name}: autoscale",
        )
        return st

    def _create_nodes_and_start_prometheus(self, st: LabState, profile: Profile) -> LabState:
        """Prometheus first among the services: it applies its scrape targets only ~5 s after
        it starts (its discovery manager throttles updates), and the first PromQL user waits
        for that (``await_scrapes``), so the earlier it starts the less anyone waits."""
        plan = topology.services(profile)
        for svc in plan:
            if not svc.address:
                continue  # runs in the root namespace (the autoscaler)
            net.add_node(svc.name, svc.address)
            if topology.has_volume(svc, profile):
                st = self._make_volume(st, svc.name)
        services.write_configs(self.root, profile)
        prom = next(s for s in plan if s.kind == "prometheus")
        st = replace(st, services=(services.spawn(prom, profile, self.root, []),))
        self._save(st)
        return st

    def _spawn_services(self, st: LabState, profile: Profile, kinds: tuple[str, ...]) -> LabState:
        plan = topology.services(profile)
        etcd_urls = [m.client_url for m in st.members]
        running: list[Running] = list(st.services)
        for kind in kinds:
            for svc in (s for s in plan if s.kind == kind):
                running.append(services.spawn(svc, profile, self.root, etcd_urls))
                st = replace(st, services=tuple(running))
                self._save(st)
        return st

    def _await_services(self, st: LabState, progress: Progress, kinds: tuple[str, ...]) -> None:
        with httpx.Client() as http:
            for proc in (s for s in st.services if s.kind in kinds):
                self._await_healthy(proc, http)
                where = f"serving {proc.url}" if proc.address else "running in the root namespace"
                progress(f"{proc.kind} {proc.name} pid {proc.pid} {where}")

    def _await_routed(self, st: LabState) -> None:
        """Every replica in rotation marked up by its router, and the primary cluster by the
        traffic manager: serving end to end, as the first experiment's baseline expects."""

        def down() -> list[str]:
            out = []
            for svc in (s for s in st.services if s.kind in ("router", "gtm")):
                rows = stats(str(services.socket_path(self.root, svc.name)), BACKENDS[svc.kind])
                servers = {n: r["status"] for n, r in rows.items() if n != "BACKEND"}
                if svc.kind == "gtm":  # the backups are not meant to take traffic now
                    servers = {n: v for n, v in servers.items() if n == st.shape.clusters[0]}
                out += [f"{svc.name}: {n} {v}" for n, v in servers.items() if v != "UP" and "MAINT" not in v]
            return out

        wait_until(lambda: not down(), timeout=30, interval=0.05, what="the routers to mark every replica up")

    def await_scrapes(self, timeout: float = 30.0) -> float:
        """Wait until Prometheus has scraped every workload target (a PromQL probe before then
        sees no series, or a stale 0, and its baseline fails for no real reason); returns
        the seconds waited."""
        st = self._require_state()
        prom = next(x for x in st.services if x.kind == "prometheus")
        topo = st.topo
        if topo is not None:
            targets, broken = len(topo.metrics), 0
        else:
            targets = sum(1 for x in st.services if x.kind in ("gateway", "inventory"))
            # a gateway whose metrics the broken-metrics weakness broke is never up
            broken = 1 if st.shape.gateway_flaw == "no-metrics" else 0
        t0 = time.monotonic()
        with httpx.Client() as http:
            wait_until(
                lambda: services.scraping_all(prom, targets, targets - broken, http),
                timeout=timeout,
                interval=0.1,
                what=f"Prometheus to scrape all {targets} workload targets",
            )
        return time.monotonic() - t0

    # -- down ----------------------------------------------------------------------------------
    def down(self, progress: Progress = quiet) -> list[str]:
        require_root()
        removed: list[str] = []
        # The lab's names (namespaces, bridge, addresses) are the machine's: a lab recorded under
        # another state directory (CHAOS_STATE_DIR) loses its namespaces to this down, so it is
        # taken down whole, by its own record, which alone knows its processes outside the
        # namespaces and its volumes; found by a live process's role, or (all of them dead) by
        # a volume still mounted
        for root in sorted(procs.lab_roots() | volumes.mounted_roots()):
            if root.resolve() != self.root.resolve() and (other := Lab(root)).state() is not None:
                progress(f"taking down the lab recorded in {root}")
                with other.locked():
                    removed += other._down_locked(progress)
        with self.locked():
            return removed + self._down_locked(progress)

    def _down_locked(self, progress: Progress) -> list[str]:
        removed: list[str] = []
        st = self.state()
        if st is not None:
            topo = self._topology_or_none(st)
            for svc in reversed(st.services):
                if svc.pid and svc.proc.alive():
                    self._stop(svc.name, svc.proc, topo)
                    removed.append(f"process {svc.kind} {svc.name} (pid {svc.pid})")
            for m in st.members:
                if m.pid and m.proc.alive():
                    self._stop(m.name, m.proc, topo)
                    removed.append(f"process {'member' if topo else 'etcd'} {m.name} (pid {m.pid})")
            for served in st.volumes:
                volumes.unserve(self.volume(served.name), served.proc)
        # Processes can hold a namespace open after its name is gone: kill by namespace too.
        for ns in net.lab_netns():
            for pid in net.pids_in_netns(ns):
                procs.kill(procs.Proc(pid, process_start(pid) or ""))
                removed.append(f"process pid {pid} in {ns}")
        names = {m.name for m in st.members} if st else set()
        names |= {ns.removeprefix("chaos-") for ns in net.lab_netns()}
        names |= {p.stem for p in (self.root / "volumes").glob("*.img")}
        names |= {p.name for sub in ("disk", "mnt") for p in (self.root / sub).glob("*")}
        for name in sorted(names):
            vol = self.volume(name)
            if vol.image.exists() or volumes.is_mounted(vol.mountpoint) or volumes.is_mounted(vol.disk):
                volumes.destroy(vol)
                removed.append(f"volume {name}")
            if f"chaos-{name}" in net.lab_netns():
                removed.append(f"namespace chaos-{name}")
            net.remove_node(name)
        if net.bridge_exists():
            net.remove_bridge()
            removed.append(f"bridge {net.BRIDGE}")
        custom.remove_copy(self.root)
        for scratch in ("config", "run", "prometheus"):
            if (self.root / scratch).exists():
                shutil.rmtree(self.root / scratch)
        for parent in ("disk", "mnt", "volumes"):
            # never rmtree these: a path still mounted would lose its data
            with contextlib.suppress(FileNotFoundError, OSError):
                (self.root / parent).rmdir()
        self.state_path.unlink(missing_ok=True)
        for item in removed:
            progress(f"removed {item}")
        progress("lab down" if removed else "lab was not up; nothing to remove")
        return removed
