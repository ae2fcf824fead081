"""Processes the lab starts, named by pid *and* kernel start time so a reused pid is never
mistaken for ours (and never signalled)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import PlatformError
from chaos.journal import process_start
from chaos.wait import wait_until

ROLE_ENV = "CHAOS_LAB_ROLE"


@dataclass(frozen=True)
class Proc:
    pid: int
    start: str

    def alive(self) -> bool:
        """True while any thread of the process exists. A SIGKILLed multi-threaded process
        shows its leader as a zombie while its other threads are still exiting and still
        hold its sockets: it is not gone until they are."""
        _reap(self.pid)
        if process_start(self.pid) != self.start:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state not in ("Z", "X"):
                return True
            return len(os.listdir(f"/proc/{self.pid}/task")) > 1
        except FileNotFoundError:
            return False


def _reap(pid: int) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def spawn(
    argv: list[str],
    log: Path,
    *,
    netns: str | None = None,
    env: Mapping[str, str] | None = None,
    user: str = "",
    cwd: Path | None = None,
    role: str = "",
    replacing: bool = False,
) -> Proc:
    """Start a long-lived daemon in its own session (it outlives the caller). In a node's
    network namespace it enters only that namespace: `ip netns exec` would also give it a
    private copy of every mount, which keeps a volume's file system alive after the lab
    unmounts it (a disk shut down by an I/O-error fault could then never be mounted afresh).
    ``role`` (see `role_of`) is carried in its environment, so `evict` finds it even when
    its pid was never recorded; ``replacing`` (a restart) stops such strays of the role first
    (not at lab up: its namespaces are new, and scanning /proc for each process costs)."""
    cmd = (["nsenter", f"--net=/run/netns/{netns}", "--"] if netns else []) + as_user(user) + argv
    if role:
        env = {**(env or {}), ROLE_ENV: role}
        if replacing:
            evict(role)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        try:
            p = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **env} if env else None,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise PlatformError(f"cannot start {argv[0]}: {exc}") from exc
    start = process_start(p.pid)
    if start is None:
        raise PlatformError(f"{argv[0]} exited at once; see {log}")
    return Proc(p.pid, start)


def as_user(user: str) -> list[str]:
    """The prefix that drops to ``user`` after entering the namespace (nsenter needs root,
    so the switch comes after it): some servers refuse to run as root."""
    if not user or user == "root":
        return []
    import pwd

    gid = pwd.getpwnam(user).pw_gid
    return ["setpriv", f"--reuid={user}", f"--regid={gid}", "--init-groups", "--"]


def role_of(root: Path, name: str, part: str = "main") -> str:
    """The role of node ``name``'s ``part`` (its main process, or its "storage" daemon) in the
    lab kept under ``root``."""
    return f"{root}:{name}:{part}"


def evict(role: str) -> list[Proc]:
    """Stop every process still running in ``role``: one started by a run killed between
    spawning it and recording its pid. A restart calls this first; otherwise the stray keeps
    the node's port, the fresh process cannot bind and exits, and the lab records a process
    that is not running while one it does not know serves. A restart gets this through
    `spawn(..., replacing=True)`."""
    # the group's leader only: its workers inherit the role and go with its group
    strays = [p for p in _listing("environ", f"{ROLE_ENV}={role}") if _session(p.pid) == p.pid]
    for proc in strays:
        kill(proc)
    return strays


def _session(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def marked(marker: str) -> list[Proc]:
    """The processes whose command line has ``marker`` as one argument: how an undo journaled
    before its process was spawned (so before its pid existed) finds that process again. The
    marker carries the fault's unique tag, so nothing we did not start can match."""
    return _listing("cmdline", marker)


def lab_roots() -> set[Path]:
    """The state directory of every lab with a process still running, read from the role each
    process a lab starts carries in its environment."""
    prefix = f"{ROLE_ENV}=".encode()
    return {
        Path(item[len(prefix) :].decode(errors="replace").rsplit(":", 2)[0])
        for _, items in _each("environ")
        for item in items
        if item.startswith(prefix)
    }


def with_role(prefix: str = "") -> list[int]:
    """The pids of live processes a lab started whose role begins with ``prefix`` (of the lab
    kept under a directory: ``f"{root}:"``; every lab's: "")."""
    needle = f"{ROLE_ENV}={prefix}".encode()
    return [pid for pid, items in _each("environ") if any(item.startswith(needle) for item in items)]


def _listing(field: str, item: str) -> list[Proc]:
    """Live processes whose NUL-separated ``/proc/PID/<field>`` holds ``item`` exactly."""
    needle = item.encode()
    return [
        Proc(pid, start)
        for pid, items in _each(field)
        if needle in items and (start := process_start(pid)) is not None
    ]


def _each(field: str) -> Iterator[tuple[int, list[bytes]]]:
    """Every live process's pid and its NUL-separated ``/proc/PID/<field>``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            items = (entry / field).read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        yield int(entry.name), items


def kill(proc: Proc, sig: signal.Signals = signal.SIGKILL, *, timeout: float = 10.0) -> None:
    """Signal ``proc`` and every process of its group (it leads one: it was started in a
    session of its own) if it is still the process we started, and wait until all are gone.
    A server's workers are part of it: SIGKILL to nginx's master alone leaves its worker
    serving, which is not a dead server."""
    if not proc.alive():
        return
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
    except ProcessLookupError:
        return
    wait_until(
        lambda: not proc.alive() and not group_members(proc.pid),
        timeout=timeout,
        interval=0.02,
        what=f"pid {proc.pid} and its process group to exit",
    )


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (a pid that leads a live group is never reused)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found
