"""A cold standby: a backup cluster's service replicas (the shop's gateways, a topology's
``clusters: {NAME: {replicas: [...]}}``) stopped, so the cluster serves nothing until it is
activated. The revert is the activation: every replica started at once and awaited until it
serves, as a runbook's "start the standby" step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, PlatformError
from chaos.fault import not_in_effect
from chaos.journal import register_undo
from chaos.lab import procs
from chaos.lab.autoscaler import stats
from chaos.lab.lab import Lab
from chaos.lab.labfault import LabFault
from chaos.lab.nsexec import can_connect
from chaos.lab.services import socket_path
from chaos.lab.state import LabState
from chaos.wait import WaitTimeout, wait_until

ACTIVATE = "lab.standby.activate"


@register_undo(ACTIVATE)
def _activate(undo: dict[str, Any]) -> None:
    lab = Lab(Path(undo["state_dir"]))
    if lab.state() is not None:
        lab.start_services(list(undo["services"]))


class ColdStandby(LabFault):
    kind = "cold_standby"

    def __init__(self, ctx: RunContext, lab: Lab, cluster: str) -> None:
        super().__init__(ctx, lab)
        self.cluster = cluster
        self.replicas: list[str] = []
        self.activated_in: float | None = None

    def describe(self) -> str:
        return f"hold cluster {self.cluster} cold (its replicas stopped until activated)"

    def details(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"cluster": self.cluster, "replicas": self.replicas}
        if self.activated_in is not None:
            facts["activation_s"] = round(self.activated_in, 3)
        return facts

    def prepare(self) -> None:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        clusters = [c.name for c in st.topo.clusters] if st.topo else list(st.shape.clusters)
        if self.cluster not in clusters:
            raise ConfigError(f"no cluster {self.cluster!r} in this lab; clusters are: {', '.join(clusters)}")
        if self.cluster == clusters[0]:
            backups = ", ".join(clusters[1:]) or "none in this profile"
            raise ConfigError(
                f"{self.cluster} is the primary cluster; only a backup cluster can be held cold: {backups}"
            )
        self.replicas = [s for s in self._declared(st) if st.service(s).proc.alive()]
        if not self.replicas:
            raise PlatformError(
                f"no replica of {self.cluster} is running; holding it cold would prove nothing"
            )

    def _declared(self, st: LabState) -> list[str]:
        if st.topo is not None:
            replicas = list(st.topo.cluster(self.cluster).replicas)
            if not replicas:
                raise ConfigError(
                    f"topology {st.topo.name}: cluster {self.cluster} declares no replicas to hold cold "
                    "(clusters: {NAME: {replicas: [NODE, ...]}})"
                )
            return replicas
        return [s.name for s in st.services if s.kind == "gateway" and s.cluster == self.cluster]

    def inject(self) -> None:
        # one step for every replica: the activation starts them together
        self.journaled(
            ACTIVATE,
            {"state_dir": str(self.lab.root), "services": self.replicas},
            f"activate {self.cluster} (start {', '.join(self.replicas)})",
        )
        st = self.lab.state()
        assert st is not None
        for name in self.replicas:
            procs.kill(st.service(name).proc)

    def verify(self) -> None:
        st = self.lab.state()
        assert st is not None
        alive = [n for n in self.replicas if st.service(n).proc.alive()]
        if alive:
            raise not_in_effect(self, f"still running: {', '.join(alive)}")
        if st.topo is not None:
            self._verify_silent(st)
            return
        router = socket_path(self.lab.root, f"{self.cluster}-router")

        def serving() -> list[str]:
            return [n for n, row in stats(str(router)).items() if row["status"] == "UP"]

        # cold means its router has nothing to send a request to (its checks say so)
        try:
            wait_until(
                lambda: not serving(), timeout=3, interval=0.05, what=f"{self.cluster} to serve nothing"
            )
        except WaitTimeout as exc:
            raise not_in_effect(
                self, f"{self.cluster}'s router still sends to {', '.join(serving())}"
            ) from exc

    def revert(self) -> None:
        t0 = self.ctx.clock.now()
        activating = bool(self._steps)
        super().revert()
        if activating:
            self.activated_in = self.ctx.clock.now() - t0

    def _verify_silent(self, st: LabState) -> None:
        """A topology's cluster has no router the lab knows: cold means no replica's port
        answers (its own node asks, as kill_service checks)."""

        def answering() -> list[str]:
            return [
                n
                for n in self.replicas
                if can_connect("chaos-" + n, st.service(n).address, st.service(n).port)
            ]

        try:
            wait_until(lambda: not answering(), timeout=2, interval=0.02, what=f"{self.cluster} to go quiet")
        except WaitTimeout as exc:
            raise not_in_effect(self, f"still answering: {', '.join(answering())}") from exc
