"""The Platform protocol: what an experiment may ask of the lab or of a real cluster."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from chaos.context import RunContext
from chaos.durability import KV
from chaos.fault import Fault
from chaos.slo import Measure

# a cut between two groups of nodes: no node of one reaches a node of the other
Cut = tuple[list[str], list[str]]


@runtime_checkable
class Masters(Protocol):
    """The control plane's replicated store (etcd) and its members."""

    def names(self) -> list[str]: ...

    def kv(self) -> KV: ...

    def leader(self) -> str | None:
        """The member every reachable member agrees leads, or None (no quorum / no answer)."""
        ...

    def healthy(self) -> list[str]: ...

    def quorum(self) -> int: ...

    def tolerance(self) -> Measure:
        """How many more members may fail before quorum is lost (healthy - quorum)."""
        ...


@runtime_checkable
class Platform(Protocol):
    name: str
    ctx: RunContext

    @property
    def masters(self) -> Masters: ...

    @property
    def entry_url(self) -> str:
        """The single entry point users and load hit (the global traffic manager)."""
        ...

    @property
    def prometheus_url(self) -> str: ...

    def kill_master(self, pick: str = "leader", *, allow_below_quorum: bool = False) -> Fault: ...

    def nodes(self) -> list[str]:
        """Every node a partition can name."""
        ...

    def partition(
        self,
        groups: list[list[str]],
        *,
        label: str = "",
        cuts: list[tuple[list[str], list[str]]] | None = None,
    ) -> Fault: ...

    def degrade(
        self,
        src: list[str],
        dst: str,
        *,
        latency: float,
        jitter: float,
        loss: float,
        reset: float,
        bandwidth_kbit: int | None,
    ) -> Fault: ...

    def kill_service(self, name: str) -> Fault: ...

    def environment(self) -> dict[str, Any]:
        """Facts for reports: platform, profile, versions, addresses."""
        ...
