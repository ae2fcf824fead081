"""What the lab records about itself (``lab.json``), and what ``chaos lab status`` reports."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from chaos.errors import ConfigError, EnvironmentNotReady
from chaos.lab.etcd_member import Member
from chaos.lab.profiles import Profile, get_profile
from chaos.lab.services import Running
from chaos.lab.topofile import Topology, load_topology
from chaos.lab.volumes import Served
from chaos.lab.weaknesses import weaken

Progress = Callable[[str], None]
STATE_VERSION = 1
MAX_MASTERS = 5
# etcd preallocates 64 MB WAL segments; images are sparse, so size costs nothing until used
VOLUME_MB = 256
DEFAULT_VARIANT = "default"  # a topology brought up without a variant


def _topology(path: str, variant: str) -> Topology:
    # parsed once per copy, not once per probe sample: the copy never changes while a lab is
    # up, but a later lab in the same process writes a new one at the same path
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"the lab's copy of its topology file is gone ({path}): `chaos lab down`") from exc
    return _parsed(path, variant, st.st_mtime_ns, st.st_ino, st.st_size)


@functools.lru_cache(maxsize=4)
def _parsed(path: str, variant: str, _mtime_ns: int, _inode: int, _size: int) -> Topology:
    return load_topology(Path(path), "" if variant == DEFAULT_VARIANT else variant, check_machine=False)


def quiet(_msg: str) -> None:
    """A progress reporter that says nothing."""


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
    topology: str = ""  # the lab's copy of a topology file; "" for the built-in shop
    source: str = ""  # the topology file it was brought up from

    @property
    def topo(self) -> Topology | None:
        """The system this lab runs when it runs a topology file; None for the shop."""
        return _topology(self.topology, self.profile) if self.topology else None

    @property
    def shape(self) -> Profile:
        """The profile this lab was brought up with, weaknesses applied. A topology's lab
        has the resilient profile's etcd and client settings and none of the shop."""
        if self.topology:
            return replace(get_profile("resilient"), name=self.profile, autoscale=False, fencing=False)
        return weaken(get_profile(self.profile), self.weaknesses)

    @property
    def title(self) -> str:
        """The profile's name, with its weaknesses: "resilient + slow-election"; a topology's
        name with its variant: "web (fragile)"."""
        topo = self.topo
        if topo is not None:
            return topo.title
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
    topology: str | None = None  # the topology's name (and variant), when the lab runs one
    problems: list[str] = field(default_factory=list)
    fault_traces: list[str] = field(default_factory=list)  # chaos.lab.residue: rules, qdiscs, ...


def require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentNotReady(
            "the lab needs root (network namespaces, iptables, loop mounts): run as root or with sudo"
        )
