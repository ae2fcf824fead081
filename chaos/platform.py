"""The Platform protocol: what an experiment may ask of the lab or of a real cluster."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chaos.context import RunContext
from chaos.durability import KV
from chaos.errors import ConfigError, PlatformError, UnsafeFaultRefused
from chaos.fault import Fault
from chaos.slo import Computed, Measure

MAX_LATENCY = 30.0


@dataclass(frozen=True)
class LinkFault:
    """What a degraded link does: added latency (seconds, with jitter), packet loss and
    connection resets (probabilities), a bandwidth cap."""

    latency: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    reset: float = 0.0
    bandwidth_kbit: int | None = None

    def problems(self) -> list[str]:
        out = []
        if not 0 <= self.latency <= MAX_LATENCY:
            out.append(f"latency={self.latency!r} s: use 0 to {MAX_LATENCY:g} seconds")
        if not 0 <= self.jitter <= self.latency:
            out.append(f"jitter={self.jitter!r} s: use 0 up to the latency ({self.latency!r} s)")
        out += [
            f"{name}={p!r}: a probability from 0 to 1"
            for name, p in (("loss", self.loss), ("reset", self.reset))
            if not 0 <= p <= 1
        ]
        if self.bandwidth_kbit is not None and self.bandwidth_kbit < 8:
            out.append(f"bandwidth_kbit={self.bandwidth_kbit!r}: at least 8")
        if not (self.latency or self.loss or self.reset or self.bandwidth_kbit):
            out.append("degrade() needs at least one of latency, loss, reset, bandwidth_kbit")
        return out

    def describe(self) -> str:
        effects = []
        if self.latency:
            effects.append(
                f"+{self.latency * 1000:g} ms" + (f" ±{self.jitter * 1000:g}" if self.jitter else "")
            )
        if self.loss:
            effects.append(f"{self.loss:.0%} loss")
        if self.reset:
            effects.append(f"{self.reset:.0%} resets")
        if self.bandwidth_kbit:
            effects.append(f"{self.bandwidth_kbit} kbit/s")
        return ", ".join(effects)


STORAGE_MODES = ("full", "read_only", "io_error", "slow", "flaky", "lost")
MAX_STORAGE_LATENCY = 5.0
STORAGE_ERRNOS = ("EIO", "ENOSPC", "EROFS", "EDQUOT", "EAGAIN")
# what each mode needs besides its name, as the storage experiments use it
STORAGE_EXAMPLES: dict[str, dict[str, float]] = {
    "full": {},
    "read_only": {},
    "io_error": {},
    "slow": {"latency": 0.2},
    "flaky": {"rate": 0.5},
    "lost": {},
}


@dataclass(frozen=True)
class StorageFault:
    """What a failing volume does. ``full``: no space left (ENOSPC); ``read_only``: writes
    fail with EROFS; ``io_error``: every operation fails with EIO (the file system is shut
    down); ``slow``: ``latency`` seconds added to each operation; ``flaky``: a share ``rate``
    of operations fail with ``errno``; ``lost``: the storage daemon dies (ENOTCONN)."""

    mode: str
    latency: float = 0.0
    rate: float = 1.0
    errno: str = "EIO"

    def problems(self) -> list[str]:
        if self.mode not in STORAGE_MODES:
            return [f"unknown storage mode {self.mode!r}; modes are: {', '.join(STORAGE_MODES)}"]
        out = []
        if self.mode == "slow" and not 0 < self.latency <= MAX_STORAGE_LATENCY:
            out.append(f"latency={self.latency!r} s: use more than 0 and at most {MAX_STORAGE_LATENCY:g} s")
        if self.mode != "slow" and self.latency:
            out.append(f"latency= applies to mode 'slow' only, not {self.mode!r}")
        if self.mode == "flaky":
            if not 0 < self.rate <= 1:
                out.append(f"rate={self.rate!r}: a share of operations above 0 and at most 1")
            if self.errno not in STORAGE_ERRNOS:
                out.append(f"errno={self.errno!r}: use one of {', '.join(STORAGE_ERRNOS)}")
        elif self.rate != 1.0 or self.errno != "EIO":
            out.append(f"rate= and errno= apply to mode 'flaky' only, not {self.mode!r}")
        return out

    def describe(self) -> str:
        if self.mode == "slow":
            return f"slow (+{self.latency * 1000:g} ms per operation)"
        if self.mode == "flaky":
            return f"flaky ({self.rate:.0%} of operations fail with {self.errno})"
        return self.mode.replace("_", "-")


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


def pick_member(
    pick: str,
    *,
    names: list[str],
    up: list[str],
    leader: str | None,
    rng: random.Random,
    allow_below_quorum: bool,
    up_word: str = "running",
) -> str:
    """The etcd member ``pick`` names ("leader", "follower" — a seeded choice — or a member),
    refusing, before anything changes, a member that is not ``up`` or a kill below quorum."""
    if pick == "leader":
        if leader is None:
            raise PlatformError("no etcd leader right now (the cluster has no quorum): nothing to kill")
        target = leader
    elif pick == "follower":
        followers = sorted(n for n in up if n != leader)
        if not followers:
            raise UnsafeFaultRefused(
                f"no {up_word} follower to kill (members: {', '.join(names)}, leader: {leader})"
            )
        target = rng.choice(followers)
    elif pick in names:
        target = pick
    else:
        raise ConfigError(
            f"kill_master(pick={pick!r}): use 'leader', 'follower' or a master name ({', '.join(names)})"
        )
    if target not in up:
        raise UnsafeFaultRefused(f"etcd {target} is not {up_word}; killing it would prove nothing")
    quorum = len(names) // 2 + 1
    left = len(up) - 1
    if left < quorum and not allow_below_quorum:
        raise UnsafeFaultRefused(
            f"killing etcd {target} would leave {left} of {len(names)} members {up_word}, below "
            f"quorum ({quorum}): the cluster would stop accepting writes. Pass "
            "allow_below_quorum=True to do it anyway"
        )
    return target


def failure_tolerance(masters: Masters) -> Measure:
    """How many more members may fail before quorum is lost: healthy members - quorum."""

    def compute() -> Computed:
        healthy, total, quorum = len(masters.healthy()), len(masters.names()), masters.quorum()
        detail = {"members": total, "healthy": healthy, "quorum": quorum}
        return Computed(float(healthy - quorum), detail, (None, None))

    return Measure("masters failure tolerance", "all", compute, unit=" members")


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

    def degrade(self, src: list[str], dst: str, link: LinkFault) -> Fault: ...

    def kill_service(self, name: str) -> Fault: ...

    def volumes(self) -> list[str]:
        """Every volume a storage fault can name (each master's data, the workload's)."""
        ...

    def fail_storage(
        self, volumes: list[str], fault: StorageFault, *, allow_below_quorum: bool = False
    ) -> Fault: ...

    def environment(self) -> dict[str, Any]:
        """Facts for reports: platform, profile, versions, addresses."""
        ...
