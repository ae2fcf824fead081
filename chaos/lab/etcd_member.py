"""etcd members of the lab: their command line, version quirks and logs."""

from __future__ import annotations

import functools
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chaos.context import state_dir
from chaos.errors import EnvironmentNotReady
from chaos.lab import procs
from chaos.lab.profiles import Profile

CLIENT_PORT = 2379
PEER_PORT = 2380


@dataclass(frozen=True)
class Member:
    name: str
    address: str
    pid: int = 0
    start: str = ""
    port: int = CLIENT_PORT  # what it serves: etcd's client port, or a topology member's port

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{PEER_PORT}"

    @property
    def proc(self) -> procs.Proc:
        return procs.Proc(self.pid, self.start)


def etcd_argv(
    etcd: str, m: Member, members: tuple[Member, ...], profile: Profile, *, restart: bool = False
) -> list[str]:
    """The member's command line. A restart waits ``profile.restart_delay_s`` first (a slow
    init step, as the ``slow-restart`` weakness has it) in a shell that then becomes etcd,
    so the pid recorded is etcd's."""
    vol_dir = state_dir() / "mnt" / m.name
    cluster = ",".join(f"{x.name}={x.peer_url}" for x in members)
    delay = ["/bin/sh", "-c", 'sleep "$0"; exec "$@"', f"{profile.restart_delay_s:g}"]
    return (delay if restart and profile.restart_delay_s else []) + [
        etcd,
        "--name",
        m.name,
        "--data-dir",
        str(vol_dir / "etcd"),
        "--listen-client-urls",
        m.client_url,
        "--advertise-client-urls",
        m.client_url,
        "--listen-peer-urls",
        m.peer_url,
        "--initial-advertise-peer-urls",
        m.peer_url,
        "--initial-cluster",
        cluster,
        "--initial-cluster-token",
        "chaos-lab",
        "--initial-cluster-state",
        "new",
        "--heartbeat-interval",
        str(profile.etcd_heartbeat_ms),
        "--election-timeout",
        str(profile.etcd_election_ms),
        # pre-vote: a member cut off from the others cannot inflate its term and unseat the
        # leader when it returns (etcd 3.4 defaults to off, 3.5 to on: say it either way)
        f"--pre-vote={'true' if profile.pre_vote else 'false'}",
        "--quota-backend-bytes",
        str(96 * 1024 * 1024),
        *zap_flag(etcd),
        "--log-outputs",
        "stderr",
        "--log-level",
        "info",  # info: the raft election lines give an independent recovery timestamp
        *profile.etcd_args,
    ]


@functools.cache
def zap_flag(etcd: str) -> tuple[str, ...]:
    """etcd 3.4 logs plain text unless asked for zap (JSON); 3.5+ logs JSON only and later
    releases drop the flag, so pass it only where it is needed."""
    try:
        out = subprocess.run([etcd, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentNotReady(f"cannot run {etcd} --version: {exc}") from exc
    m = re.search(r"etcd Version: (\d+)\.(\d+)", out.stdout)
    if m is None:
        raise EnvironmentNotReady(f"{etcd} does not look like etcd (--version said {out.stdout[:80]!r})")
    major, minor = int(m.group(1)), int(m.group(2))
    if (major, minor) < (3, 4):
        raise EnvironmentNotReady(f"{etcd} is etcd {major}.{minor}; the lab needs etcd 3.4 or newer")
    return ("--logger", "zap") if (major, minor) == (3, 4) else ()


def log_tail(path: Path) -> str:
    """The last error-ish line of a member's log, for one-line failure messages."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("level") in ("error", "fatal", "panic"):
                return f"{rec.get('msg')}: {rec.get('error', '')} (log: {path})"
    return f"see {path}"
