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
from chaos.events import EventKind, SpanKind

if TYPE_CHECKING:
    from chaos.probes import Series


@dataclass(frozen=True)
class Event:
    t: float
    kind: EventKind  # chaos.events says what each means
    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """A closed or open interval on the timeline: a fault, or a phase.

    A fault's span runs from the start of its injection to the end of its revert; within it,
    ``verified`` is when its effect was observed (the "during" window opens there, not at the
    injection) and ``reverting`` when its revert began (recovery is timed from there)."""

    kind: SpanKind
    name: str
    start: float
    end: float | None
    verified: float | None = None
    reverting: float | None = None


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

    def record(self, kind: EventKind, name: str, **data: Any) -> Event:
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

    def spans(self, kind: SpanKind) -> list[Span]:
        """Intervals of ``kind`` ("fault" or "phase"), pairing each start with its end (and a
        fault's verification and revert in between)."""
        open_: dict[str, dict[str, float]] = {}
        out: list[Span] = []
        for ev in self.events:
            edge = ev.kind.removeprefix(f"{kind}.")
            if edge == ev.kind:
                continue
            if edge == "start":
                open_[ev.name] = {"start": ev.t}
            elif ev.name in open_ and edge in ("verified", "revert"):
                open_[ev.name].setdefault(edge, ev.t)
            elif ev.name in open_ and edge == "end":
                marks = open_.pop(ev.name)
                out.append(
                    Span(kind, ev.name, marks["start"], ev.t, marks.get("verified"), marks.get("revert"))
                )
        out.extend(
            Span(kind, name, m["start"], None, m.get("verified"), m.get("revert"))
            for name, m in open_.items()
        )
        return sorted(out, key=lambda s: s.start)

    def first_injection(self) -> float | None:
        """When the first fault's injection began: the baseline ends there."""
        faults = self.spans("fault")
        return faults[0].start if faults else None

    def fault_window(self) -> tuple[float, float | None] | None:
        """The effect window: from the first fault verified in effect to the last one's revert
        starting (None end: still in force). Being injected and being reverted belong to
        neither this window nor its neighbours. None while no fault has been verified."""
        faults = self.spans("fault")
        verified = [s.verified for s in faults if s.verified is not None]
        if not verified:
            return None
        stops = [s.reverting if s.reverting is not None else s.end for s in faults]
        end = None if any(e is None for e in stops) else max(e for e in stops if e is not None)
        return min(verified), end

    def last_revert_done(self) -> float | None:
        """When the last fault finished reverting: the recovery window opens there."""
        ends = [s.end for s in self.spans("fault")]
        return None if not ends or any(e is None for e in ends) else max(e for e in ends if e is not None)
