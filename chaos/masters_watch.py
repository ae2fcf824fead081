"""What steady's probes of the masters measure beyond any series: writes (acknowledged writes
that cannot be read back) and leadership (changes, a new leader elected after a fault)."""

from __future__ import annotations

from typing import Any, Protocol

from chaos.durability import KV, DurabilityProbe
from chaos.errors import ConfigError
from chaos.slo import Check, Computed, Measure
from chaos.timeline import Timeline
from chaos.watched import Watched


class HasKV(Protocol):
    def kv(self) -> KV: ...


class Writes(Watched):
    """A durability writer's series plus the lost-write measure."""

    def __init__(self, probe: DurabilityProbe, timeline: Timeline, consecutive: int) -> None:
        super().__init__(probe.series, timeline, consecutive)
        self.probe = probe

    def lost(self) -> Measure:
        """Acknowledged writes that cannot be read back (stops the writer when evaluated)."""

        def compute() -> Computed:
            lost = self.probe.lost_keys()
            counts = self.probe.counts()
            detail: dict[str, Any] = {**counts}
            if lost:
                detail["lost_keys"] = lost[:20] + (["..."] if len(lost) > 20 else [])
            return Computed(float(len(lost)), detail, (None, None))

        return Measure(f"{self.name} lost (acknowledged)", "all", compute)


class HasLeader(Protocol):
    def leader(self) -> str | None: ...


class Leadership(Watched):
    """Who leads the masters, sampled; a sample without a leader is a failed sample."""

    def changes(self) -> Measure:
        """How many times leadership moved to another member since the latest fault."""

        def compute() -> Computed:
            start = self._last_fault_start()
            if start is None:
                raise ConfigError("leadership changes are counted from a fault; none was injected")
            current = self._leader_before(start)
            seen = [current] if current else []
            changes = 0
            for s in self.series.samples(start):
                if s.ok and s.value != current:
                    if current is not None:
                        changes += 1
                    current = s.value
                    seen.append(s.value)
            return Computed(float(changes), {"leaders": " -> ".join(str(x) for x in seen)}, (start, None))

        return Measure(f"{self.name} changes", "during", compute)

    def _leader_before(self, t: float) -> Any:
        before = [s.value for s in self.series.samples(None, t) if s.ok]
        return before[-1] if before else None

    def elected(self, within: float, *, new: bool = True) -> Check:
        """A leader is in place within ``within`` seconds of the latest fault's injection;
        with ``new`` (the default) it must be another member than the one that led when the
        fault began, so a fault that never unseated the leader cannot pass for a fast election."""
        if not new:
            return self.recovers(within, label="leader elected")

        made_at = self.timeline.now()

        def other_than_before(leader: Any) -> bool:
            fault = self._fault(made_at)
            return fault is not None and leader != self._leader_before(fault.start)

        return self.recovers(within, where=other_than_before, label="new leader elected")
