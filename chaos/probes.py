"""Background samplers: each probe calls its sampler at a fixed rate on its own thread and
records timestamped samples. A sampler that raises or times out yields a failed sample; it
never crashes the probe or blocks the experiment.

Every sample has a deadline (the probe's timeout). A sample that answers after it failed; one
still outstanding past it is read as a failure at the moment it was invoked, so a request
that hangs can never be mistaken for a healthy one while a window is judged."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chaos.errors import ConfigError, NotSupported, ObservationError
from chaos.timeline import Timeline

MAX_HZ = 100.0
DEFAULT_HZ = 20.0
DEFAULT_DEADLINE = 3.0  # seconds a sampler may take unless its probe says otherwise


@dataclass(frozen=True)
class Sample:
    t: float  # seconds on the timeline's clock when the call was made
    ok: bool
    latency: float  # seconds the call took
    value: Any = None
    error: str | None = None

    def reading(self) -> str:
        """The value as a number a person may read in a report ("3", "0.25"; a flag as 0/1),
        or "" for anything else: a response body or a string may carry a credential, which
        no report file may."""
        if isinstance(self.value, bool):
            return str(int(self.value))
        if isinstance(self.value, float):
            return f"{self.value:g}"
        if isinstance(self.value, int):
            return str(self.value)
        return ""


class Series:
    """The samples of one probe, append-only and safe to read while the probe runs.

    A probe registers each sample when it invokes it (``begin``) and hands in the result when
    it answers (``finish``); reads see a sample outstanding past ``deadline`` as a failure
    at its invocation time."""

    def __init__(
        self,
        name: str,
        hz: float | None = None,
        *,
        deadline: float | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self.hz = hz  # the probe's sampling rate, when the series comes from a probe
        self.deadline = deadline
        self._now = now
        self._samples: list[Sample] = []
        self._inflight: dict[int, float] = {}  # token -> invocation time
        self._tokens = itertools.count()
        self._lock = threading.Lock()

    def append(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def begin(self, t: float) -> int:
        """A sample invoked at ``t`` is outstanding until ``finish``."""
        with self._lock:
            token = next(self._tokens)
            self._inflight[token] = t
        return token

    def finish(self, token: int, sample: Sample) -> None:
        with self._lock:
            self._inflight.pop(token, None)
            self._samples.append(sample)

    def _overdue(self) -> list[Sample]:
        """Outstanding samples past their deadline, as failures at their invocation time."""
        if self.deadline is None or self._now is None or not self._inflight:
            return []
        now = self._now()
        return [
            Sample(t, False, now - t, None, f"no answer within {self.deadline:g} s (still outstanding)")
            for t in self._inflight.values()
            if now - t >= self.deadline
        ]

    def pending(self, before: float | None = None, since: float | None = None) -> list[float]:
        """Invocation times of samples still outstanding and not yet past their deadline
        (their outcome is unknown), invoked in [since, before)."""
        with self._lock:
            times = list(self._inflight.values())
        now = self._now() if self._now is not None and times else None

        def unknown(t: float) -> bool:
            return self.deadline is None or now is None or now - t < self.deadline

        return sorted(
            t
            for t in times
            if unknown(t) and (before is None or t < before) and (since is None or t >= since)
        )

    def samples(self, start: float | None = None, end: float | None = None) -> list[Sample]:
        """Samples in [start, end), in the order they were invoked (workers finish out of
        order), outstanding ones past their deadline included as failures."""
        with self._lock:
            data = self._samples + self._overdue()
        data.sort(key=lambda x: x.t)
        return [s for s in data if (start is None or s.t >= start) and (end is None or s.t < end)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples())


Sampler = Callable[[], Any]


class Probe:
    """Calls ``sampler`` ``hz`` times a second until stopped, whatever the target does.

    Ticks sit on a fixed grid from the start and each sample runs on a worker of its own, so
    a target that hangs does not slow the probe down: a hung call is one slow sample, and
    the samples after it keep coming (no coordinated omission, which would hide an outage
    behind a handful of timeouts). If ``max_in_flight`` samples are all still waiting, the
    tick is recorded as a failed sample rather than skipped.
    """

    def __init__(
        self,
        name: str,
        sampler: Sampler,
        timeline: Timeline,
        hz: float = DEFAULT_HZ,
        *,
        max_in_flight: int | None = None,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        if not 0 < hz <= MAX_HZ:
            raise ConfigError(f"probe {name!r}: rate {hz!r} Hz is out of range; use 0 < hz <= {MAX_HZ:g}")
        if not deadline > 0:
            raise ConfigError(f"probe {name!r}: deadline {deadline!r} s must be greater than 0")
        self.name = name
        self.hz = hz
        self.deadline = deadline
        self.sampler = sampler
        self.timeline = timeline
        self.series = Series(name, hz, deadline=deadline, now=timeline.now)
        # enough workers to keep the rate through a 2 s hang, without a thread per tick
        self.max_in_flight = max_in_flight or max(4, min(64, int(hz * 2)))
        timeline.attach(self.series)
        self._slots = threading.BoundedSemaphore(self.max_in_flight)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unsupported: NotSupported | None = None  # the experiment skips when it judges
        self.unobservable: ObservationError | None = None  # its verdict is an infrastructure error

    def sample_once(self) -> Sample:
        tl = self.timeline
        t0 = tl.now()
        token = self.series.begin(t0)
        try:
            value = self.sampler()
        except Exception as exc:  # noqa: BLE001  a failing target is an observation, not a crash
            if isinstance(exc, NotSupported):  # the platform cannot give this at all: not an outage
                self.unsupported = exc
            if isinstance(exc, ObservationError):  # we could not look: not evidence of an outage
                self.unobservable = exc
            sample = Sample(t0, False, tl.now() - t0, None, f"{type(exc).__name__}: {exc}")
        else:
            took = tl.now() - t0
            if took > self.deadline:  # an answer that came too late is not a good sample
                error = f"late: answered after {took:.2f} s (deadline {self.deadline:g} s)"
                sample = Sample(t0, False, took, value, error)
            else:
                sample = Sample(t0, True, took, value)
        self.series.finish(token, sample)
        return sample

    def _sample_in_slot(self) -> None:
        try:
            self.sample_once()
        finally:
            self._slots.release()

    def _run(self) -> None:
        period = 1.0 / self.hz
        start = self.timeline.now()
        tick = 0
        with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix=f"probe:{self.name}") as pool:
            while not self._stop.is_set():
                if self._slots.acquire(blocking=False):
                    pool.submit(self._sample_in_slot)
                else:
                    self.series.append(
                        Sample(
                            self.timeline.now(),
                            False,
                            0.0,
                            None,
                            f"probe saturated: {self.max_in_flight} samples still waiting",
                        )
                    )
                elapsed = self.timeline.now() - start
                # if this thread itself was descheduled, resume on the grid rather than burst
                tick = max(tick + 1, int(elapsed / period) + 1)
                # Event.wait is the probe's metronome, not a wait for a condition: stop() ends it.
                self._stop.wait(max(0.0, start + tick * period - self.timeline.now()))

    def start(self) -> Probe:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"probe:{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop ticking and wait for samples still in flight (each bounded by its own timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
