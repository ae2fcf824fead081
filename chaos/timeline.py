"""One monotonic record of everything an experiment did and saw.

Events (fault in/out, phases, notes) are few and kept in order; probe samples are many and
live in their probe's series, which the timeline references for charts and CSV.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.clock import Clock, SystemClock

if TYPE_CHECKING:
    from chaos.probes import Series


@dataclass(frozen=True)
class Event:
    t: float
    kind: str  # "fault.start", "fault.end", "phase.start", "phase.end", "note"
    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """A closed or open interval on the timeline: a fault in force, or a phase."""

    kind: str  # "fault" or "phase"
    name: str
    start: float
    end: float | None

    def contains(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


class Timeline:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.origin = self.clock.now()
        # wall-clock time of t=0, to line the timeline up with logs of other programs
        self.wall_origin = time.time()
        self._events: list[Event] = []
        self._series: list[Series] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since this timeline began: the one clock every record uses."""
        return self.clock.now() - self.origin

    def record(self, kind: str, name: str, **data: Any) -> Event:
        event = Event(self.now(), kind, name, data)
        with self._lock:
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)
        return event

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event as it is recorded (on the recording thread)."""
        with self._lock:
            self._listeners.append(listener)

    def note(self, name: str, **data: Any) -> Event:
        return self.record("note", name, **data)

    def attach(self, series: Series) -> None:
        with self._lock:
            if series not in self._series:
                self._series.append(series)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    @property
    def series(self) -> list[Series]:
        with self._lock:
            return list(self._series)

    def spans(self, kind: str) -> list[Span]:
        """Intervals of ``kind`` ("fault" or "phase"), pairing each start with its end."""
        open_: dict[str, float] = {}
        out: list[Span] = []
        for ev in self.events:
            if ev.kind == f"{kind}.start":
                open_[ev.name] = ev.t
            elif ev.kind == f"{kind}.end" and ev.name in open_:
                out.append(Span(kind, ev.name, open_.pop(ev.name), ev.t))
        out.extend(Span(kind, name, start, None) for name, start in open_.items())
        return sorted(out, key=lambda s: s.start)

    def fault_window(self) -> tuple[float, float | None] | None:
        """From the first fault injected to the last one reverted (None end: still in force)."""
        faults = self.spans("fault")
        if not faults:
            return None
        ends = [s.end for s in faults]
        end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        return faults[0].start, end
