"""Background samplers: each probe calls its sampler at a fixed rate on its own thread and
records timestamped samples. A sampler that raises or times out yields a failed sample; it
never crashes the probe or blocks the experiment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chaos.errors import ConfigError, NotSupported
from chaos.timeline import Timeline

MAX_HZ = 100.0
DEFAULT_HZ = 20.0


@dataclass(frozen=True)
class Sample:
    t: float  # seconds on the timeline's clock when the call was made
    ok: bool
    latency: float  # seconds the call took
    value: Any = None
    error: str | None = None


class Series:
    """The samples of one probe, append-only and safe to read while the probe runs."""

    def __init__(self, name: str, hz: float | None = None) -> None:
        self.name = name
        self.hz = hz  # the probe's sampling rate, when the series comes from a probe
        self._samples: list[Sample] = []
        self._lock = threading.Lock()

    def append(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def samples(self, start: float | None = None, end: float | None = None) -> list[Sample]:
        """Samples in [start, end), in the order they were taken (workers finish out of order)."""
        with self._lock:
            data = sorted(self._samples, key=lambda x: x.t)
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
    ) -> None:
        if not 0 < hz <= MAX_HZ:
            raise ConfigError(f"probe {name!r}: rate {hz!r} Hz is out of range; use 0 < hz <= {MAX_HZ:g}")
        self.name = name
        self.hz = hz
        self.sampler = sampler
        self.timeline = timeline
        self.series = Series(name, hz)
        # enough workers to keep the rate through a 2 s hang, without a thread per tick
        self.max_in_flight = max_in_flight or max(4, min(64, int(hz * 2)))
        timeline.attach(self.series)
        self._slots = threading.BoundedSemaphore(self.max_in_flight)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unsupported: NotSupported | None = None  # the experiment skips when it judges

    def sample_once(self) -> Sample:
        tl = self.timeline
        t0 = tl.now()
        try:
            value = self.sampler()
        except Exception as exc:  # noqa: BLE001  a failing target is an observation, not a crash
            if isinstance(exc, NotSupported):  # the platform cannot give this at all: not an outage
                self.unsupported = exc
            sample = Sample(t0, False, tl.now() - t0, None, f"{type(exc).__name__}: {exc}")
        else:
            sample = Sample(t0, True, tl.now() - t0, value)
        self.series.append(sample)
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
