"""An in-memory platform: three masters that elect, lose their leader and keep writes the way
the ``Masters`` Protocol describes, with no process, namespace or root behind them.

It is for unit-testing experiments and the framework itself (``--platform memory``): the
probes, checks, faults, journal and report run for real against it, in real time (elections
take ``election_s`` of the run's clock). What it has no model of (links, services, volumes,
capacity, load) raises ``NotSupported``, which skips an experiment before its first fault.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.context import RunContext
from chaos.durability import KV, WriteTimeout
from chaos.errors import NotSupported, PlatformError
from chaos.fault import Fault, not_in_effect
from chaos.journal import register_undo
from chaos.platform import (
    LinkFault,
    Masters,
    Member,
    Platform,
    StorageFault,
    failure_tolerance,
    pick_member,
    quorum,
)
from chaos.slo import Measure

if TYPE_CHECKING:
    from chaos.config import RunConfig
    from chaos.registers import RegisterStore

RESTART = "memory.member.restart"
HEAL = "memory.partition.heal"
# the platforms alive in this process, by id: an undo finds its platform here (after a crash
# there is nothing to undo: the memory is gone with the process)
_LIVE: dict[str, MemoryMasters] = {}


@dataclass
class _Cluster:
    """The masters' shared state, guarded by one lock."""

    names: list[str]
    election_s: float
    alive: set[str] = field(default_factory=set)
    cut: set[str] = field(default_factory=set)  # members cut off from the others
    leader: str | None = None
    elect_at: float | None = None  # when the pending election completes
    data: dict[str, str] = field(default_factory=dict)
    index: int = 0  # writes committed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def majority(self) -> list[str]:
        return sorted(n for n in self.alive if n not in self.cut)


@register_undo(RESTART)
def _restart(undo: dict[str, Any]) -> None:
    masters = _LIVE.get(undo["platform"])
    if masters is not None:
        masters.start(undo["member"])


@register_undo(HEAL)
def _heal(undo: dict[str, Any]) -> None:
    masters = _LIVE.get(undo["platform"])
    if masters is not None:
        masters.heal(undo["members"])


class _MemberKV:
    def __init__(self, masters: MemoryMasters, member: str | None) -> None:
        self.masters, self.member = masters, member

    def put(self, key: str, value: str, timeout: float) -> None:
        self.masters.write(key, value, self.member)

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        return self.masters.read(prefix)


class _Registers:
    """Registers on the model: reads are linearizable (a member cut off from the majority, or
    a cluster without a leader, cannot serve one)."""

    def __init__(self, masters: MemoryMasters, member: str | None) -> None:
        self.masters, self.member = masters, member

    def read(self, key: str, timeout: float) -> str | None:
        return self.masters.read(key, self.member).get(key)

    def write(self, key: str, value: str, timeout: float) -> None:
        self.masters.write(key, value, self.member)

    def cas(self, key: str, expected: str | None, new: str, timeout: float) -> bool:
        return self.masters.compare_and_set(key, expected, new, self.member)


class _OneMember:
    def __init__(self, masters: MemoryMasters, name: str) -> None:
        self.masters, self.name = masters, name

    def kv(self) -> KV:
        return _MemberKV(self.masters, self.name)


class MemoryMasters(Masters):
    """Three (or ``members``) masters with a leader chosen by the run's seeded random."""

    def __init__(self, ctx: RunContext, *, members: int = 3, election_s: float = 0.3, key: str = "") -> None:
        self.ctx = ctx
        self.key = key or str(id(self))
        names = [f"m{i}" for i in range(1, members + 1)]
        self._c = _Cluster(names, election_s, alive=set(names))
        self._c.leader = ctx.rng.choice(names)
        _LIVE[self.key] = self

    # -- what the Protocol asks ----------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._c.names)

    def kv(self) -> KV:
        return _MemberKV(self, None)

    def only(self, name: str) -> Member:
        self._known(name)
        return _OneMember(self, name)

    def leader(self) -> str | None:
        c = self._c
        with c.lock:
            self._settle(c)
            return c.leader

    def healthy(self) -> list[str]:
        c = self._c
        with c.lock:
            self._settle(c)
            majority = c.majority()
            return majority if len(majority) >= quorum(len(c.names)) else []

    def quorum(self) -> int:
        return quorum(len(self._c.names))

    def tolerance(self) -> Measure:
        return failure_tolerance(self)

    def registers(self, member: str | None = None) -> RegisterStore:
        if member is not None:
            self._known(member)
        return _Registers(self, member)

    def lag(self, name: str) -> int:
        self._known(name)
        c = self._c
        with c.lock:
            self._settle(c)
            if c.leader is None or name not in c.majority():
                raise PlatformError(f"{name} does not answer or has no leader")
            return 0  # a member with the majority has every committed write

    # -- what the faults do ----------------------------------------------------------------------
    def stop(self, name: str) -> None:
        c = self._c
        with c.lock:
            c.alive.discard(name)
            self._lose(c, name)

    def start(self, name: str) -> None:
        c = self._c
        with c.lock:
            c.alive.add(name)
            self._settle(c)

    def isolate(self, members: list[str]) -> None:
        c = self._c
        with c.lock:
            c.cut |= set(members)
            for name in members:
                self._lose(c, name)

    def heal(self, members: list[str]) -> None:
        c = self._c
        with c.lock:
            c.cut -= set(members)
            self._settle(c)

    def running(self, name: str) -> bool:
        return name in self._c.alive

    # -- the model --------------------------------------------------------------------------------
    def write(self, key: str, value: str, member: str | None) -> None:
        self.compare_and_set(key, None, value, member, unconditional=True)

    def compare_and_set(
        self, key: str, expected: str | None, new: str, member: str | None, *, unconditional: bool = False
    ) -> bool:
        c = self._c
        with c.lock:
            self._settle(c)
            if member is not None and member not in c.alive:
                raise PlatformError(f"{member} is down: connection refused")
            if c.leader is None or (member is not None and member not in c.majority()):
                raise WriteTimeout("no leader reachable: the write may or may not have been applied")
            if not unconditional and c.data.get(key) != expected:
                return False
            c.data[key] = new
            c.index += 1
            return True

    def read(self, prefix: str, member: str | None = None) -> dict[str, str]:
        c = self._c
        with c.lock:
            self._settle(c)
            if c.leader is None or (member is not None and member not in c.majority()):
                raise PlatformError("no quorum: a linearizable read cannot be served")
            return {k: v for k, v in c.data.items() if k.startswith(prefix)}

    def _lose(self, c: _Cluster, name: str) -> None:
        if c.leader == name:
            c.leader = None
            c.elect_at = self.ctx.clock.now() + c.election_s

    def _settle(self, c: _Cluster) -> None:
        """Complete a pending election once its time has come, if a quorum can hold one."""
        if c.leader is not None:
            return
        majority = c.majority()
        if len(majority) < quorum(len(c.names)):
            c.elect_at = None
            return
        now = self.ctx.clock.now()
        if c.elect_at is None:
            c.elect_at = now + c.election_s
        if now >= c.elect_at:
            c.leader = self.ctx.rng.choice(majority)
            c.elect_at = None

    def _known(self, name: str) -> None:
        if name not in self._c.names:
            raise PlatformError(f"no master named {name!r}; masters are: {', '.join(self._c.names)}")


class _KillMember(Fault):
    kind = "kill_master"

    def __init__(self, masters: MemoryMasters, pick: str, allow_below_quorum: bool) -> None:
        super().__init__(masters.ctx)
        self.masters, self.pick, self.allow = masters, pick, allow_below_quorum
        self.target: str | None = None

    def describe(self) -> str:
        return f"stop master {self.target or self.pick}"

    def details(self) -> dict[str, Any]:
        return {"target": self.target, "pick": self.pick}

    def prepare(self) -> None:
        names = self.masters.names()
        self.target = pick_member(
            self.pick,
            names=names,
            up=[n for n in names if self.masters.running(n)],
            leader=self.masters.leader(),
            rng=self.ctx.rng,
            allow_below_quorum=self.allow,
        )

    def inject(self) -> None:
        assert self.target is not None
        self.journaled(RESTART, {"platform": self.masters.key, "member": self.target}, f"start {self.target}")
        self.masters.stop(self.target)

    def verify(self) -> None:
        if self.target is None or self.masters.running(self.target):
            raise not_in_effect(self, "the member still runs")


class _Isolate(Fault):
    kind = "partition"

    def __init__(self, masters: MemoryMasters, members: list[str], label: str) -> None:
        super().__init__(masters.ctx)
        self.masters, self.members, self.label = masters, members, label

    def describe(self) -> str:
        return f"partition {self.label + ': ' if self.label else ''}{','.join(self.members)} | the rest"

    def inject(self) -> None:
        undo = {"platform": self.masters.key, "members": self.members}
        self.journaled(HEAL, undo, f"heal {','.join(self.members)}")
        self.masters.isolate(self.members)

    def verify(self) -> None:
        if self.masters.leader() in self.members:
            raise not_in_effect(self, "a cut-off member still leads")


class MemoryPlatform(Platform):
    """The ``memory`` platform: in-memory masters, nothing else (see the module's doc)."""

    name = "memory"

    def __init__(self, ctx: RunContext, *, members: int = 3, election_s: float = 0.3) -> None:
        self.ctx = ctx
        self._masters = MemoryMasters(ctx, members=members, election_s=election_s)

    @property
    def masters(self) -> MemoryMasters:
        return self._masters

    def kill_master(self, pick: str = "leader", *, allow_below_quorum: bool = False) -> Fault:
        return _KillMember(self._masters, pick, allow_below_quorum)

    def nodes(self) -> list[str]:
        return self._masters.names()

    def partition(
        self,
        groups: list[list[str]],
        *,
        label: str = "",
        cuts: list[tuple[list[str], list[str]]] | None = None,
    ) -> Fault:
        """Cut a minority of masters off from the rest (the only shape this model has)."""
        names = set(self._masters.names())
        sides = [list(g) for g in groups] if groups else [list(a) for a, _ in cuts or []]
        minority = min(sides, key=len) if len(sides) == 2 else []
        named = {n for side in sides for n in side}
        if not minority or not named <= names or len(minority) >= quorum(len(names)):
            raise NotSupported("the memory platform cuts a minority of masters from the rest, nothing else")
        return _Isolate(self._masters, minority, label)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Healthy by construction once a leader is elected: nothing runs that could be slow."""

    def environment(self) -> dict[str, Any]:
        return {"platform": "memory", "masters": ", ".join(self._masters.names())}

    # -- what this model has nothing of ----------------------------------------------------------
    def _none(self, what: str) -> NotSupported:
        return NotSupported(f"the memory platform has no {what}: it models the masters only")

    @property
    def entry_url(self) -> str:
        raise self._none("entry point")

    @property
    def prometheus_url(self) -> str:
        raise self._none("Prometheus")

    def degrade(self, src: list[str], dst: str, link: LinkFault) -> Fault:
        raise self._none("links to degrade")

    def kill_service(self, name: str) -> Fault:
        raise self._none(f"service {name!r}")

    def volumes(self) -> list[str]:
        return []

    def fail_storage(
        self, volumes: list[str], fault: StorageFault, *, allow_below_quorum: bool = False
    ) -> Fault:
        raise self._none("volumes")


def build(cfg: RunConfig, ctx: RunContext, fixture: Callable[[str], Any]) -> MemoryPlatform:
    """``--platform memory`` (chaos.registry): a fresh model per experiment."""
    return MemoryPlatform(ctx)
