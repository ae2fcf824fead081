"""What a load is asked to do, checked before anything runs, and what it measures each second."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from chaos.errors import ChaosError, ConfigError

# shipped inside the package (chaos.loadtests), so an installed chaos finds them from anywhere;
# installed as plain files, never zipped, so a path is what locust gets
LOADTESTS_DIR = Path(str(resources.files("chaos.loadtests")))
SHAPES_DIR = LOADTESTS_DIR / "shapes"
BUILT_IN = ("workload", "browse", "recommend")  # the shipped locustfiles, by name
SHAPES = ("steady", "step", "spike")
MAX_USERS = 500
MAX_USER_RPS = 50.0
MAX_DURATION = 600.0
MAX_WORKERS = 8
STATS_INTERVAL = 0.5  # how often a running load's stats are read back


class LoadError(ChaosError):
    """Locust could not start, or died while running; says which locustfile and why."""


def locustfile_path(locustfile: str, root: Path) -> Path:
    """A shipped locustfile by name ("workload", "browse", "recommend"), or a path: absolute, or relative to
    the project's root (the user's, not ours)."""
    if locustfile in BUILT_IN:
        return LOADTESTS_DIR / f"{locustfile}.py"
    path = Path(locustfile)
    return path if path.is_absolute() else root / path


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
            problems.append(
                f"locustfile {self.locustfile} does not exist: give a path to your own (relative to "
                f"the project's root) or a shipped one by name: {', '.join(BUILT_IN)}"
            )
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

    def shape_file(self) -> Path:
        return SHAPES_DIR / f"{self.shape}.py"

    def load_env(self) -> dict[str, str]:
        """The variables the locustfile and its shape read (CHAOS_LOAD_*)."""
        env = {
            "CHAOS_LOAD_USERS": str(self.users),
            "CHAOS_LOAD_DURATION": str(self.duration),
            "CHAOS_LOAD_USER_RPS": str(self.user_rps),
            **self.shape_env,
        }
        if self.spawn_rate:
            env["CHAOS_LOAD_SPAWN_RATE"] = str(self.spawn_rate)
        return env

    def process_env(self) -> dict[str, str]:
        return {**os.environ, **self.load_env()}

    def run_args(self) -> list[str]:
        """What every Locust run gets: target, a bounded run time, quiet logs, exit code 0 on
        failed requests (they are measurements, not errors)."""
        run_time = f"{int(self.duration + 0.999)}s"
        quiet = ["--loglevel", "WARNING", "--exit-code-on-error", "0"]
        return ["--host", self.host, "--run-time", run_time, "--stop-timeout", "2", *quiet]


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


# the percentiles Locust reports over a whole run
PERCENTILES = (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 100)


@dataclass(frozen=True)
class FinalStats:
    """A load's totals over its whole run, in the same terms from every engine; a figure an
    engine does not report is None (and a check on it has no value, which never passes)."""

    requests: int
    failures: int
    rps: float | None
    percentiles_ms: dict[float, float | None]
