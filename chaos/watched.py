"""Measures over one probe's series (``steady.http(...)``, ``steady.durability(...)`` and
``steady.watch(...)`` return one): availability, downtime, latency and values in a window;
time to recover and to notice, bound to the fault that was in force when the check was made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaos.errors import ConfigError
from chaos.probes import Sample, Series
from chaos.slo import (
    WINDOWS,
    Check,
    Computed,
    Interval,
    Measure,
    Window,
    availability,
    percentile,
    recovery_run,
    require_samples,
    samples_needed,
    window_bounds,
)
from chaos.timeline import Span, Timeline

_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "max": max,
    "min": min,
    "last": lambda v: v[-1],
    "mean": lambda v: sum(v) / len(v),
}


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
            if where is not None and (seen := readings(samples)):
                # what the condition was asked of: "never" alone cannot be reviewed
                detail["seen"] = seen
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


def readings(samples: list[Sample], most: int = 8) -> str:
    """The numbers a watch read, in order, each run of equal readings once ("1 → 2 → 3"),
    the first and last few when they changed more often; empty when none is a number."""
    values: list[str] = []
    for s in samples:
        shown = s.reading() if s.ok else ""
        if shown and (not values or values[-1] != shown):
            values.append(shown)
    if len(values) > most:
        values = [*values[: most // 2], "…", *values[-(most // 2 - 1) :]]
    return " → ".join(values)
