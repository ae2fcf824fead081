"""Load: what a load is asked to do (``spec``), a running load and its measures (``run``), the
engines that run one (``local``: a Locust process here; ``chaos.kube.locust``: Locust pods), and
the ``load`` fixture's loads and spikes (``loads``)."""

from chaos.load.loads import Loads, Spike
from chaos.load.local import Load
from chaos.load.run import LoadEngine, LoadRun
from chaos.load.spec import (
    BUILT_IN,
    LOADTESTS_DIR,
    MAX_DURATION,
    MAX_USER_RPS,
    MAX_USERS,
    MAX_WORKERS,
    SHAPES,
    SHAPES_DIR,
    STATS_INTERVAL,
    FinalStats,
    LoadError,
    LoadPoint,
    LoadSpec,
    locustfile_path,
)

__all__ = [
    "BUILT_IN",
    "LOADTESTS_DIR",
    "MAX_DURATION",
    "MAX_USERS",
    "MAX_USER_RPS",
    "MAX_WORKERS",
    "SHAPES",
    "SHAPES_DIR",
    "STATS_INTERVAL",
    "FinalStats",
    "Load",
    "LoadEngine",
    "LoadError",
    "LoadPoint",
    "LoadRun",
    "LoadSpec",
    "Loads",
    "Spike",
    "locustfile_path",
]
