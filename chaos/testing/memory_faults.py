"""The memory platform's faults: stop a member, cut a minority of members off. Journaled like
every fault; an undo finds its masters among those alive in this process (after a crash there
is nothing to undo: the memory went with the process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaos.context import RunContext
from chaos.fault import Fault, not_in_effect
from chaos.journal import register_undo
from chaos.platform import pick_member

if TYPE_CHECKING:
    from chaos.testing.memory import MemoryMasters

RESTART = "memory.member.restart"
HEAL = "memory.partition.heal"
# the masters alive in this process, by key
LIVE: dict[str, MemoryMasters] = {}


@register_undo(RESTART)
def _restart(undo: dict[str, Any]) -> None:
    masters = LIVE.get(undo["platform"])
    if masters is not None:
        masters.start(undo["member"])


@register_undo(HEAL)
def _heal(undo: dict[str, Any]) -> None:
    masters = LIVE.get(undo["platform"])
    if masters is not None:
        masters.heal(undo["members"])


class KillMember(Fault):
    kind = "kill_master"

    def __init__(self, ctx: RunContext, masters: MemoryMasters, pick: str, allow_below_quorum: bool) -> None:
        super().__init__(ctx)
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


class Isolate(Fault):
    kind = "partition"

    def __init__(self, ctx: RunContext, masters: MemoryMasters, members: list[str], label: str) -> None:
        super().__init__(ctx)
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
