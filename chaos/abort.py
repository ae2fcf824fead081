"""Stopping a run early: the abort switch every wait listens to, the faults in force it
reverts, and the operator's abort file.

A guard breach, ``chaos abort`` from another terminal, or code calls ``AbortSwitch.trigger``.
The first trigger wins: every fault in force is reverted at once (newest first) from the
thread that noticed, every registered stopper runs (load generators), and whatever the
experiment is waiting on through the run's clock raises ``Aborted`` with the reason.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.clock import Clock, SystemClock
from chaos.errors import Aborted

if TYPE_CHECKING:
    from chaos.fault import Fault
    from chaos.timeline import Timeline


def abort_file(state: Path) -> Path:
    """Where ``chaos abort`` leaves its request for every run on this machine."""
    return state / "abort"


def request_abort(state: Path, reason: str) -> Path:
    """Ask every run on this machine to abort (the file's time says which runs it concerns)."""
    path = abort_file(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(reason.strip() or "operator abort")
    os.replace(tmp, path)
    return path


def requested_since(state: Path, since_epoch: float) -> str | None:
    """The operator's reason if ``chaos abort`` was run after ``since_epoch``."""
    path = abort_file(state)
    try:
        if path.stat().st_mtime < since_epoch:
            return None
        return path.read_text().strip() or "operator abort"
    except FileNotFoundError:
        return None


class AbortSwitch:
    def __init__(self) -> None:
        self._triggered = False
        self._event = threading.Event()  # set once the faults are reverted: waiters wake then
        self._lock = threading.Lock()
        self.reason: str | None = None
        self.at: float | None = None  # timeline seconds of the breach
        self.reverted_after: float | None = None  # seconds from breach to every fault reverted
        self._faults: list[Fault] = []
        self._stoppers: list[Callable[[], None]] = []
        self.errors: list[str] = []

    @property
    def is_set(self) -> bool:
        return self._triggered

    @property
    def faults_in_force(self) -> int:
        with self._lock:
            return len(self._faults)

    def message(self) -> str:
        at = "" if self.at is None else f" at t={self.at:.2f}s"
        return f"aborted: {self.reason}{at}"

    def check(self) -> None:
        if self._triggered:
            raise Aborted(self.message(), self.evidence())

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the switch was triggered meanwhile."""
        return self._event.wait(max(0.0, seconds))

    # -- what an abort undoes ------------------------------------------------------------------
    def in_force(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def released(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def on_abort(self, stop: Callable[[], None]) -> None:
        """Run ``stop`` when the run aborts (e.g. stop a load generator)."""
        with self._lock:
            self._stoppers.append(stop)

    def trigger(self, reason: str, timeline: Timeline) -> bool:
        """Abort the run: revert every fault in force, run the stoppers. The first call
        wins; later ones return False."""
        with self._lock:
            if self._triggered:
                return False
            self._triggered = True
            self.reason, self.at = reason, timeline.now()
            faults, stoppers = list(reversed(self._faults)), list(self._stoppers)
        timeline.note("abort", reason=reason)
        start = time.monotonic()
        for fault in faults:
            try:
                fault.revert()
            except Exception as exc:  # noqa: BLE001  every fault must get its revert; gathered below
                self.errors.append(f"reverting {fault.describe()}: {exc}")
        self.reverted_after = time.monotonic() - start
        for stop in stoppers:
            try:
                stop()
            except Exception as exc:  # noqa: BLE001  a failed stopper must not keep the rest from running
                self.errors.append(f"stopping: {exc}")
        timeline.note("abort.reverted", after=self.reverted_after, faults=len(faults))
        self._event.set()
        return True

    def evidence(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "at": self.at,
            "reverted_after_s": self.reverted_after,
            "errors": self.errors,
        }


class AbortableClock:
    """The run's clock: sleeping on it wakes (and raises ``Aborted``) when the run aborts."""

    def __init__(self, inner: Clock, switch: AbortSwitch) -> None:
        self.inner = inner
        self.switch = switch

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        self.switch.check()
        if isinstance(self.inner, SystemClock):
            self.switch.wait(seconds)
        else:
            self.inner.sleep(seconds)
        self.switch.check()
