"""Lab faults on masters: SIGKILL an etcd member, and the undo that brings it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.context import RunContext
from chaos.errors import PlatformError
from chaos.fault import not_in_effect
from chaos.journal import register_undo
from chaos.lab.lab import Lab
from chaos.lab.labfault import LabFault
from chaos.platform import pick_member
from chaos.wait import WaitTimeout, wait_until

RESTART_MEMBER = "lab.etcd.restart"


@register_undo(RESTART_MEMBER)
def _restart_member(undo: dict[str, Any]) -> None:
    lab = Lab(Path(undo["state_dir"]))
    if lab.state() is None:
        return  # the lab was taken down since: there is no member left to restore
    lab.start_member(undo["member"])


class KillMaster(LabFault):
    kind = "kill_master"

    def __init__(self, ctx: RunContext, lab: Lab, pick: str, allow_below_quorum: bool) -> None:
        super().__init__(ctx, lab)
        self.pick = pick
        self.allow_below_quorum = allow_below_quorum
        self.target: str | None = None
        self.was_leader = False

    def describe(self) -> str:
        role = "leader" if self.was_leader else "member"
        return f"SIGKILL etcd {role} {self.target or self.pick}"

    def details(self) -> dict[str, Any]:
        return {"target": self.target, "was_leader": self.was_leader, "pick": self.pick}

    def prepare(self) -> None:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        names = [m.name for m in st.members]
        leader = self.lab.leader()
        target = pick_member(
            self.pick,
            names=names,
            up=[m.name for m in st.members if m.proc.alive()],
            leader=leader,
            rng=self.ctx.rng,
            allow_below_quorum=self.allow_below_quorum,
        )
        self.target = target
        self.was_leader = target == leader

    def inject(self) -> None:
        assert self.target is not None
        self.journaled(
            RESTART_MEMBER,
            {"state_dir": str(self.lab.root), "member": self.target},
            f"restart etcd {self.target}",
        )
        self.lab.kill_member(self.target)

    def verify(self) -> None:
        assert self.target is not None
        st = self.lab.state()
        assert st is not None
        if st.member(self.target).proc.alive():
            raise not_in_effect(self, "the process is still running")
        try:
            wait_until(
                lambda: not self.lab.member_answers(self.target or ""),
                timeout=2.0,
                interval=0.02,
                what=f"etcd {self.target} to stop answering",
            )
        except WaitTimeout as exc:
            raise not_in_effect(self, f"{self.target} still answers on its client port") from exc
