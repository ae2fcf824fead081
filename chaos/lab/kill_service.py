"""Killing a lab service (a router, a gateway, the inventory...): SIGKILL its process; the
revert starts it again with its original command line and waits until it serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, PlatformError
from chaos.fault import not_in_effect
from chaos.journal import register_undo
from chaos.lab import procs
from chaos.lab.lab import Lab
from chaos.lab.labfault import LabFault
from chaos.lab.nsexec import can_connect
from chaos.wait import WaitTimeout, wait_until

RESTART_SERVICE = "lab.service.restart"


@register_undo(RESTART_SERVICE)
def _restart_service(undo: dict[str, Any]) -> None:
    lab = Lab(Path(undo["state_dir"]))
    if lab.state() is not None:
        lab.start_service(undo["service"])


class KillService(LabFault):
    kind = "kill_service"

    def __init__(self, ctx: RunContext, lab: Lab, name: str) -> None:
        super().__init__(ctx, lab)
        self.name = name

    def describe(self) -> str:
        return f"SIGKILL service {self.name}"

    def prepare(self) -> None:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        svc = st.service(self.name)
        if not svc.address:
            raise ConfigError(
                f"{self.name} is the lab's own {svc.kind}, not a node: kill_service takes a node "
                f"(nodes: {', '.join(s.name for s in st.services if s.address)})"
            )
        if not svc.proc.alive():
            raise PlatformError(f"{self.name} is not running; killing it would prove nothing")

    def inject(self) -> None:
        self.journaled(
            RESTART_SERVICE, {"state_dir": str(self.lab.root), "service": self.name}, f"restart {self.name}"
        )
        st = self.lab.state()
        assert st is not None
        procs.kill(st.service(self.name).proc)

    def verify(self) -> None:
        st = self.lab.state()
        assert st is not None
        svc = st.service(self.name)
        if svc.proc.alive():
            raise not_in_effect(self, "the process is still running")
        try:
            wait_until(
                lambda: not can_connect("chaos-" + self.name, svc.address, svc.port),
                timeout=2,
                interval=0.02,
                what=f"{self.name} to stop answering",
            )
        except WaitTimeout as exc:
            raise not_in_effect(self, f"{self.name} still answers") from exc
