"""Chaos and resilience experiments for Kubernetes container clouds, as pytest tests.

Experiments import only from here; everything else is private to its module.
"""

from chaos.clock import Clock, FakeClock, SystemClock
from chaos.context import RunContext
from chaos.errors import (
    Aborted,
    ChaosError,
    ConfigError,
    DryRunPlan,
    EnvironmentNotReady,
    FaultNotInEffect,
    NotSupported,
    ObservationError,
    PlatformError,
    PreconditionNotMet,
    RollbackError,
    SteadyStateViolation,
    UnsafeFaultRefused,
)
from chaos.experiment import controls, experiment
from chaos.fault import Fault
from chaos.history import History
from chaos.inject import (
    bridge,
    cold_standby,
    cut_cluster,
    degrade,
    fail_storage,
    isolate,
    kill_master,
    kill_service,
    lose_host,
    lose_registry,
    partition,
    roll_out,
)
from chaos.journal import Journal, recover, register_undo
from chaos.load import Load, Loads
from chaos.masters_watch import Leadership, Writes
from chaos.overrides import SLOs
from chaos.platform import Capacity, Masters, Member, Platform, Rollout
from chaos.probes import Probe, Sample, Series
from chaos.slo import Check, Finding, Measure
from chaos.steady import Steady
from chaos.timeline import Timeline
from chaos.watched import Watched

__all__ = [
    "Aborted",
    "Capacity",
    "ChaosError",
    "Check",
    "Clock",
    "ConfigError",
    "DryRunPlan",
    "EnvironmentNotReady",
    "FakeClock",
    "Fault",
    "FaultNotInEffect",
    "Finding",
    "History",
    "Journal",
    "Leadership",
    "Load",
    "Loads",
    "Masters",
    "Measure",
    "Member",
    "NotSupported",
    "ObservationError",
    "Platform",
    "PlatformError",
    "PreconditionNotMet",
    "Probe",
    "RollbackError",
    "Rollout",
    "RunContext",
    "SLOs",
    "Sample",
    "Series",
    "Steady",
    "SteadyStateViolation",
    "SystemClock",
    "Timeline",
    "UnsafeFaultRefused",
    "Watched",
    "Writes",
    "bridge",
    "cold_standby",
    "controls",
    "cut_cluster",
    "degrade",
    "experiment",
    "fail_storage",
    "isolate",
    "kill_master",
    "kill_service",
    "lose_host",
    "lose_registry",
    "partition",
    "recover",
    "register_undo",
    "roll_out",
]
