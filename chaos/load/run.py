"""A running load, whatever runs it: its per-second points on the timeline, its final stats,
its measures (availability, failed requests, latency, requests/s) and its evidence.

Engines (a Locust process here: ``chaos.load.local``; Locust pods on a cluster:
``chaos.kube.locust``) subclass ``LoadRun`` and supply how to start, stop, poll and wait. A
run is a context manager: leaving it always stops the load."""

from __future__ import annotations

import io
import threading
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Protocol, Self

from chaos.context import RunContext
from chaos.errors import ConfigError
from chaos.load.spec import PERCENTILES, STATS_INTERVAL, FinalStats, LoadPoint, LoadSpec
from chaos.probes import Sample, Series
from chaos.slo import Computed, Measure, require_samples


class LoadRun(ABC):
    """One load: ``with engine(ctx, spec, name) as run: ...``."""

    def __init__(self, ctx: RunContext, spec: LoadSpec, name: str = "load") -> None:
        self.ctx = ctx
        self.spec = spec
        self.name = name
        self.series = Series(name, hz=1 / STATS_INTERVAL)
        self.points: list[LoadPoint] = []
        self.final: FinalStats | None = None
        self._stop_tail = threading.Event()
        self._tail: threading.Thread | None = None

    # -- what an engine supplies ------------------------------------------------------------------
    @abstractmethod
    def start(self) -> None:
        """Validate the spec and start the load (in a dry run: say what would run, start nothing)."""

    @abstractmethod
    def stop(self, *, quiet: bool = False) -> None:
        """Stop the load and read its last figures. Raises LoadError if it had died on its own,
        unless ``quiet`` (an exception is already on its way, or ending early is the point)."""

    @property
    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    def wait(self) -> None:
        """Block until the load has run its duration and stopped by itself."""

    @abstractmethod
    def _poll(self) -> bool:
        """Read the engine's newest stats into ``add_point``/``final``; True if there were any."""

    # -- the shared part ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(quiet=exc_type is not None)

    def _dry_run(self, what: str) -> bool:
        """In a dry run, note what would have run and return True: nothing may be started."""
        if self.ctx.dry_run:
            self.ctx.tl.note("dry-run", load=what)
        return self.ctx.dry_run

    def _started(self, **facts: Any) -> None:
        """The load's series joins the timeline, and its start is on record with ``facts``."""
        s = self.spec
        self.ctx.tl.attach(self.series)
        self.ctx.tl.record(
            "load.start", self.name, users=s.users, shape=s.shape, duration=s.duration, **facts
        )

    def _ended(self) -> None:
        self.ctx.tl.record("load.end", self.name, requests=self.requests(), failures=self.failures())

    def _start_tail(self) -> None:
        def loop() -> None:
            while not self._stop_tail.wait(STATS_INTERVAL):
                self._poll()

        self._tail = threading.Thread(target=loop, name=f"load:{self.name}", daemon=True)
        self._tail.start()

    def _join_tail(self) -> None:
        self._stop_tail.set()
        if self._tail is not None:
            self._tail.join(5)

    def add_point(self, point: LoadPoint, latency_ms: float | None) -> None:
        """One second of stats: kept, and a sample on the timeline (good when nothing failed)."""
        self.points.append(point)
        self.series.append(Sample(point.t, point.fail_rps == 0, (latency_ms or 0) / 1000, point))

    def requests(self) -> int:
        if self.final:
            return self.final.requests
        return self.points[-1].requests if self.points else 0

    def failures(self) -> int:
        if self.final:
            return self.final.failures
        return self.points[-1].failures if self.points else 0

    # -- measures -------------------------------------------------------------------------------
    def availability(self) -> Measure:
        """Share of requests that succeeded over the whole run."""

        def compute() -> Computed:
            n, f = self.requests(), self.failures()
            return Computed(((n - f) / n if n else None), {"requests": n, "failures": f}, (None, None))

        return Measure(f"{self.name} availability", "all", compute)

    def failed(self) -> Measure:
        """How many requests failed over the whole run."""

        def compute() -> Computed:
            return Computed(float(self.failures()), {"requests": self.requests()}, (None, None))

        return Measure(f"{self.name} failed requests", "all", compute)

    def latency(self, p: float = 99) -> Measure:
        """A response-time percentile over the whole run, in ms (Locust's own histogram)."""
        if p not in PERCENTILES:
            raise ConfigError(
                f"Locust reports percentiles {', '.join(f'{x:g}' for x in PERCENTILES)}; not {p!r}"
            )
        name = f"{self.name} p{p:g} latency"

        def compute() -> Computed:
            require_samples(name, "all", p, self.requests())
            value = self.final.percentiles_ms.get(p) if self.final else None
            return Computed(value, {"requests": self.requests()}, (None, None))

        return Measure(name, "all", compute, unit=" ms")

    def rps(self) -> Measure:
        """Mean requests per second over the whole run."""

        def compute() -> Computed:
            value = self.final.rps if self.final else None
            return Computed(value, {"requests": self.requests()}, (None, None))

        return Measure(f"{self.name} requests/s", "all", compute)

    def evidence(self) -> dict[str, Any]:
        """The run's figures for the report: what it asked for and what it measured."""
        final = self.final
        return {
            "requests": self.requests(),
            "failures": self.failures(),
            "rps": final.rps if final else None,
            # Locust's own figure, whatever the sample count: evidence, not a verdict
            "p99_ms": final.percentiles_ms.get(99) if final else None,
            "users": self.spec.users,
            "shape": self.spec.shape,
        }

    def stats_csv(self) -> str:
        out = io.StringIO()
        out.write("t,users,rps,fail_rps,p50_ms,p95_ms,p99_ms,requests,failures\n")
        for p in self.points:
            out.write(
                f"{p.t:.3f},{p.users},{p.rps:.2f},{p.fail_rps:.2f},{p.p50_ms},{p.p95_ms},{p.p99_ms},"
                f"{p.requests},{p.failures}\n"
            )
        return out.getvalue()


class LoadEngine(Protocol):
    """What runs a load: ``chaos.load.Load`` (a Locust process here) or the Locust pods of
    ``chaos.kube.locust.KubeLoad``, as the platform's ``load_engine()`` says."""

    def __call__(self, ctx: RunContext, spec: LoadSpec, name: str) -> LoadRun: ...
