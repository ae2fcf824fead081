"""The local engine: Locust as a bounded, self-stopping subprocess of this machine.

Locust is never imported here: it monkey-patches the whole process with gevent. It runs as
``python -m locust --headless`` (with ``--processes`` for several workers) with a load shape
from ``loadtests/shapes/``; its per-second stats history is tailed into the timeline while it
runs. If our process dies, Locust still stops by itself at ``--run-time``."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from chaos.context import RunContext
from chaos.load.run import LoadRun
from chaos.load.spec import PERCENTILES, FinalStats, LoadError, LoadPoint, LoadSpec
from chaos.ports import free_port
from chaos.wait import WaitAborted, WaitTimeout, wait_until


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None  # Locust writes N/A before the first response


class Load(LoadRun):
    """A Locust process here: ``with Load(ctx, spec) as run: ...``."""

    def __init__(self, ctx: RunContext, spec: LoadSpec, name: str = "load") -> None:
        super().__init__(ctx, spec, name)
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._lines_seen = 0
        self.returncode: int | None = None

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
        argv = [sys.executable, "-m", "locust", "-f", f"{s.locustfile},{s.shape_file()}", "--headless"]
        argv += [*s.run_args(), "--csv", str(self._prefix), "--only-summary"]
        if s.workers > 1:
            # The master's port is Locust's default 5557 on every interface unless told; two
            # runs on one machine (CI runs the lab suite beside the unit tests) then collide.
            # Loopback only, on a port free now: its workers are forks on this machine.
            port = free_port()
            argv += ["--processes", str(s.workers), "--master-bind-host", "127.0.0.1"]
            argv += ["--master-bind-port", str(port), "--master-port", str(port)]
        return argv

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.spec
        s.validate()
        if self._dry_run(
            f"would run Locust ({s.users} users x {s.user_rps:g} req/s, {s.shape}, {s.duration:g} s) "
            f"against {s.host}"
        ):
            return
        self._dir = tempfile.TemporaryDirectory(prefix="chaos-load-")
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                env=s.process_env(),
                start_new_session=True,
            )
        self._started(workers=s.workers)
        try:
            wait_until(
                lambda: self._poll() or self.points,
                timeout=30,
                interval=0.1,
                what=f"locust to report its first stats ({s.locustfile})",
                abort=self._died_early,
            )
        except (WaitAborted, WaitTimeout) as exc:
            self._terminate()
            raise LoadError(f"{exc}; locust said: {self._stderr_tail()}") from exc
        self._start_tail()

    def _died_early(self) -> str | None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is None:
            return None
        return f"locust exited with code {code} before reporting stats (locustfile {self.spec.locustfile})"

    def wait(self) -> None:
        if self._proc is None:  # never started (a dry run)
            return
        try:
            self._proc.wait(timeout=self.spec.duration + 30)
        except subprocess.TimeoutExpired as exc:
            raise LoadError(f"locust did not stop {self.spec.duration:g} s into its run") from exc

    def stop(self, *, quiet: bool = False) -> None:
        if self._proc is None or self.returncode is not None:  # never started, or stopped already
            return
        died = self._proc.poll() not in (None, 0)
        self._terminate()
        self._join_tail()
        self._poll()
        self._read_final()
        self._ended()
        said = self._stderr_tail()
        if self._dir is not None:
            self._dir.cleanup()
        if died and not quiet:
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
    def _poll(self) -> bool:
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
        for row in csv.DictReader(io.StringIO("\n".join([header, *rows]))):
            self._lines_seen += 1
            if row.get("Name") != "Aggregated":
                continue
            point = LoadPoint(
                float(row["Timestamp"]) - self.ctx.tl.wall_origin,
                int(row["User Count"]),
                float(row["Requests/s"]),
                float(row["Failures/s"]),
                _num(row["50%"]),
                _num(row["95%"]),
                _num(row["99%"]),
                int(row["Total Request Count"]),
                int(row["Total Failure Count"]),
            )
            self.add_point(point, point.p99_ms)
            fresh = True
        return fresh

    def _read_final(self) -> None:
        try:
            text = Path(f"{self._prefix}_stats.csv").read_text()
        except (FileNotFoundError, TypeError):
            return
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("Name") == "Aggregated":
                self.final = FinalStats(
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    rps=_num(row.get("Requests/s")),
                    percentiles_ms={p: _num(row.get(f"{p:g}%")) for p in PERCENTILES},
                )

    def _stderr_tail(self) -> str:
        try:
            lines = [ln for ln in self._stderr_path.read_text(errors="replace").splitlines() if ln.strip()]
        except (FileNotFoundError, AssertionError):
            return "(no output)"
        return " | ".join(lines[-4:]) or "(no output)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # the group we created with start_new_session holds only locust and its workers
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
