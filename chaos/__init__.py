"""Chaos and resilience experiments for Kubernetes container clouds, as pytest tests.

Experiments import only from here; everything else is private to its module.

Names load on first use (PEP 562): every lab daemon (storage daemon, fault proxy, workload
services, dead man's switches) is started as ``python -m chaos.lab...``, which imports this
package first, and importing everything here (pytest among it) cost each of them about 0.1 s of
CPU at start, seconds in all on a lab up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from chaos.fault import Fault
    from chaos.history import History
    from chaos.http_probes import answered
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
    from chaos.marker import controls, experiment
    from chaos.masters_watch import Leadership, Writes
    from chaos.overrides import SLOs
    from chaos.platform import Capacity, Masters, Member, Platform, Rollout
    from chaos.probes import Probe, Sample, Series
    from chaos.slo import Check, Finding, Measure
    from chaos.steady import Steady
    from chaos.timeline import Timeline
    from chaos.watched import Watched

_WHERE = {
    "Aborted": "chaos.errors",
    "Capacity": "chaos.platform",
    "ChaosError": "chaos.errors",
    "Check": "chaos.slo",
    "Clock": "chaos.clock",
    "ConfigError": "chaos.errors",
    "DryRunPlan": "chaos.errors",
    "EnvironmentNotReady": "chaos.errors",
    "FakeClock": "chaos.clock",
    "Fault": "chaos.fault",
    "FaultNotInEffect": "chaos.errors",
    "Finding": "chaos.slo",
    "History": "chaos.history",
    "Journal": "chaos.journal",
    "Leadership": "chaos.masters_watch",
    "Load": "chaos.load",
    "Loads": "chaos.load",
    "Masters": "chaos.platform",
    "Measure": "chaos.slo",
    "Member": "chaos.platform",
    "NotSupported": "chaos.errors",
    "ObservationError": "chaos.errors",
    "Platform": "chaos.platform",
    "PlatformError": "chaos.errors",
    "PreconditionNotMet": "chaos.errors",
    "Probe": "chaos.probes",
    "RollbackError": "chaos.errors",
    "Rollout": "chaos.platform",
    "RunContext": "chaos.context",
    "SLOs": "chaos.overrides",
    "Sample": "chaos.probes",
    "Series": "chaos.probes",
    "Steady": "chaos.steady",
    "SteadyStateViolation": "chaos.errors",
    "SystemClock": "chaos.clock",
    "Timeline": "chaos.timeline",
    "UnsafeFaultRefused": "chaos.errors",
    "Watched": "chaos.watched",
    "Writes": "chaos.masters_watch",
    "answered": "chaos.http_probes",
    "bridge": "chaos.inject",
    "cold_standby": "chaos.inject",
    "controls": "chaos.marker",
    "cut_cluster": "chaos.inject",
    "degrade": "chaos.inject",
    "experiment": "chaos.marker",
    "fail_storage": "chaos.inject",
    "isolate": "chaos.inject",
    "kill_master": "chaos.inject",
    "kill_service": "chaos.inject",
    "lose_host": "chaos.inject",
    "lose_registry": "chaos.inject",
    "partition": "chaos.inject",
    "recover": "chaos.journal",
    "register_undo": "chaos.journal",
    "roll_out": "chaos.inject",
}

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
    "answered",
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


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'chaos' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
