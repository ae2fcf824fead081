"""What every fault and probe of one experiment shares: journal, timeline, clock, random."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from chaos.abort import AbortableClock, AbortSwitch
from chaos.clock import Clock, SystemClock
from chaos.journal import Journal
from chaos.timeline import Timeline

DEFAULT_STATE_DIR = Path("/var/lib/chaos-lab")


def state_dir() -> Path:
    """The machine-wide state directory (lab state and fault journal); CHAOS_STATE_DIR overrides."""
    return Path(os.environ.get("CHAOS_STATE_DIR", str(DEFAULT_STATE_DIR)))


def lab_unavailable() -> str | None:
    """Why the lab cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, iptables, loop mounts); run as root"
    return None


def default_journal() -> Journal:
    return Journal(state_dir() / "journal.json")


@dataclass
class RunContext:
    journal: Journal = field(default_factory=default_journal)
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    timeline: Timeline | None = None
    dry_run: bool = False
    fault_ttl: float = 900.0  # no fault outlives this, even if everything else dies
    abort: AbortSwitch = field(default_factory=AbortSwitch)

    def __post_init__(self) -> None:
        if self.timeline is None:
            self.timeline = Timeline(self.clock)
        if not isinstance(self.clock, AbortableClock):
            # every wait of the experiment goes through this clock: an abort wakes it
            self.clock = AbortableClock(self.clock, self.abort)

    @property
    def tl(self) -> Timeline:
        assert self.timeline is not None
        return self.timeline
