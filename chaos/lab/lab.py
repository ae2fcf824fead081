"""The lab: real etcd masters in network namespaces on one machine.

Its state lives in the machine-wide state directory, changed only under an exclusive lock.
``up`` is idempotent and clears a stale lab (processes gone, namespaces left); ``down``
removes everything by name as well as by record, so it also cleans up after a lost state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from chaos.context import state_dir
from chaos.errors import ConfigError, EnvironmentNotReady, PlatformError
from chaos.journal import process_start
from chaos.lab import net, procs, services, topology, volumes
from chaos.lab.binaries import find
from chaos.lab.etcd_http import EtcdClient, MemberStatus
from chaos.lab.etcd_member import Member, etcd_argv, log_tail
from chaos.lab.profiles import Profile, get_profile
from chaos.lab.services import Running
from chaos.lab.volumes import Served
from chaos.lab.weaknesses import WEAKNESSES, weaken
from chaos.wait import WaitTimeout, wait_until

Progress = Callable[[str], None]
STATE_VERSION = 1
MAX_MASTERS = 5
# etcd preallocates 64 MB WAL segments; images are sparse, so size costs nothing until used
VOLUME_MB = 256


def _quiet(_msg: str) -> None:
    pass


@dataclass(frozen=True)
class LabState:
    profile: str
    members: tuple[Member, ...]
    created: float
    owner_pid: int = 0
    owner_start: str = ""
    services: tuple[Running, ...] = ()
    volumes: tuple[Served, ...] = ()
    version: int = STATE_VERSION
    weaknesses: tuple[str, ...] = ()

    @property
    def shape(self) -> Profile:
        """The profile this lab was brought up with, weaknesses applied."""
        return weaken(get_profile(self.profile), self.weaknesses)

    @property
    def title(self) -> str:
        """The profile's name, with its weaknesses: "resilient + slow-election"."""
        return " + ".join((self.profile, *self.weaknesses))

    def service(self, name: str) -> Running:
        for s in self.services:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.services)
        raise ConfigError(f"no service named {name!r} in this lab; services are: {known}")

    def daemon(self, volume: str) -> Served | None:
        return next((v for v in self.volumes if v.name == volume), None)

    def is_member(self, name: str) -> bool:
        return any(m.name == name for m in self.members)

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.members)
        raise ConfigError(f"no master named {name!r} in this lab; masters are: {known}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, raw: str) -> LabState:
        data = json.loads(raw)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r}")
        data["members"] = tuple(Member(**m) for m in data["members"])
        data["services"] = tuple(Running.from_dict(x) for x in data.get("services", ()))
        data["volumes"] = tuple(Served(**x) for x in data.get("volumes", ()))
        data["weaknesses"] = tuple(data.get("weaknesses", ()))
        return cls(**data)


@dataclass
class Status:
    up: bool
    profile: str | None
    weaknesses: list[str] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    entry: str | None = None
    leader: str | None = None
    problems: list[str] = field(default_factory=list)


def require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentNotReady(
            "the lab needs root (network namespaces, iptables, loop mounts): run as root or with sudo"
        )


class Lab:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else state_dir()
        self.state_path = self.root / "lab.json"
        self.logs = self.root / "logs"
        self._clients: dict[tuple[str, ...], EtcdClient] = {}
        self._clients_lock = threading.Lock()

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

    def _make_volume(self, st: LabState, name: str) -> LabState:
        """Create (or remount) volume ``name`` and start its storage daemon; recorded."""
        vol = self.volume(name)
        volumes.create_disk(vol, VOLUME_MB)
        proc = volumes.serve(vol, self.logs / f"faultfs-{name}.log", f"chaos-{name}")
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

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _require_state(self) -> LabState:
        st = self.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        return st

    # -- up ------------------------------------------------------------------------------------
    def up(
        self,
        profile_name: str = "resilient",
        progress: Progress = _quiet,
        weaknesses: tuple[str, ...] | list[str] = (),
    ) -> tuple[LabState, bool]:
        """Bring the lab up; returns (state, started). Already up with this profile and these
        weaknesses: no-op."""
        profile = weaken(get_profile(profile_name), tuple(weaknesses))
        require_root()
        with self.locked():
            st = self.state()
            if st is not None:
                problems = self._problems(st)
                if not problems:
                    if (st.profile, st.weaknesses) != (profile.name, profile.weaknesses):
                        wanted = " + ".join((profile.name, *profile.weaknesses))
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
            etcd = find("etcd")
            for tool in ("ip", "nsenter", "mkfs.ext4", "losetup", "mount", "fusermount3"):
                find(tool)
            if not Path("/dev/fuse").exists():
                raise EnvironmentNotReady(
                    "/dev/fuse is missing: the lab's storage daemon needs FUSE (modprobe fuse; in a "
                    "container, pass the device: --device /dev/fuse)"
                )
            services.check_binaries()
            try:
                return self._up_locked(profile, etcd, progress), True
            except BaseException:
                progress("bring-up failed; removing what was started")
                self._down_locked(_quiet)
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
        for m in members:
            net.add_node(m.name, m.address)
            st = self._make_volume(st, m.name)
            progress(
                f"node {m.name}: namespace chaos-{m.name}, {m.address}, "
                f"volume {self.volume(m.name).mountpoint}"
            )
        st = self._create_nodes_and_start_prometheus(st, profile)
        started = []
        for m in members:
            proc = procs.spawn(
                etcd_argv(etcd, m, members, profile), self.logs / f"{m.name}.log", netns=f"chaos-{m.name}"
            )
            started.append(replace(m, pid=proc.pid, start=proc.start))
            st = replace(st, members=tuple(started) + members[len(started) :])
            self._save(st)
        client = self.client(st)
        wait_until(
            lambda: self._leader(client, st),
            timeout=30,
            interval=0.1,
            what="etcd to elect a leader",
            abort=lambda: self._dead_members(st),
        )
        for m in st.members:
            progress(f"etcd {m.name} pid {m.pid} serving {m.client_url}")
        st = self._start_services(st, profile, progress)
        progress(f"entry point (global traffic manager): {topology.entry_url()}")
        progress(f"lab up ({st.title}: {profile.description}) in {time.monotonic() - t0:.1f} s")
        for name in profile.weaknesses:
            progress(f"weakness {name}: {WEAKNESSES[name].description}")
        return st

    def _create_nodes_and_start_prometheus(self, st: LabState, profile: Profile) -> LabState:
        """Prometheus first: it applies its scrape targets only ~5 s after it starts
        (its discovery manager throttles updates), so that wait overlaps everything else."""
        plan = topology.services(profile)
        for svc in plan:
            if not svc.address:
                continue  # runs in the root namespace (the autoscaler)
            net.add_node(svc.name, svc.address)
            if svc.kind == "inventory":
                st = self._make_volume(st, svc.name)
        services.write_configs(self.root, profile)
        prom = next(s for s in plan if s.kind == "prometheus")
        st = replace(st, services=(services.spawn(prom, profile, self.root, []),))
        self._save(st)
        return st

    def _start_services(self, st: LabState, profile: Profile, progress: Progress) -> LabState:
        plan = topology.services(profile)
        etcd_urls = [m.client_url for m in st.members]
        running: list[Running] = list(st.services)
        # dependencies first, so health checks upstream find something to check
        for kind in ("inventory", "gateway", "router", "gtm", "autoscaler", "masters-api", "fencing"):
            for svc in (s for s in plan if s.kind == kind):
                running.append(services.spawn(svc, profile, self.root, etcd_urls))
                st = replace(st, services=tuple(running))
                self._save(st)
        http = httpx.Client()
        try:
            for proc in st.services:
                self._await_healthy(proc, http)
                where = f"serving {proc.url}" if proc.address else "running in the root namespace"
                progress(f"{proc.kind} {proc.name} pid {proc.pid} {where}")
            prom = next(x for x in st.services if x.kind == "prometheus")
            targets = sum(1 for x in st.services if x.kind in ("gateway", "inventory"))
            # a gateway whose metrics the broken-metrics weakness broke is never up
            broken = 1 if profile.gateway_flaw == "no-metrics" else 0
            wait_until(
                lambda: services.scraping_all(prom, targets, targets - broken, http),
                timeout=30,
                interval=0.1,
                what=f"Prometheus to scrape all {targets} workload targets",
            )
        finally:
            http.close()
        return st

    def _await_healthy(self, svc: Running, http: httpx.Client) -> None:
        def dead() -> str | None:
            return None if svc.proc.alive() else f"{svc.name} exited: see {self.logs / (svc.name + '.log')}"

        wait_until(
            lambda: services.healthy(svc, http),
            timeout=30,
            interval=0.05,
            what=f"{svc.kind} {svc.name} to answer {svc.health_path}",
            abort=dead,
        )

    # -- down ----------------------------------------------------------------------------------
    def down(self, progress: Progress = _quiet) -> list[str]:
        require_root()
        with self.locked():
            return self._down_locked(progress)

    def _down_locked(self, progress: Progress) -> list[str]:
        removed: list[str] = []
        st = self.state()
        if st is not None:
            for svc in reversed(st.services):
                if svc.pid and svc.proc.alive():
                    procs.kill(svc.proc)
                    removed.append(f"process {svc.kind} {svc.name} (pid {svc.pid})")
            for m in st.members:
                if m.pid and m.proc.alive():
                    procs.kill(m.proc)
                    removed.append(f"process etcd {m.name} (pid {m.pid})")
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

    # -- status and members --------------------------------------------------------------------
    def _problems(self, st: LabState) -> list[str]:
        out = []
        for m in st.members:
            if not (m.pid and m.proc.alive()):
                out.append(f"etcd {m.name} not running")
            if f"chaos-{m.name}" not in net.lab_netns():
                out.append(f"namespace chaos-{m.name} missing")
        for svc in st.services:
            if not (svc.pid and svc.proc.alive()):
                out.append(f"{svc.kind} {svc.name} not running")
        for served in st.volumes:
            if not served.proc.alive():
                out.append(f"storage daemon of volume {served.name} not running")
        return out

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
        needed = len(st.members) // 2 + 1
        leader_id = next((lid for lid, n in votes.items() if n >= needed), 0)
        return by_id.get(leader_id)

    def leader(self) -> str | None:
        st = self._require_state()
        return self._leader(self.client(st), st)

    def member_status(self, name: str) -> MemberStatus | None:
        st = self._require_state()
        url = st.member(name).client_url
        try:
            return self.client(st).status(url, timeout=0.5)
        except (httpx.HTTPError, PlatformError, ValueError, KeyError):
            return None  # a dead or partitioned member has no status to report

    def status(self) -> Status:
        st = self.state()
        if st is None:
            return Status(up=False, profile=None)
        leader = self.leader()
        client = self.client(st)
        rows = []
        for m in st.members:
            running = bool(m.pid) and m.proc.alive()
            rows.append(
                {
                    "name": m.name,
                    "address": m.address,
                    "pid": m.pid,
                    "running": running,
                    "healthy": running and client.healthy(m.client_url, timeout=0.5),
                    "leader": m.name == leader,
                    "volume": str(self.volume(m.name).mountpoint),
                }
            )
        http = httpx.Client()
        try:
            svc_rows = [
                {
                    "name": svc.name,
                    "kind": svc.kind,
                    "cluster": svc.cluster,
                    "address": svc.address,
                    "port": svc.port,
                    "pid": svc.pid,
                    "running": svc.proc.alive(),
                    "healthy": services.healthy(svc, http),
                }
                for svc in st.services
            ]
        finally:
            http.close()
        return Status(
            up=True,
            profile=st.profile,
            weaknesses=list(st.weaknesses),
            members=rows,
            services=svc_rows,
            volumes=[self.volume_status(v.name) for v in st.volumes],
            entry=topology.entry_url(),
            leader=leader,
            problems=self._problems(st),
        )

    def volume_status(self, name: str) -> dict[str, Any]:
        """A volume's storage daemon, the fault it applies, and the disk's free space."""
        st = self._require_state()
        vol, served = self.volume(name), st.daemon(name)
        row: dict[str, Any] = {"name": name, "mount": str(vol.mountpoint), "pid": served.pid if served else 0}
        row["running"] = bool(served and served.proc.alive())
        row["problem"] = volumes.managed(vol)
        try:
            row["fault"] = json.loads(vol.status.read_text()).get("mode", "none")
        except (OSError, ValueError):
            row["fault"] = "unknown"
        try:
            sv = os.statvfs(vol.disk)
            row["free_mb"] = round(sv.f_bavail * sv.f_frsize / 2**20, 1)
        except OSError as exc:  # a disk shut down by an I/O-error fault answers EIO
            row["free_mb"] = None
            row["problem"] = row["problem"] or f"disk: {exc.strerror}"
        return row

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
            volumes.unmount_disk(vol)
            self._make_volume(st, name)

    def start_service(self, name: str) -> None:
        """Start a stopped service again with its original command line and wait until it
        serves. Idempotent."""
        with self.locked():
            st = self._require_state()
            svc = st.service(name)
            if not svc.proc.alive():
                profile = st.shape
                plan = next(p for p in topology.services(profile) if p.name == name)
                fresh = services.spawn(plan, profile, self.root, [m.client_url for m in st.members])
                st = replace(st, services=tuple(fresh if x.name == name else x for x in st.services))
                self._save(st)
                svc = fresh
        http = httpx.Client()
        try:
            self._await_healthy(svc, http)
        finally:
            http.close()

    def kill_member(self, name: str) -> None:
        with self.locked():
            st = self._require_state()
            procs.kill(st.member(name).proc)

    def start_member(self, name: str, *, timeout: float = 30.0) -> None:
        """Start a stopped member again (its data is on its volume) and wait until it has
        rejoined: healthy and agreeing with the others on the leader. Idempotent."""
        with self.locked():
            st = self._require_state()
            m = st.member(name)
            if not (m.pid and m.proc.alive()):
                proc = procs.spawn(
                    etcd_argv(find("etcd"), m, st.members, st.shape, restart=True),
                    self.logs / f"{m.name}.log",
                    netns=f"chaos-{m.name}",
                )
                m = replace(m, pid=proc.pid, start=proc.start)
                st = replace(st, members=tuple(m if x.name == name else x for x in st.members))
                self._save(st)
        client = self.client(st)
        try:
            wait_until(
                lambda: client.healthy(m.client_url, 0.5) and client.status(m.client_url, 0.5).leader_id != 0,
                timeout=timeout + st.shape.restart_delay_s,
                interval=0.05,
                what=f"etcd {name} to rejoin the cluster",
                abort=lambda: (
                    None if m.proc.alive() else f"etcd {name} exited: {log_tail(self.logs / (name + '.log'))}"
                ),
            )
        except WaitTimeout as exc:
            raise PlatformError(
                f"etcd {name} restarted but did not rejoin: {exc}; see {self.logs / (name + '.log')}"
            ) from exc
