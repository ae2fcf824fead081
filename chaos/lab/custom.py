"""A topology's processes at run time: their files, their start, whether they serve, who
leads their masters, and their stores as durability targets."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from chaos.durability import KV, WriteTimeout
from chaos.errors import ConfigError, NotSupported, PlatformError
from chaos.lab import autoscaler, procs
from chaos.lab.topofile import Adapter, ClusterRole, Node, Topology, config_dir, python_class
from chaos.platform import quorum
from chaos.wait import WaitTimeout

LOG_TAIL_LINES = 8


def write_files(topo: Topology, node: Node, root: Path) -> None:
    """The node's configuration files, placeholders filled in, in its ``${config}``."""
    where = config_dir(root, node.name)
    where.mkdir(parents=True, exist_ok=True)
    for name, text in node.files.items():
        (where / name).write_text(topo.render(text, node, root))
    if node.user and node.user != "root":
        for path in (where, *where.iterdir()):
            shutil.chown(path, node.user)


def log_path(root: Path, name: str) -> Path:
    return root / "logs" / f"{name}.log"


def spawn(topo: Topology, node: Node, root: Path, *, restart: bool = False) -> procs.Proc:
    """Start ``node``'s process; a ``restart`` first stops any stray of it (see `procs.evict`)."""
    write_files(topo, node, root)
    return procs.spawn(
        topo.argv(node, root),
        log_path(root, node.name),
        netns=f"chaos-{node.name}",
        env={k: topo.render(v, node, root) for k, v in node.env.items()},
        user=node.user,
        cwd=config_dir(root, node.name),
        role=procs.role_of(root, node.name),
        replacing=restart,
    )


def spawn_autoscaler(topo: Topology, role: ClusterRole, root: Path) -> procs.Proc:
    """Start the lab's autoscaler for ``role`` (in the root namespace: it only speaks to its
    balancer's runtime socket), the cluster's replicas its slots."""
    scale = role.autoscale
    assert scale is not None
    state = autoscaler.state_path(root, role.name)
    state.unlink(missing_ok=True)  # its first step writes it: the sign it reached the balancer
    argv = autoscaler.command(
        topo.render(scale.socket, None, root),
        role.replicas,
        state,
        backend=scale.backend,
        min_replicas=scale.min,
        target_rps=scale.target_rps,
        scale_out_after=scale.scale_out_after,
        scale_in_after=scale.scale_in_after,
        hosts={n: h for h, on in topo.hosts.items() for n in on if n in role.replicas},
    )
    state.parent.mkdir(parents=True, exist_ok=True)
    return procs.spawn(argv, log_path(root, role.scaler), role=procs.role_of(root, role.scaler))


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a process's log, indented, for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"    (no log at {path})"
    return "\n".join(f"    {line}" for line in text) or "    (its log is empty)"


def tcp_open(address: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def in_node(node: str, script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` inside the node's network namespace."""
    return subprocess.run(
        ["nsenter", f"--net=/run/netns/chaos-{node}", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ready(topo: Topology, node: Node, root: Path, http: httpx.Client, timeout: float = 0.5) -> bool:
    """Whether the node's readiness check passes now (checked from outside the node, as a
    client on the bridge would, except a command, which runs inside it)."""
    check = node.ready
    if check.kind == "http":
        try:
            code = http.get(f"http://{node.address}:{node.port}{check.target}", timeout=timeout).status_code
        except httpx.HTTPError:
            return False
        return 200 <= code < 300
    if check.kind == "command":
        try:
            return (
                in_node(
                    node.name, topo.render(check.target, node, root), timeout=max(timeout, 2.0)
                ).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False
    return tcp_open(node.address, node.port, timeout)


def describe_ready(node: Node) -> str:
    if node.ready.kind == "http":
        return f"http://{node.address}:{node.port}{node.ready.target} to answer 2xx"
    if node.ready.kind == "command":
        return f"its ready command to exit 0 ({node.ready.target})"
    return f"port {node.port} to accept connections"


def leader(topo: Topology, http: httpx.Client) -> str | None:
    """The member a majority of all members names as leader (an isolated member that still
    believes in itself is outvoted), by the topology's own question; None without one."""
    role = topo.masters
    if role is None or role.leader is None:
        return None
    members = [topo.node(m) for m in role.members]
    by_address = {m.address: m.name for m in members}
    votes: Counter[str] = Counter()
    for m in members:
        said = _ask_leader(topo, m, http)
        if said:
            said = said.strip()
            host = said.split("//")[-1].split(":")[0].split("/")[0]
            name = said if said in role.members else by_address.get(host, "")
            if name:
                votes[name] += 1
    needed = quorum(len(members))
    return next((name for name, n in votes.items() if n >= needed), None)


def _ask_leader(topo: Topology, m: Node, http: httpx.Client) -> str:
    q = topo.masters.leader if topo.masters else None
    assert q is not None
    if q.kind == "http":
        try:
            data: Any = http.get(f"http://{m.address}:{m.port}{q.target}", timeout=0.5).json()
            for part in q.key.split("."):
                data = data[int(part)] if isinstance(data, list) else data[part]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return ""  # a member that does not answer has no say
        return "" if data is None else str(data)
    try:
        done = in_node(m.name, topo.render(q.target, m, Path("/")), timeout=2.0)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout if done.returncode == 0 else ""


def stop(proc: procs.Proc, signame: str) -> None:
    """Stop a process the way its topology says, then for good: a clean stop that hangs is
    not allowed to keep the lab up."""
    try:
        procs.kill(proc, signal.Signals[signame], timeout=5.0)
    except WaitTimeout:
        procs.kill(proc)


# -- stores as durability targets -------------------------------------------------------------------


class HttpKV:
    """A store spoken to over plain HTTP: ``PUT`` the value to the put URL (2xx is the
    acknowledgement), ``GET`` the list URL for a JSON object of every key under a prefix. Tried
    in the members' order, moving on only when a member certainly did not take the write
    (connection refused); a timeout is indeterminate, never a loss."""

    def __init__(self, topo: Topology, adapter: Adapter, nodes: list[Node]) -> None:
        self.topo, self.adapter, self.nodes = topo, adapter, nodes
        self.http = httpx.Client()

    def _url(self, template: str, node: Node, **extra: str) -> str:
        return self.topo.render(template, node, Path("/"), **extra)

    def put(self, key: str, value: str, timeout: float) -> None:
        last: Exception | None = None
        for node in self.nodes:
            url = self._url(self.adapter.put, node, key=urllib.parse.quote(key, safe=""))
            try:
                resp = self.http.put(url, content=value.encode(), timeout=timeout)
            except httpx.ConnectError as exc:
                last = exc
                continue
            except httpx.TimeoutException as exc:
                raise WriteTimeout(f"PUT {url}: no answer within {timeout:g} s") from exc
            if 200 <= resp.status_code < 300:
                return
            raise PlatformError(f"PUT {url}: HTTP {resp.status_code} {resp.text[:80]}")
        raise PlatformError(f"no member took the write: {last}")

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        last: Exception | None = None
        for node in self.nodes:
            url = self._url(self.adapter.list, node, prefix=urllib.parse.quote(prefix, safe=""))
            try:
                resp = self.http.get(url, timeout=timeout)
                resp.raise_for_status()
                data = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
                continue
            if not isinstance(data, dict):
                raise PlatformError(
                    f"GET {url}: expected a JSON object of key: value, got {type(data).__name__}"
                )
            return {str(k): str(v) for k, v in data.items() if str(k).startswith(prefix)}
        raise PlatformError(f"no member answered the read: {last}")


def store_kv(topo: Topology, adapter: Adapter | None, nodes: list[Node], source: Path, what: str) -> KV:
    """A client for ``nodes`` by ``adapter``: a new one per call (a writer's failover must
    not steer anyone else's)."""
    if adapter is None:
        raise NotSupported(f"topology {topo.name}: {what} declares no durability adapter (durability: ...)")
    urls = [f"http://{n.address}:{n.port}" for n in nodes]
    if adapter.kind == "etcd":
        from chaos.lab.etcd_http import EtcdClient

        return EtcdClient(urls)
    if adapter.kind == "http":
        return HttpKV(topo, adapter, nodes)
    cls = python_class(adapter.target, source.parent)
    try:
        made: KV = cls(urls)
    except (TypeError, ValueError, OSError) as exc:
        raise ConfigError(f"python adapter {adapter.target!r}: {cls.__name__}(urls) failed: {exc}") from exc
    return made


def copy_topology(source: Path, root: Path) -> Path:
    """The lab keeps its own copy: editing the file while the lab is up changes nothing."""
    dest = root / "topology.yaml"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return dest


def remove_copy(root: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(root / "topology.yaml")
