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
from chaos.probes import Sample, Series
from chaos.timeline import Span, Timeline

Window = Literal["all", "baseline", "during", "recovery"]
WINDOWS: tuple[str, ...] = ("all", "baseline", "during", "recovery")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "max": max,
    "min": min,
    "last": lambda v: v[-1],
    "mean": lambda v: sum(v) / len(v),
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


class Watched:
    """Measures over one probe's series, windows taken from the timeline.

    Every measure sees a sample still outstanding past its probe's deadline as a failure at
    the time it was invoked (unknown is not success); eventual checks (``recovers``,
    ``notices``) settle only when no sample invoked before the point they rest on is still
    outstanding."""

    def __init__(self, series: Series, timeline: Timeline, consecutive: int = 5) -> None:
        self.series = series
        self.timeline = timeline
        self.consecutive = consecutive

    @property
    def name(self) -> str:
        return self.series.name

    def _window(self, window: str) -> tuple[list[Sample], Interval]:
        """The samples invoked in ``window``, less the successes answered after it closed: a
        write the fault held up and acknowledged once the revert had restored quorum reports
        on the recovery, not on the fault (it once read as 15% availability of a store with no
        quorum). A failure stays charged to the window its call was made in."""
        start, end = window_bounds(self.timeline, window)
        samples = self.series.samples(start, end)
        if end is not None:
            samples = [s for s in samples if not (s.ok and s.t + s.latency > end)]
        return samples, (start, end)

    def availability(self, window: Window = "all") -> Measure:
        _validate_window(window)

        def compute() -> Computed:
            samples, span = self._window(window)
            ok = sum(1 for s in samples if s.ok)
            return Computed(availability(samples), {"ok": ok, "samples": len(samples)}, span)

        return Measure(f"{self.name} availability", window, compute)

    def downtime(self, window: Window = "all") -> Measure:
        """Seconds of failed samples in ``window``: failed samples times the sampling period.
        Meaningful because probes keep their rate while the target hangs."""
        _validate_window(window)
        hz = _series_hz(self)

        def compute() -> Computed:
            samples, span = self._window(window)
            failed = sum(1 for s in samples if not s.ok)
            return Computed(failed / hz, {"failed": failed, "samples": len(samples), "hz": hz}, span)

        return Measure(f"{self.name} downtime", window, compute, unit=" s")

    def value(self, agg: str = "max", window: Window = "all") -> Measure:
        """An aggregate (max, min, last, mean) of the values good samples returned, e.g. the
        breaker state a PromQL probe read."""
        _validate_window(window)
        if agg not in _AGGREGATES:
            raise ConfigError(f"unknown aggregate {agg!r}; use one of {', '.join(_AGGREGATES)}")

        def compute() -> Computed:
            samples, span = self._window(window)
            values = [float(s.value) for s in samples if s.ok and isinstance(s.value, (int, float))]
            return Computed((_AGGREGATES[agg](values) if values else None), {"values": len(values)}, span)

        return Measure(f"{self.name} {agg}", window, compute)

    def latency(self, p: float = 99, window: Window = "all") -> Measure:
        """The p-th percentile latency of the good samples in ``window``, in ms. The window
        must hold enough samples for the percentile (p99: 100) or the check is refused as a
        usage error; with enough samples but too few of them good, it has no value (and fails)."""
        _validate_window(window)
        percentile([1.0], p)  # validate now, not at evaluation
        need = samples_needed(p)
        name = f"{self.name} p{p:g} latency"

        def compute() -> Computed:
            samples, span = self._window(window)
            require_samples(name, window, p, len(samples))
            good = [s.latency for s in samples if s.ok]
            v = percentile(good, p) if len(good) >= need else None
            return Computed((None if v is None else v * 1000), {"ok_samples": len(good)}, span)

        return Measure(name, window, compute, unit=" ms")

    def _last_fault_start(self) -> float | None:
        fault = self._fault(self.timeline.now())
        return None if fault is None else fault.start

    def _fault(self, made_at: float) -> Span | None:
        """The fault a check made at ``made_at`` is about: the latest one injected by then
        (or, for a check made before any fault, the latest one when it is judged)."""
        faults = self.timeline.spans("fault")
        started = [f for f in faults if f.start <= made_at]
        chosen = started or faults
        return chosen[-1] if chosen else None

    def _after(self, after: str, made_at: float) -> tuple[float, float | None] | None:
        """The samples a recovery or detection measure reads: from the fault's injection to
        its revert (``after="start"``: bounded, so a check judged later gives the answer it
        gave while its fault was in force), or from the start of its revert on (``after="end"``:
        a slow revert, such as a restart, is part of the time to recover)."""
        fault = self._fault(made_at)
        if fault is None:
            return None
        if after == "start":
            return fault.start, fault.reverting if fault.reverting is not None else fault.end
        reverting = fault.reverting if fault.reverting is not None else fault.end
        # open: recovered "for good" after a revert includes whatever came after it
        return None if reverting is None else (reverting, None)

    def recovery_time(
        self, *, after: str = "start", where: Callable[[Any], bool] | None = None, label: str | None = None
    ) -> Measure:
        """Seconds from the latest fault's injection (``after="start"``) or revert
        (``after="end"``) until the first of ``consecutive`` good samples in a row after the
        last bad one seen. With
        ``where``, a sample is good only if it succeeded and ``where(value)`` holds (e.g. the
        answer came from cluster west). 0 if the probe never noticed the fault."""
        if after not in ("start", "end"):
            raise ConfigError(f"after={after!r}: use 'start' (injection) or 'end' (revert)")

        made_at = self.timeline.now()

        def good(s: Sample) -> bool:
            return s.ok and (where is None or bool(where(s.value)))

        def compute() -> Computed:
            bounds = self._after(after, made_at)
            if bounds is None:
                raise ConfigError(
                    f"{self.name}: recovery time needs a fault on the timeline (and its revert)"
                )
            start, end = bounds
            samples = self.series.samples(start, end)
            marked = [Sample(s.t, good(s), s.latency, s.value, s.error) for s in samples]
            # recovered for good: the good run after the *last* bad sample, so a fault whose
            # effect shows late (a disk the service writes to only now and then) is not
            # reported as recovered before it ever bit
            last_bad = max((s.t for s in marked if not s.ok), default=None)
            after_last = marked if last_bad is None else [s for s in marked if s.t > last_bad]
            run = recovery_run(after_last, start, self.consecutive)
            failed = sum(1 for s in marked if not s.ok)
            detail: dict[str, Any] = {"not_good_since": failed, "consecutive": self.consecutive}
            if run is None:
                detail["recovered"] = False
                return Computed(None, detail, (start, end))
            # a sample invoked before the good run ended may still fail and move the point
            outstanding = len(self.series.pending(before=run[1]))
            if outstanding:
                detail["outstanding"] = outstanding
            return Computed(run[0] - start, detail, (start, end), settled=not outstanding)

        if label is None:
            label = "time to recover" if where is None else "time until the condition holds"
            label += "" if after == "start" else " after revert"
        window = "during" if after == "start" else "recovery"
        return Measure(f"{self.name} {label}", window, compute, unit=" s")

    def recovers(
        self,
        within: float,
        *,
        after: str = "start",
        where: Callable[[Any], bool] | None = None,
        label: str | None = None,
    ) -> Check:
        """Good again (or ``where`` holds) within ``within`` seconds of the latest fault's
        injection or revert; ``steady.expect`` waits for it."""
        if within <= 0:
            raise ConfigError(f"recovers(within=...) must be > 0 seconds, got {within!r}")
        made_at = self.timeline.now()
        measure = self.recovery_time(after=after, where=where, label=label)
        hz = _series_hz(self)

        def deadline() -> float | None:
            bounds = self._after(after, made_at)
            # the recovery point must lie within the bound; confirming it takes N more samples
            return None if bounds is None else bounds[0] + within + self.consecutive / hz + 0.5

        measure.settle_until = deadline
        return measure <= within

    def detection_time(self, *, where: Callable[[str], bool] | None = None, label: str = "") -> Measure:
        """Seconds from the latest fault's injection to the first failed sample (whose error
        satisfies ``where``, e.g. ``lambda e: "503" in e``): how long the fault took to show.
        No value when it never showed."""

        made_at = self.timeline.now()

        def compute() -> Computed:
            bounds = self._after("start", made_at)
            if bounds is None:
                raise ConfigError(f"{self.name}: detection time needs a fault on the timeline")
            start, end = bounds
            hit = next(
                (
                    s
                    for s in self.series.samples(start, end)
                    if not s.ok and (where is None or where(s.error or ""))
                ),
                None,
            )
            detail: dict[str, Any] = {"noticed": hit is not None}
            if hit is None:
                return Computed(None, detail, (start, end))
            detail["error"] = hit.error
            # an earlier sample still outstanding may show the fault earlier
            outstanding = len(self.series.pending(before=hit.t, since=start))
            if outstanding:
                detail["outstanding"] = outstanding
            return Computed(hit.t - start, detail, (start, end), settled=not outstanding)

        return Measure(f"{self.name} time until {label or 'the fault shows'}", "during", compute, unit=" s")

    def notices(self, within: float, *, where: Callable[[str], bool] | None = None, label: str = "") -> Check:
        """The fault shows in this probe (a failed sample, matching ``where``) within
        ``within`` seconds of its injection; ``steady.expect`` waits for it."""
        if within <= 0:
            raise ConfigError(f"notices(within=...) must be > 0 seconds, got {within!r}")
        made_at = self.timeline.now()
        measure = self.detection_time(where=where, label=label)

        def deadline() -> float | None:
            bounds = self._after("start", made_at)
            return None if bounds is None else bounds[0] + within + 0.5

        measure.settle_until = deadline
        return measure <= within

    def error_rate(self, over: float) -> Measure:
        """Share of failed samples in the last ``over`` seconds (when evaluated): for stop
        conditions, "error rate above X for Y seconds" is ``error_rate(over=Y) <= X``."""
        if over <= 0:
            raise ConfigError(f"error_rate(over=...) must be > 0 seconds, got {over!r}")

        def compute() -> Computed:
            now = self.timeline.now()
            samples = self.series.samples(now - over)
            failed = sum(1 for s in samples if not s.ok)
            detail = {"failed": failed, "samples": len(samples)}
            return Computed((failed / len(samples) if samples else None), detail, (now - over, now))

        return Measure(f"{self.name} error rate", f"last {over:g} s", compute)

    def failures(self, window: Window = "all") -> Measure:
        """How many samples in ``window`` failed."""
        _validate_window(window)

        def compute() -> Computed:
            samples, span = self._window(window)
            return Computed(float(sum(1 for s in samples if not s.ok)), {"samples": len(samples)}, span)

        return Measure(f"{self.name} failed samples", window, compute)

    def share(self, where: Callable[[Any], bool], window: Window = "all", label: str = "matching") -> Measure:
        """Share of samples in ``window`` that succeeded and whose value satisfies ``where``."""
        _validate_window(window)

        def compute() -> Computed:
            samples, span = self._window(window)
            hits = sum(1 for s in samples if s.ok and where(s.value))
            return Computed(
                (hits / len(samples) if samples else None), {label: hits, "samples": len(samples)}, span
            )

        return Measure(f"{self.name} share {label}", window, compute)


def _series_hz(w: Watched) -> float:
    return w.series.hz or 20.0


def _validate_window(window: str) -> None:
    if window not in WINDOWS:
        raise ConfigError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
