"""The Fault base class: a reversible change, journaled before it is made.

Modelled on pytest's MonkeyPatch: every change is recorded before it happens, undone newest
first, and every undo runs even when another fails. Rollback never depends on the outcome of
the experiment.
"""

from __future__ import annotations

import abc
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, Self

from chaos.context import RunContext
from chaos.errors import DryRunPlan, FaultNotInEffect, RollbackError
from chaos.journal import Entry, undo_steps


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so a second Ctrl-C cannot abandon a half-done revert."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append((signum, frame))

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending and callable(previous):
            previous(*pending[0])


class Fault(abc.ABC):
    """Subclasses implement ``prepare`` (resolve and validate; change nothing), ``inject``
    (calling ``self.journaled`` before each change) and ``verify`` (raise
    ``FaultNotInEffect`` if the effect is not observed)."""

    #: short name used on the timeline and in reports, e.g. "kill_master"
    kind: str = "fault"

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._steps: list[Entry] = []
        self._entered = False
        self._open = False  # a fault.start is on the timeline without its fault.end
        self._name = ""  # the name its timeline events carry, fixed when the injection starts
        # an abort reverts from the guard's thread while the experiment's thread may be
        # leaving the `with` block: one revert at a time, the second finds nothing to do
        self._revert_lock = threading.RLock()
        self.injected_at: float | None = None
        self.verified_at: float | None = None
        self.reverted_at: float | None = None

    # -- to implement -------------------------------------------------------------------
    def prepare(self) -> None:  # noqa: B027  optional hook: most faults need no preparation
        """Resolve targets and refuse bad or unsafe requests. Must not change anything."""

    @abc.abstractmethod
    def inject(self) -> None: ...

    @abc.abstractmethod
    def verify(self) -> None: ...

    @abc.abstractmethod
    def describe(self) -> str:
        """One line saying what this fault does to what, e.g. 'SIGKILL etcd leader m2'."""

    def details(self) -> dict[str, Any]:
        """Facts for the report (targets, measured injection time...)."""
        return {}

    # -- machinery ----------------------------------------------------------------------
    def journaled(self, kind: str, undo: dict[str, Any], description: str) -> None:
        """Record one undo step; call immediately *before* making the change it undoes."""
        entry = self.ctx.journal.add(kind, undo, description, ttl=self.ctx.fault_ttl)
        self._steps.append(entry)

    def hand_over_steps(self) -> list[Entry]:
        """The undo steps recorded so far, taken from this fault by a composite that injected
        it (``Together``): from now on they are reverted with the composite's own."""
        steps, self._steps = self._steps, []
        return steps

    def __enter__(self) -> Self:
        if self._entered:
            raise RuntimeError(f"{self.describe()}: a fault can be entered only once")
        self._entered = True
        self.prepare()
        tl = self.ctx.tl
        if self.ctx.dry_run:
            tl.note("dry-run", fault=self.kind, plan=self.describe())
            raise DryRunPlan(f"would {self.describe()} ({self.details()})")
        self._name = self.describe()
        tl.record("fault.start", self._name, fault_kind=self.kind)
        self._open = True
        self.injected_at = tl.now()
        try:
            self.inject()
            self.verify()
        except BaseException as exc:
            try:
                self.revert()
            except RollbackError as rb:
                exc.add_note(f"and reverting it failed too: {rb}")
            raise
        # the "during" window opens here: what happened while the fault was being injected
        # is neither baseline nor effect
        event = tl.record("fault.verified", self._name, after=tl.now() - self.injected_at)
        self.verified_at = event.t
        self.ctx.abort.in_force(self)
        if self.ctx.abort.is_set:  # aborted while this one was being injected
            self.revert()
            self.ctx.abort.check()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.revert()

    def revert(self) -> None:
        """Undo every recorded step, newest first; idempotent; failures gathered, none skipped."""
        with self._revert_lock:
            self._revert()

    def _revert(self) -> None:
        self.ctx.abort.released(self)
        if not self._steps and not self._open:
            return
        with _sigint_deferred():
            if self._open:  # recovery is timed from here: a slow revert is part of the outage
                self.ctx.tl.record("fault.revert", self._name)
            failures = undo_steps(self.ctx.journal, self._steps)
            if self._open:
                tl = self.ctx.tl
                self.reverted_at = tl.now()
                tl.record("fault.end", self._name, fault_kind=self.kind, failed=len(failures))
                self._open = False
        if failures:
            raise RollbackError(
                f"reverting {self.describe()!r}: {len(failures)} undo step(s) failed and remain "
                "in the journal; fix the cause and run `chaos recover`"
            ) from ExceptionGroup("undo failures", failures)


def not_in_effect(fault: Fault, why: str) -> FaultNotInEffect:
    return FaultNotInEffect(f"{fault.describe()}: injected but not in effect: {why}")


class Together(Fault):
    """Several faults as one, such as a host lost (its processes killed and its network cut):
    every part is prepared before anything changes (a part that refuses leaves nothing
    half-applied), the parts are injected in order and verified together, and reverted as one,
    newest step first."""

    def __init__(self, ctx: RunContext, parts: list[Fault], *, kind: str, description: str) -> None:
        super().__init__(ctx)
        if not parts:
            raise ValueError("Together needs at least one fault")
        self.parts = parts
        self.kind = kind
        self.description = description

    def describe(self) -> str:
        return self.description

    def details(self) -> dict[str, Any]:
        return {"parts": [{"fault": p.describe(), **p.details()} for p in self.parts]}

    def prepare(self) -> None:
        for part in self.parts:
            part.prepare()

    def inject(self) -> None:
        for part in self.parts:
            try:
                part.inject()
            finally:  # what a part changed, even one that failed half-way, is reverted with the rest
                self._steps.extend(part.hand_over_steps())

    def verify(self) -> None:
        for part in self.parts:
            part.verify()
