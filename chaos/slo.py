"""Steady-state predicates over probe series, evaluated in windows, with evidence.

A ``Measure`` is a number not yet computed ("availability of writes during the fault");
comparing it with a bound gives a ``Check``; evaluating a check gives a ``Finding`` that
carries the measured value, the bound and the window, pass or fail.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from chaos.errors import ConfigError
from chaos.probes import Sample
from chaos.timeline import Timeline

Window = Literal["all", "baseline", "during", "recovery"]
WINDOWS: tuple[str, ...] = ("all", "baseline", "during", "recovery")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!="}


def window_bounds(timeline: Timeline, window: str) -> tuple[float | None, float | None]:
    """Baseline is before the first fault's injection began; during is from the first fault
    verified in effect until the last one's revert begins; recovery is from the end of that
    revert on. Injecting and reverting belong to no window. Bounds are timeline seconds; None
    is open."""
    if window not in WINDOWS:
        raise ConfigError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
    if window == "all":
        return None, None
    if window == "baseline":
        return None, timeline.first_injection()
    fw = timeline.fault_window()
    if fw is None:
        if timeline.first_injection() is None:
            raise ConfigError(f"the {window!r} window needs a fault on the timeline, and none was injected")
        raise ConfigError(f"the {window!r} window opens once a fault is verified in effect; none is yet")
    start, end = fw
    if window == "during":
        return start, end
    done = timeline.last_revert_done()
    if done is None:
        raise ConfigError("the 'recovery' window starts when the fault is reverted; it is still in force")
    return done, None


def _fmt_span(span: Interval) -> str:
    start, end = span
    a = "start" if start is None else f"{start:.2f}s"
    b = "now" if end is None else f"{end:.2f}s"
    return f"{a}–{b}"


Interval = tuple[float | None, float | None]
# a check judged before the first fault is a precondition (the platform was healthy enough
# to test); one judged after it is part of the hypothesis
Stage = Literal["precondition", "hypothesis"]


@dataclass(frozen=True)
class Finding:
    name: str
    window: str
    span: Interval
    measured: float | None
    op: str
    bound: float
    unit: str
    passed: bool
    detail: dict[str, Any] = field(default_factory=dict)
    stage: Stage = "hypothesis"
    # False while a sample invoked before the point this finding rests on is still
    # outstanding: it may yet fail and move the answer
    settled: bool = True

    @property
    def label(self) -> str:
        """The check's name and window, e.g. "writes time to recover [during]": how summaries,
        negative controls and the coverage report name a check."""
        return f"{self.name} [{self.window}]"

    def line(self) -> str:
        got = "no value" if self.measured is None else f"{self.measured:.4g}{self.unit}"
        rel = self.op if self.passed else _NEGATED[self.op]
        extra = "; ".join(f"{k}={v}" for k, v in self.detail.items())
        verdict = "ok" if self.passed else "VIOLATED"
        where = f"{self.window}, t={_fmt_span(self.span)}"
        s = f"[{verdict}] {self.name} ({where}): {got} {rel} {self.bound:g}{self.unit}"
        return f"{s} ({extra})" if extra else s

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "stage": self.stage,
            "name": self.name,
            "window": self.window,
            "span": list(self.span),
            "measured": self.measured,
            "op": self.op,
            "bound": self.bound,
            "unit": self.unit,
            "passed": self.passed,
            "detail": self.detail,
        }


class Computed(NamedTuple):
    """What a measure computes: its value (None: no value, which never passes), the facts
    behind it, the time span it covers, and whether it may still change because a sample it
    rests on is outstanding."""

    value: float | None
    detail: dict[str, Any]
    span: Interval
    settled: bool = True


Compute = Callable[[], Computed]


class Measure:
    """A named quantity computed on demand; compare it to a bound to make a ``Check``."""

    __hash__ = None  # type: ignore[assignment]  # == builds a Check, so no hashing

    def __init__(
        self,
        name: str,
        window: str,
        compute: Compute,
        unit: str = "",
        settle_until: Callable[[], float | None] | None = None,
    ) -> None:
        self.name = name
        self.window = window
        self.unit = unit
        self.compute = compute
        self.settle_until = settle_until

    def _check(self, op: str, bound: float) -> Check:
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or math.isnan(bound):
            raise ConfigError(f"{self.name}: bound must be a number, got {bound!r}")
        return Check(self, op, float(bound))

    def __ge__(self, bound: float) -> Check:
        return self._check(">=", bound)

    def __le__(self, bound: float) -> Check:
        return self._check("<=", bound)

    def __gt__(self, bound: float) -> Check:
        return self._check(">", bound)

    def __lt__(self, bound: float) -> Check:
        return self._check("<", bound)

    def __eq__(self, bound: object) -> Check:  # type: ignore[override]
        if not isinstance(bound, (int, float)):
            return NotImplemented
        return self._check("==", bound)

    def value(self) -> float | None:
        return self.compute()[0]

    def __repr__(self) -> str:
        return f"<Measure {self.name} ({self.window})>"


@dataclass(frozen=True)
class Check:
    measure: Measure
    op: str
    bound: float

    def evaluate(self) -> Finding:
        measured, detail, span, settled = self.measure.compute()
        passed = measured is not None and _OPS[self.op](measured, self.bound)
        return Finding(
            self.measure.name,
            self.measure.window,
            span,
            measured,
            self.op,
            self.bound,
            self.measure.unit,
            passed,
            detail,
            settled=settled,
        )

    def __bool__(self) -> bool:
        # `assert writes.lost() == 0` would otherwise always pass: make misuse loud.
        raise TypeError("a Check is evaluated by steady.expect(...), not by bool()/assert")


# ---- statistics over samples -------------------------------------------------------------


def availability(samples: Sequence[Sample]) -> float | None:
    if not samples:
        return None
    return sum(1 for s in samples if s.ok) / len(samples)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    if not values:
        return None
    if not 0 < p <= 100:
        raise ConfigError(f"percentile must be in (0, 100], got {p!r}")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def samples_needed(p: float) -> int:
    """How many samples a p-th percentile needs before it says more than "the slowest one":
    with fewer than 100 samples a nearest-rank p99 is simply the maximum, so one stray slow
    sample would decide the verdict."""
    if p >= 100:
        return 1
    return math.ceil(100 / (100 - p) - 1e-9)


def require_samples(name: str, window: str, p: float, have: int) -> None:
    """Refuse, as the experiment's mistake, a percentile over too few samples."""
    need = samples_needed(p)
    if have < need:
        raise ConfigError(
            f"{name} ({window}): {have} samples are too few for a p{p:g} (it needs at least {need}); "
            "sample faster (hz=...) or observe the window longer, or judge a lower percentile"
        )


def recovery_point(samples: Sequence[Sample], start: float, consecutive: int) -> float | None:
    """The time of the first sample at or after ``start`` from which ``consecutive`` samples
    in a row are good; None if that never happens."""
    run = recovery_run(samples, start, consecutive)
    return None if run is None else run[0]


def recovery_run(samples: Sequence[Sample], start: float, consecutive: int) -> tuple[float, float] | None:
    """The first and last sample times of the first run of ``consecutive`` good samples at or
    after ``start``; None if there is none."""
    if consecutive < 1:
        raise ConfigError(f"consecutive must be >= 1, got {consecutive!r}")
    run = 0
    first: float | None = None
    for s in samples:
        if s.t < start:
            continue
        if s.ok:
            if run == 0:
                first = s.t
            run += 1
            if run >= consecutive:
                assert first is not None
                return first, s.t
        else:
            run = 0
    return None
