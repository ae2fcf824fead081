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
from chaos.errors import EnvironmentNotReady, NotSupported, PlatformError
from chaos.fault import Fault
from chaos.platform import (
    LinkFault,
    Masters,
    Member,
    Platform,
    StorageFault,
    failure_tolerance,
    quorum,
)
from chaos.slo import Measure
from chaos.testing.memory_faults import LIVE, Isolate, KillMember
from chaos.wait import WaitTimeout, wait_until

if TYPE_CHECKING:
    from chaos.config import RunConfig
    from chaos.registers import RegisterStore

ROLLBACK_S = 1.0  # what the compound weakness loses: the writes of the last second


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
    lost: str | None = None  # the leader whose loss the pending election replaces
    compound: bool = False  # the seeded compound weakness (see MemoryPlatform)
    # recent commits as (when, key, value before): what the compound weakness rolls back
    recent: list[tuple[float, str, str | None]] = field(default_factory=list)

    def majority(self) -> list[str]:
        return sorted(n for n in self.alive if n not in self.cut)


class _MemberKV:
    def __init__(self, masters: MemoryMasters, member: str | None) -> None:
        self.masters, self.member = masters, member

    def put(self, key: str, value: str, timeout: float) -> None:
        self.masters.write(key, value, self.member)

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        # a store's linearizable read waits out an election in progress (etcd holds it until a
        # leader confirms its read index or the request times out); one that failed at once
        # would turn a read-back just after a revert into a failed verdict on a slow machine
        try:
            (found,) = wait_until(
                lambda: (self.masters.read(prefix),),  # a tuple: an empty answer is an answer
                timeout=timeout,
                interval=0.01,
                what=f"a leader to serve a linearizable read of {prefix!r}",
                clock=self.masters.ctx.clock,
            )
        except WaitTimeout as exc:
            no_read = f"no quorum within {timeout:g} s: a linearizable read cannot be served"
            raise PlatformError(no_read) from exc
        return found


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

    def __init__(
        self,
        ctx: RunContext,
        *,
        members: int = 3,
        election_s: float = 0.3,
        compound: bool = False,
        key: str = "",
    ) -> None:
        self.ctx = ctx
        self.key = str(id(self))
        names = [f"m{i}" for i in range(1, members + 1)]
        self._c = _Cluster(names, election_s, alive=set(names), compound=compound)
        self._c.leader = ctx.rng.choice(names)
        LIVE[self.key] = self

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
    # each first completes an election already due: it happened under the state before this
    # change, whenever a probe next looks (a starved probe must not move it into the fault)
    def stop(self, name: str) -> None:
        c = self._c
        with c.lock:
            self._settle(c)
            c.alive.discard(name)
            self._lose(c, name)

    def start(self, name: str) -> None:
        c = self._c
        with c.lock:
            self._settle(c)
            c.alive.add(name)
            self._settle(c)

    def isolate(self, members: list[str]) -> None:
        c = self._c
        with c.lock:
            self._settle(c)
            c.cut |= set(members)
            for name in members:
                self._lose(c, name)

    def heal(self, members: list[str]) -> None:
        c = self._c
        with c.lock:
            self._settle(c)
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
            now = self.ctx.clock.now()
            c.recent = [r for r in c.recent if r[0] > now - ROLLBACK_S] + [(now, key, c.data.get(key))]
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
            c.leader, c.lost = None, name
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
            if c.compound and c.lost not in c.cut and c.cut:
                self._roll_back(c, now)

    @staticmethod
    def _roll_back(c: _Cluster, now: float) -> None:
        """The compound weakness: a leader elected after the old one died, while another member
        is cut off, starts from a stale log and the last second of acknowledged writes is gone."""
        for _, key, before in reversed([r for r in c.recent if r[0] > now - ROLLBACK_S]):
            if before is None:
                c.data.pop(key, None)
            else:
                c.data[key] = before
        c.recent = []

    def _known(self, name: str) -> None:
        if name not in self._c.names:
            raise PlatformError(f"no master named {name!r}; masters are: {', '.join(self._c.names)}")


class MemoryPlatform(Platform):
    """The ``memory`` platform: in-memory masters, nothing else (see the module's doc)."""

    name = "memory"

    def __init__(
        self, ctx: RunContext, *, members: int = 3, election_s: float = 0.3, compound: bool = False
    ) -> None:
        """``compound``: a weakness only two overlapping faults reveal. A leader elected after
        the old one was killed *while another member is cut off* starts from a stale log and
        loses the last second of acknowledged writes; either fault alone is survived."""
        self.ctx = ctx
        self._masters = MemoryMasters(ctx, members=members, election_s=election_s, compound=compound)

    @property
    def masters(self) -> MemoryMasters:
        return self._masters

    def kill_master(self, pick: str = "leader", *, allow_below_quorum: bool = False) -> Fault:
        return KillMember(self.ctx, self._masters, pick, allow_below_quorum)

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
        return Isolate(self.ctx, self._masters, minority, label)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every member up and a leader elected (an election after a revert takes its time)."""
        masters = self._masters
        try:
            wait_until(
                lambda: masters.leader() is not None and len(masters.healthy()) == len(masters.names()),
                timeout=timeout,
                interval=0.01,
                what="the memory masters to elect a leader with every member up",
            )
        except WaitTimeout as exc:
            raise EnvironmentNotReady(str(exc)) from exc

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
