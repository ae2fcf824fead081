"""Members and services stopping and starting again: what faults and repairs do to a running
lab, each change under the lab's lock and recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import httpx

from chaos.errors import PlatformError
from chaos.lab import custom, procs, services, topology, volumes
from chaos.lab.binaries import find
from chaos.lab.etcd_member import etcd_argv, log_tail
from chaos.lab.services import Running
from chaos.lab.store import LabStore
from chaos.lab.topofile import Node, Topology
from chaos.wait import WaitTimeout, wait_until


class LabLifecycle(LabStore):
    def _await_ready(self, topo: Topology, node: Node, proc: procs.Proc, http: httpx.Client) -> None:
        """Wait until a topology's process passes its readiness check."""
        self._await_started(
            node.name,
            proc,
            lambda: custom.ready(topo, node, self.root, http),
            timeout=node.ready.within,
            interval=0.01,  # on a revert's path: a late poll is outage time
            what=f"{node.name}: {custom.describe_ready(node)}",
            where=f"topology {topo.name}, node {node.name} (line {node.line})",
        )

    def _await_started(
        self,
        name: str,
        proc: procs.Proc,
        ready: Callable[[], bool],
        *,
        timeout: float,
        interval: float,
        what: str,
        where: str,
    ) -> None:
        """Wait until ``ready``; a process that exits first, or a wait that runs out, fails
        saying ``where`` with the tail of its log."""
        log = custom.log_path(self.root, name)
        try:
            wait_until(
                ready,
                timeout=timeout,
                interval=interval,
                what=what,
                abort=lambda: None if proc.alive() else f"{name} exited",
            )
        except WaitTimeout as exc:
            raise PlatformError(f"{where}: {exc}; the end of its log ({log}):\n{custom.tail(log)}") from exc

    def _start_node(self, topo: Topology, name: str) -> procs.Proc:
        """Start a topology's stopped process again (under the lock) and record it."""
        st = self._require_state()
        proc = custom.spawn(topo, topo.node(name), self.root, restart=True)
        if st.is_member(name):
            members = tuple(
                replace(m, pid=proc.pid, start=proc.start) if m.name == name else m for m in st.members
            )
            st = replace(st, members=members)
        else:
            svcs = tuple(
                replace(x, pid=proc.pid, start=proc.start) if x.name == name else x for x in st.services
            )
            st = replace(st, services=svcs)
        self._save(st)
        return proc

    def _restart_topology_nodes(self, topo: Topology, names: list[str]) -> None:
        """Start a topology's stopped processes again, all before awaiting any, so nodes
        activated together are ready in the time of the slowest."""
        started = []
        with self.locked():
            for name in names:
                st = self._require_state()
                proc = st.member(name).proc if st.is_member(name) else st.service(name).proc
                started.append(proc if proc.alive() else self._start_node(topo, name))
        with httpx.Client() as http:
            for name, proc in zip(names, started, strict=True):
                self._await_ready(topo, topo.node(name), proc, http)

    def _await_healthy(self, svc: Running, http: httpx.Client) -> None:
        def dead() -> str | None:
            return None if svc.proc.alive() else f"{svc.name} exited: see {self.logs / (svc.name + '.log')}"

        wait_until(
            lambda: services.healthy(svc, http),
            timeout=30,
            interval=0.01,  # on a revert's path: a late poll is outage time
            what=f"{svc.kind} {svc.name} to answer {svc.health_path}",
            abort=dead,
        )

    def owner_alive(self, volume: str) -> bool:
        st = self._require_state()
        if st.is_member(volume):
            return st.member(volume).proc.alive()
        return st.service(volume).proc.alive()

    def start_owner(self, volume: str) -> None:
        """Start the member or service whose data is on ``volume`` (idempotent)."""
        st = self._require_state()
        if st.is_member(volume):
            self.start_member(volume)
        else:
            self.start_service(volume)

    def remount_volume(self, name: str) -> None:
        """Stop the volume's owner, unmount the served view and the disk, mount the disk
        afresh (ext4 replays its journal) and serve it again. The owner stays stopped: the
        caller starts it (`start_owner`) once the volume is back."""
        with self.locked():
            st = self._require_state()
            vol = self.volume(name)
            owner = st.member(name).proc if st.is_member(name) else st.service(name).proc
            procs.kill(owner)
            served = st.daemon(name)
            volumes.unserve(vol, served.proc if served else None)
            # a remount killed after starting its daemon and before recording it left one
            # that still holds the disk: the disk cannot be unmounted until it is gone
            procs.evict(self._daemon_role(name))
            volumes.unmount_disk(vol)
            self._make_volume(st, name)

    def start_service(self, name: str) -> None:
        """Start a stopped service again with its original command line and wait until it
        serves. Idempotent."""
        self.start_services([name])

    def start_services(self, names: list[str]) -> None:
        """Start stopped services again, all at once, and wait until every one serves (a
        cluster's replicas activated together start in the time of the slowest, not the sum).
        Idempotent."""
        topo = self._require_state().topo
        if topo is not None:
            self._restart_topology_nodes(topo, names)
            return
        with self.locked():
            st = self._require_state()
            profile = st.shape
            etcd_urls = [m.client_url for m in st.members]
            for name in names:
                if not st.service(name).proc.alive():
                    plan = next(p for p in topology.services(profile) if p.name == name)
                    fresh = services.spawn(plan, profile, self.root, etcd_urls, restart=True)
                    st = replace(st, services=tuple(fresh if x.name == name else x for x in st.services))
                    self._save(st)
        with httpx.Client() as http:
            for name in names:
                self._await_healthy(st.service(name), http)

    def kill_member(self, name: str) -> None:
        with self.locked():
            st = self._require_state()
            procs.kill(st.member(name).proc)

    def start_member(self, name: str, *, timeout: float = 30.0) -> None:
        """Start a stopped member again (its data is on its volume) and wait until it has
        rejoined: healthy and agreeing with the others on the leader. Idempotent."""
        topo = self._require_state().topo
        if topo is not None:
            self._restart_topology_nodes(topo, [name])
            if topo.masters and topo.masters.leader:
                wait_until(
                    lambda: self.leader() is not None,
                    timeout=timeout,
                    interval=0.01,  # on a revert's path: a late poll is outage time
                    what=f"the masters to agree on a leader again after {name} restarted",
                )
            return
        with self.locked():
            st = self._require_state()
            m = st.member(name)
            if not (m.pid and m.proc.alive()):
                proc = procs.spawn(
                    etcd_argv(find("etcd"), m, st.members, st.shape, restart=True),
                    self.logs / f"{m.name}.log",
                    netns=f"chaos-{m.name}",
                    role=procs.role_of(self.root, m.name),
                    replacing=True,
                )
                m = replace(m, pid=proc.pid, start=proc.start)
                st = replace(st, members=tuple(m if x.name == name else x for x in st.members))
                self._save(st)
        client = self.client(st)
        try:
            wait_until(
                lambda: client.healthy(m.client_url, 0.5) and client.status(m.client_url, 0.5).leader_id != 0,
                timeout=timeout + st.shape.restart_delay_s,
                interval=0.01,  # on a revert's path: a late poll is outage time
                what=f"etcd {name} to rejoin the cluster",
                abort=lambda: (
                    None if m.proc.alive() else f"etcd {name} exited: {log_tail(self.logs / (name + '.log'))}"
                ),
            )
        except WaitTimeout as exc:
            raise PlatformError(
                f"etcd {name} restarted but did not rejoin: {exc}; see {self.logs / (name + '.log')}"
            ) from exc
