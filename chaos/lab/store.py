"""The lab's record and its lock, its volumes and etcd clients, and who leads its masters:
what every other part of the lab reads before it changes anything."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx

from chaos.context import state_dir
from chaos.errors import ConfigError, PlatformError
from chaos.lab import custom, procs, volumes
from chaos.lab.etcd_http import EtcdClient, MemberStatus
from chaos.lab.etcd_member import log_tail
from chaos.lab.state import VOLUME_MB, LabState
from chaos.lab.topofile import Topology
from chaos.lab.volumes import Served
from chaos.platform import quorum


class LabStore:
    """The lab's state directory: ``lab.json``, changed only under ``lab.lock``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else state_dir()
        self.state_path = self.root / "lab.json"
        self.logs = self.root / "logs"
        self._clients: dict[tuple[str, ...], EtcdClient] = {}
        self._clients_lock = threading.Lock()
        self._shared_http: httpx.Client | None = None

    # -- state ---------------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise every change to the lab across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def state(self) -> LabState | None:
        try:
            return LabState.from_json(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            # A state file we cannot read is treated as no state; `down` cleans by name.
            return None

    def _save(self, st: LabState) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(st.to_json())
        os.replace(tmp, self.state_path)

    def volume(self, name: str) -> volumes.Volume:
        return volumes.Volume.under(self.root, name)

    def _daemon_role(self, volume: str) -> str:
        """How volume ``volume``'s storage daemon is found, recorded or not (`procs.evict`)."""
        return procs.role_of(self.root, volume, "storage")

    def _make_volume(self, st: LabState, name: str, size_mb: int = VOLUME_MB) -> LabState:
        """Create (or remount) volume ``name`` and start its storage daemon; recorded."""
        vol = self.volume(name)
        volumes.create_disk(vol, size_mb)
        proc = volumes.serve(vol, self.logs / f"faultfs-{name}.log", f"chaos-{name}", self._daemon_role(name))
        served = Served(name, proc.pid, proc.start)
        known = [v.name for v in st.volumes]
        listed = (
            [served if v.name == name else v for v in st.volumes] if name in known else [*st.volumes, served]
        )
        st = replace(st, volumes=tuple(listed))
        self._save(st)
        return st

    def client(self, st: LabState | None = None) -> EtcdClient:
        """A client for the members of ``st``, shared and reused: building an HTTP client
        costs milliseconds of CPU, too much for a probe sampling at 100 Hz."""
        st = st or self._require_state()
        urls = tuple(m.client_url for m in st.members)
        with self._clients_lock:
            client = self._clients.get(urls)
            if client is None:
                client = self._clients[urls] = EtcdClient(list(urls))
            return client

    def _http(self) -> httpx.Client:
        """One HTTP client for a topology's leader questions (a probe asks at up to 100 Hz)."""
        with self._clients_lock:
            if self._shared_http is None:
                self._shared_http = httpx.Client()
            return self._shared_http

    def close(self) -> None:
        with self._clients_lock:
            if self._shared_http is not None:
                self._shared_http.close()
                self._shared_http = None
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    @staticmethod
    def _topology_or_none(st: LabState) -> Topology | None:
        """The running topology, or None for the shop; a lab whose copy of its file is gone or
        unreadable is still taken down (by name), so that is None too."""
        try:
            return st.topo
        except ConfigError:
            return None

    def _stop(self, name: str, proc: procs.Proc, topo: Topology | None) -> None:
        """Stop one of the lab's processes: a topology's by its own stop signal first."""
        node = next((n for n in topo.nodes if n.name == name), None) if topo else None
        if node is None:
            procs.kill(proc)
        else:
            custom.stop(proc, node.stop)

    def _require_state(self) -> LabState:
        st = self.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        return st

    def _dead_members(self, st: LabState) -> str | None:
        dead = [m for m in st.members if not m.proc.alive()]
        if not dead:
            return None
        m = dead[0]
        return f"etcd {m.name} exited: {log_tail(self.logs / (m.name + '.log'))}"

    @staticmethod
    def _leader(client: EtcdClient, st: LabState) -> str | None:
        by_id: dict[int, str] = {}
        votes: dict[int, int] = {}
        for m in st.members:
            try:
                s = client.status(m.client_url, timeout=0.5)
            except (
                httpx.HTTPError,
                PlatformError,
                ValueError,
                KeyError,
            ):  # a member that does not answer simply has no say in the vote count
                continue
            by_id[s.member_id] = m.name
            if s.leader_id:
                votes[s.leader_id] = votes.get(s.leader_id, 0) + 1
        # the leader a majority of all members agrees on: an isolated old leader that still
        # believes in itself is outvoted, and a cluster without quorum has no leader
        needed = quorum(len(st.members))
        leader_id = next((lid for lid, n in votes.items() if n >= needed), 0)
        return by_id.get(leader_id)

    def leader(self) -> str | None:
        st = self._require_state()
        topo = st.topo
        if topo is not None:
            role = topo.masters
            if role is None or role.leader is None:
                return None
            if role.leader.kind != "etcd":
                return custom.leader(topo, self._http())
        return self._leader(self.client(st), st)

    def member_answers(self, name: str) -> bool:
        """Whether member ``name`` answers on its port (etcd: reports its status)."""
        st = self._require_state()
        topo = st.topo
        if topo is not None and not (
            topo.masters and topo.masters.leader and topo.masters.leader.kind == "etcd"
        ):
            m = st.member(name)
            return custom.tcp_open(m.address, m.port)
        return self.member_status(name) is not None

    def member_status(self, name: str) -> MemberStatus | None:
        st = self._require_state()
        url = st.member(name).client_url
        try:
            return self.client(st).status(url, timeout=0.5)
        except (httpx.HTTPError, PlatformError, ValueError, KeyError):
            return None  # a dead or partitioned member has no status to report
