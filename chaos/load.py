"""The load engine: Locust as a bounded, self-stopping subprocess, with live stats.

Locust is never imported here: it monkey-patches the whole process with gevent. It runs as
``python -m locust --headless`` (with ``--processes`` for several workers) with a load shape
from ``loadtests/shapes/``; its per-second stats history is tailed into the timeline while it
runs. ``Load`` is a context manager: leaving it always stops the load. If our process dies,
locust still stops by itself at ``--run-time``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from chaos.context import RunContext
from chaos.errors import ChaosError, ConfigError, FaultNotInEffect
from chaos.fault import Fault
from chaos.probes import Sample, Series
from chaos.slo import Computed, Measure, require_samples
from chaos.wait import WaitAborted, WaitTimeout, wait_until

SHAPES_DIR = Path(__file__).resolve().parent.parent / "loadtests" / "shapes"
SHAPES = ("steady", "step", "spike")
MAX_USERS = 500
MAX_USER_RPS = 50.0
MAX_DURATION = 600.0
MAX_WORKERS = 8
STATS_INTERVAL = 0.5  # how often the history file is read back


class LoadError(ChaosError):
    """Locust could not start, or died while running; says which locustfile and why."""


@dataclass(frozen=True)
class LoadSpec:
    locustfile: Path
    host: str
    users: int = 10
    duration: float = 30.0
    shape: str = "steady"
    user_rps: float = 2.0
    spawn_rate: float | None = None
    workers: int = 1
    shape_env: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        problems: list[str] = []
        if not self.locustfile.is_file():
            problems.append(f"locustfile {self.locustfile} does not exist; locustfiles live in loadtests/")
        if self.shape not in SHAPES:
            problems.append(f"unknown load shape {self.shape!r}; use one of {', '.join(SHAPES)}")
        if not (isinstance(self.users, int) and 0 < self.users <= MAX_USERS):
            problems.append(f"users={self.users!r}: use a whole number from 1 to {MAX_USERS}")
        if not 0 < self.duration <= MAX_DURATION:
            problems.append(
                f"duration={self.duration!r}: use more than 0 and at most {MAX_DURATION:g} seconds"
            )
        if not 0 < self.user_rps <= MAX_USER_RPS:
            problems.append(f"user_rps={self.user_rps!r}: use more than 0 and at most {MAX_USER_RPS:g}")
        if self.spawn_rate is not None and self.spawn_rate <= 0:
            problems.append(f"spawn_rate={self.spawn_rate!r}: must be greater than 0")
        if not 1 <= self.workers <= MAX_WORKERS:
            problems.append(f"workers={self.workers!r}: use 1 to {MAX_WORKERS} processes")
        if not self.host.startswith(("http://", "https://")):
            problems.append(f"host={self.host!r}: give a URL such as http://198.18.0.20")
        if problems:
            raise ConfigError(problems)
        try:
            compile(self.locustfile.read_text(), str(self.locustfile), "exec")
        except SyntaxError as exc:
            raise ConfigError(
                f"locustfile {self.locustfile} does not parse: line {exc.lineno}: {exc.msg}; fix it and rerun"
            ) from exc


@dataclass(frozen=True)
class LoadPoint:
    """One second of Locust's stats (aggregated over every request type)."""

    t: float
    users: int
    rps: float
    fail_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests: int
    failures: int


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # Locust writes N/A before the first response


class Load:
    """A running load; use as ``with Load(ctx, spec) as run: ...``."""

    def __init__(self, ctx: RunContext, spec: LoadSpec, name: str = "load") -> None:
        self.ctx = ctx
        self.spec = spec
        self.name = name
        self.series = Series(name, hz=1 / STATS_INTERVAL)
        self.points: list[LoadPoint] = []
        self.final: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._stop = threading.Event()
        self._tail: threading.Thread | None = None
        self._lines_seen = 0
        self.returncode: int | None = None

    # -- paths ----------------------------------------------------------------------------------
    @property
    def _prefix(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name) / "stats"

    @property
    def _stderr_path(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name) / "locust.log"

    def _argv(self) -> list[str]:
        s = self.spec
        files = f"{s.locustfile},{SHAPES_DIR / (s.shape + '.py')}"
        argv = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            files,
            "--headless",
            *self._run_args(),
            "--csv",
            str(self._prefix),
            "--only-summary",
        ]
        if s.workers > 1:
            argv += ["--processes", str(s.workers)]
        return argv

    def _run_args(self) -> list[str]:
        """What every Locust run gets: target, a bounded run time, quiet logs, exit code 0 on
        failed requests (they are measurements, not errors)."""
        s = self.spec
        run_time = f"{int(s.duration + 0.999)}s"
        quiet = ["--loglevel", "WARNING", "--exit-code-on-error", "0"]
        return ["--host", s.host, "--run-time", run_time, "--stop-timeout", "2", *quiet]

    def _env(self) -> dict[str, str]:
        s = self.spec
        env = {
            **os.environ,
            "CHAOS_LOAD_USERS": str(s.users),
            "CHAOS_LOAD_DURATION": str(s.duration),
            "CHAOS_LOAD_USER_RPS": str(s.user_rps),
            **s.shape_env,
        }
        if s.spawn_rate:
            env["CHAOS_LOAD_SPAWN_RATE"] = str(s.spawn_rate)
        return env

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.spec.validate()
        if self.ctx.dry_run:  # a dry run sends no traffic: it says what it would have sent
            s = self.spec
            self.ctx.tl.note(
                "dry-run",
                load=f"would run Locust ({s.users} users x {s.user_rps:g} req/s, {s.shape}, "
                f"{s.duration:g} s) against {s.host}",
            )
            return self
        self._dir = tempfile.TemporaryDirectory(prefix="chaos-load-")
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        self._started(workers=self.spec.workers)
        try:
            wait_until(
                lambda: self._read_history() or self.points,
                timeout=30,
                interval=0.1,
                what=f"locust to report its first stats ({self.spec.locustfile})",
                abort=self._died_early,
            )
        except (WaitAborted, WaitTimeout) as exc:
            self._terminate()
            raise LoadError(f"{exc}; locust said: {self._stderr_tail()}") from exc
        self._tail = threading.Thread(target=self._tail_loop, name=f"load:{self.name}", daemon=True)
        self._tail.start()
        return self

    def _started(self, **facts: Any) -> None:
        """The load's series joins the timeline, and its start is on record with ``facts``."""
        s = self.spec
        self.ctx.tl.attach(self.series)
        self.ctx.tl.record(
            "load.start", self.name, users=s.users, shape=s.shape, duration=s.duration, **facts
        )

    def _died_early(self) -> str | None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is None:
            return None
        return f"locust exited with code {code} before reporting stats (locustfile {self.spec.locustfile})"

    def wait(self) -> None:
        """Block until the load has run its duration and locust has stopped by itself."""
        if self._proc is None:  # never started (a dry run)
            return
        try:
            self._proc.wait(timeout=self.spec.duration + 30)
        except subprocess.TimeoutExpired as exc:
            raise LoadError(f"locust did not stop {self.spec.duration:g} s into its run") from exc

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is None:  # never started (a dry run): nothing to stop or read
            return
        died = self._proc.poll() not in (None, 0)
        self._terminate()
        self._stop.set()
        if self._tail is not None:
            self._tail.join(5)
        self._read_history()
        self._read_final()
        self.ctx.tl.record("load.end", self.name, requests=self.requests(), failures=self.failures())
        said = self._stderr_tail()
        if self._dir is not None:
            self._dir.cleanup()
        if died and exc_type is None:
            raise LoadError(
                f"locust (locustfile {self.spec.locustfile}) died with code {self.returncode}: {said}"
            )

    def _terminate(self) -> None:
        """Stop locust and everything it forked: TERM lets it write its final stats."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # workers forked by --processes share the group; none may outlive the master
        _signal_group(proc.pid, signal.SIGKILL)
        self.returncode = proc.returncode

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- stats ----------------------------------------------------------------------------------
    def _tail_loop(self) -> None:
        while not self._stop.wait(STATS_INTERVAL):
            self._read_history()

    def _read_history(self) -> bool:
        path = Path(f"{self._prefix}_stats_history.csv")
        try:
            text = path.read_text()
        except FileNotFoundError:
            return False
        lines = text.splitlines()
        if len(lines) <= 1:
            return False
        header, rows = lines[0], lines[1 + self._lines_seen :]
        if rows and not text.endswith("\n"):
            rows = rows[:-1]  # the last line is still being written: take it next time
        fresh = False
        tl = self.ctx.tl
        for row in csv.DictReader(io.StringIO("\n".join([header, *rows]))):
            self._lines_seen += 1
            if row.get("Name") != "Aggregated":
                continue
            t = float(row["Timestamp"]) - tl.wall_origin
            point = LoadPoint(
                t,
                int(row["User Count"]),
                float(row["Requests/s"]),
                float(row["Failures/s"]),
                _num(row["50%"]),
                _num(row["95%"]),
                _num(row["99%"]),
                int(row["Total Request Count"]),
                int(row["Total Failure Count"]),
            )
            self.points.append(point)
            self.series.append(Sample(point.t, point.fail_rps == 0, (point.p99_ms or 0) / 1000, point))
            fresh = True
        return fresh

    def _read_final(self) -> None:
        try:
            text = Path(f"{self._prefix}_stats.csv").read_text()
        except (FileNotFoundError, TypeError):
            return
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("Name") == "Aggregated":
                self.final = dict(row)

    def _stderr_tail(self) -> str:
        try:
            lines = [ln for ln in self._stderr_path.read_text(errors="replace").splitlines() if ln.strip()]
        except (FileNotFoundError, AssertionError):
            return "(no output)"
        return " | ".join(lines[-4:]) or "(no output)"

    def requests(self) -> int:
        if self.final:
            return int(self.final["Request Count"])
        return self.points[-1].requests if self.points else 0

    def failures(self) -> int:
        if self.final:
            return int(self.final["Failure Count"])
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
        column = {
            50: "50%",
            66: "66%",
            75: "75%",
            80: "80%",
            90: "90%",
            95: "95%",
            98: "98%",
            99: "99%",
            99.9: "99.9%",
            100: "100%",
        }.get(p)
        if column is None:
            raise ConfigError(
                f"Locust reports percentiles 50, 66, 75, 80, 90, 95, 98, 99, 99.9, 100; not {p!r}"
            )

        name = f"{self.name} p{p:g} latency"

        def compute() -> Computed:
            require_samples(name, "all", p, self.requests())
            value = _num(self.final.get(column, "N/A")) if self.final else None
            return Computed(value, {"requests": self.requests()}, (None, None))

        return Measure(name, "all", compute, unit=" ms")

    def rps(self) -> Measure:
        """Mean requests per second over the whole run."""

        def compute() -> Computed:
            value = _num(self.final.get("Requests/s", "N/A")) if self.final else None
            return Computed(value, {"requests": self.requests()}, (None, None))

        return Measure(f"{self.name} requests/s", "all", compute)

    def evidence(self) -> dict[str, Any]:
        """The run's figures for the report: what it asked for and what it measured."""
        final = self.final
        return {
            "requests": self.requests(),
            "failures": self.failures(),
            "rps": _num(final.get("Requests/s", "N/A")) if final else None,
            # Locust's own figure, whatever the sample count: evidence, not a verdict
            "p99_ms": _num(final.get("99%", "N/A")) if final else None,
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


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # the group we created with start_new_session holds only locust and its workers
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


class Spike(Fault):
    """A load spike as a fault: entering starts an extra Locust run on top of the steady load,
    leaving stops it. Its span on the timeline is the experiment's "during" window. Nothing
    is journaled: a load stops by itself at its run time."""

    kind = "spike"

    def __init__(self, run: Load) -> None:
        super().__init__(run.ctx)
        self.run = run

    def describe(self) -> str:
        s = self.run.spec
        return f"load spike: +{s.users} users x {s.user_rps:g} req/s for {s.duration:g} s"

    def details(self) -> dict[str, Any]:
        return {"users": self.run.spec.users, "user_rps": self.run.spec.user_rps}

    def prepare(self) -> None:
        self.run.spec.validate()

    def inject(self) -> None:
        self.run.__enter__()

    def verify(self) -> None:
        if not self.run.running:
            raise FaultNotInEffect(f"{self.describe()}: locust is not running")

    def revert(self) -> None:
        if self.run.running or self.run.returncode is None:
            with contextlib.suppress(LoadError):  # ending the spike early is the point
                self.run.__exit__(None, None, None)
        super().revert()


class Loads:
    """Starts loads for one experiment (the ``load`` fixture): locustfiles are found relative to
    the project root, the host defaults to the platform's entry point."""

    def __init__(
        self,
        ctx: RunContext,
        host: str,
        root: Path,
        engine: Callable[[RunContext, LoadSpec, str], Load] = Load,
    ) -> None:
        self.ctx, self.host, self.root, self.engine = ctx, host, root, engine
        self.started: list[Load] = []

    def __call__(
        self,
        *,
        users: int = 10,
        duration: float = 30.0,
        shape: str = "steady",
        user_rps: float = 2.0,
        workers: int = 1,
        locustfile: str = "loadtests/workload.py",
        host: str | None = None,
        spawn_rate: float | None = None,
        **shape_env: str,
    ) -> Load:
        path = Path(locustfile)
        spec = LoadSpec(
            locustfile=path if path.is_absolute() else self.root / path,
            host=host or self.host,
            users=users,
            duration=duration,
            shape=shape,
            user_rps=user_rps,
            workers=workers,
            spawn_rate=spawn_rate,
            shape_env={f"CHAOS_LOAD_{k.upper()}": str(v) for k, v in shape_env.items()},
        )
        run = self.engine(self.ctx, spec, f"load{len(self.started) + 1 if self.started else ''}")
        self.started.append(run)
        return run

    def spike(self, **kwargs: Any) -> Spike:
        """A load spike on top of what runs already, as a fault (see ``Spike``)."""
        return Spike(self(**kwargs))

    def stop_all(self) -> None:
        for run in self.started:
            if run.running:
                run.__exit__(None, None, None)
