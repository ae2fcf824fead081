"""The Platform protocol: what an experiment may ask of the lab or of a real cluster."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chaos.context import RunContext
from chaos.durability import KV
from chaos.errors import ConfigError, EnvironmentNotReady, NotSupported, PlatformError, UnsafeFaultRefused
from chaos.fault import Fault
from chaos.slo import Computed, Measure

if TYPE_CHECKING:
    from chaos.load.run import LoadEngine
    from chaos.registers import RegisterStore

MAX_LATENCY = 30.0
# loss and resets act on each packet; above this too few requests get through to measure latency
MAX_RATE_WITH_LATENCY = 0.2


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
        if self.latency and max(self.loss, self.reset) > MAX_RATE_WITH_LATENCY:
            out.append(
                f"latency with loss or reset above {MAX_RATE_WITH_LATENCY:g}: latency is verified by "
                "requests over the link, and too few would get through to show it; lower the "
                "probability or put the two on the link one after the other"
            )
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


# each mode as the storage experiments use it (what it needs besides its name filled in)
STORAGE_EXAMPLES: dict[str, StorageFault] = {
    "full": StorageFault("full"),
    "read_only": StorageFault("read_only"),
    "io_error": StorageFault("io_error"),
    "slow": StorageFault("slow", latency=0.2),
    "flaky": StorageFault("flaky", rate=0.5),
    "lost": StorageFault("lost"),
}


# a cut between two groups of nodes: no node of one reaches a node of the other
Cut = tuple[list[str], list[str]]


def quorum(members: int) -> int:
    """How many of ``members`` must agree for the masters to commit: a strict majority."""
    return members // 2 + 1


@dataclass(frozen=True)
class Capacity:
    """A cluster's capacity at one moment, in the same terms on every platform.

    ``headroom`` is the share of capacity a spike can still use (free plus reserve, over the
    total), ``reserve`` the share held back for scale-out, ``ready`` and ``desired`` the
    autoscaled workload's ready replicas and what its autoscaler wants. ``figures`` keeps the
    platform's own numbers (slots on the lab, millicores on kube). A figure a platform cannot
    know is None; reading it by key (``capacity["ready"]``) raises NotSupported with ``hint``,
    so an experiment that needs it skips saying why."""

    headroom: float | None
    reserve: float | None
    ready: int | None = None
    desired: int | None = None
    unit: str = ""
    events: tuple[Mapping[str, Any], ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)
    hint: str = ""

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key) if key in _CAPACITY_FIELDS else self.figures.get(key)
        if value is None:
            known = sorted({*_CAPACITY_FIELDS, *self.figures} - {"figures", "hint"})
            raise NotSupported(
                f"capacity has no {key!r} here"
                + (f": {self.hint}" if self.hint else "")
                + ("" if key in known else f" (figures: {', '.join(known)})")
            )
        return value


_CAPACITY_FIELDS = frozenset(f.name for f in fields(Capacity))


@dataclass(frozen=True)
class Rollout:
    """How a service's rollout stands: replicas on the version its spec asks for (``updated``)
    and how many of them are ready, replicas on another version (``outdated``: a rollout is in
    progress while there are any), every ready replica, and whether it is stuck (its
    controller's progress deadline passed, or a new replica cannot pull its image), with why."""

    version: str  # what the spec asks for (an image on Kubernetes)
    updated: int
    updated_ready: int
    outdated: int
    ready: int
    stuck: bool
    reason: str


class Member(Protocol):
    """One member, or one store, as a write target of its own."""

    def kv(self) -> KV: ...


class Store(Member, Protocol):
    """A service's store as a durability target that also answers HTTP at ``url``."""

    url: str


class Recorder(Protocol):
    """Something a platform runs for the length of an experiment (an event watch)."""

    def stop(self) -> None: ...


@runtime_checkable
class Masters(Protocol):
    """The control plane's replicated store (etcd) and its members."""

    def names(self) -> list[str]: ...

    def kv(self) -> KV: ...

    def only(self, name: str) -> Member:
        """Member ``name`` alone as a write target: no failover to the others."""
        ...

    def lag(self, name: str) -> int:
        """How many log entries member ``name`` is behind the leader (raises PlatformError if
        either does not answer)."""
        ...

    def registers(self, member: str | None = None) -> RegisterStore:
        """Single-key registers (read, write, compare-and-set) through ``member`` alone, or
        any member: what ``steady.registers(...)`` runs its clients against."""
        raise NotSupported("these masters offer no register client (read, write, compare-and-set)")

    def leader(self) -> str | None:
        """The member every reachable member agrees leads, or None (no quorum / no answer)."""
        ...

    def require_leader(self) -> str:
        """The leader, for an experiment about to act on it; EnvironmentNotReady when there is
        none (a precondition that does not hold: nothing was changed)."""
        leader = self.leader()
        if leader is None:
            raise EnvironmentNotReady(
                f"no etcd leader among {', '.join(self.names())}: the masters must have one before the fault"
            )
        return leader

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
    need = quorum(len(names))
    left = len(up) - 1
    if left < need and not allow_below_quorum:
        raise UnsafeFaultRefused(
            f"killing etcd {target} would leave {left} of {len(names)} members {up_word}, below "
            f"quorum ({need}): the cluster would stop accepting writes. Pass "
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
    """What an experiment may ask of a platform. A platform class subclasses this Protocol
    explicitly, so mypy checks it against every method here and it inherits the documented
    defaults (a capability it lacks raises NotSupported, which skips an experiment that asks
    for it before its first fault). ``chaos.testing.MemoryPlatform`` is the smallest one."""

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

    def capacity(self, cluster: str | None = None) -> Capacity:
        """``cluster``'s capacity (the primary cluster by default)."""
        raise NotSupported(f"the {self.name} platform does not report capacity")

    def cluster_url(self, cluster: str) -> str:
        """``cluster``'s own entry (its router), bypassing the global traffic manager: what a
        check of one cluster's service probes, so a failover cannot hide that cluster's outage."""
        raise NotSupported(f"the {self.name} platform does not expose each cluster's own entry")

    def hosts(self, cluster: str | None = None) -> dict[str, list[str]]:
        """The hosts (machines: nodes of a Kubernetes cluster) ``cluster``'s autoscaled replicas
        can run on, each with the replicas serving there now (a host with none is listed empty)."""
        raise NotSupported(f"the {self.name} platform does not report where replicas run")

    def lose_host(self, host: str) -> Fault:
        """The whole host goes at once: every process on it and its network. Reverting brings
        it back."""
        raise NotSupported(f"the {self.name} platform cannot take a host away")

    def cold_standby(self, cluster: str) -> Fault:
        """Hold ``cluster`` cold: its service replicas stopped, so it serves nothing until it is
        activated. Reverting it is the activation (every replica started at once, awaited until
        serving): an experiment reverts it early, when the primary is lost, as a runbook would."""
        raise NotSupported(f"the {self.name} platform cannot hold a cluster cold")

    def lose_registry(self) -> Fault:
        """The image registry the clusters pull from, unreachable until the revert."""
        raise NotSupported(f"the {self.name} platform has no image registry to lose")

    def roll_out(self, service: str, version: str) -> Fault:
        """Start rolling ``service`` out to ``version`` (a tag of its image, or a whole image);
        the revert rolls it back. Whether the rollout completes is measured with ``rollout``."""
        raise NotSupported(f"the {self.name} platform does not roll out image versions")

    def rollout(self, service: str) -> Rollout:
        """How ``service``'s rollout stands now."""
        raise NotSupported(f"the {self.name} platform does not report rollouts")

    def inventory(self, cluster: str | None = None) -> Store:
        """The sample workload's store in ``cluster`` as a durability target."""
        raise NotSupported(
            f"the {self.name} platform has no sample inventory; write your service's own durability "
            "target (an object whose kv() has put and read_prefix)"
        )

    def store(self, name: str) -> Store:
        """A store the platform declares by ``name`` (a lab topology's ``stores:``) as a
        durability target."""
        raise NotSupported(f"the {self.name} platform declares no stores by name")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Return once the platform is fit for the next experiment (raise EnvironmentNotReady
        saying what is not); by default a platform is always ready."""

    def record_events(self) -> Recorder | None:
        """Start putting the platform's own events on the timeline; None when it has none."""
        return None

    def load_engine(self) -> LoadEngine:
        """What runs the experiment's Locust loads: by default a Locust process here."""
        from chaos.load import Load

        return Load
