"""Typed, frozen run configuration, validated once with every problem reported together."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import ConfigError
from chaos.probes import MAX_HZ

PLATFORMS = ("lab", "kube")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """'250ms', '5s', '2m', '1h' or a plain number of seconds; must be > 0."""
    if isinstance(text, bool):
        raise ConfigError(f"{what}: expected a duration such as 5s or 2m, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _DURATION.match(text)
        if not m:
            raise ConfigError(f"{what}: {text!r} is not a duration; write e.g. 500ms, 5s, 2m or 1h")
        value = float(m.group(1)) * _UNIT[m.group(2)]
    if not value > 0:
        raise ConfigError(f"{what}: must be greater than zero, got {text!r}")
    return value


@dataclass(frozen=True)
class RunConfig:
    platform: str = "lab"
    lab_profile: str = "resilient"
    seed: int = 0
    dry_run: bool = False
    probe_hz: float = 20.0
    fault_ttl: float = 900.0
    reports: Path = Path("reports")

    @classmethod
    def build(
        cls,
        *,
        platform: str,
        lab_profile: str,
        seed: int,
        dry_run: bool,
        probe_hz: float,
        fault_ttl: str,
        reports: Path,
    ) -> RunConfig:
        from chaos.lab.profiles import PROFILES

        problems: list[str] = []
        if platform not in PLATFORMS:
            problems.append(f"--platform {platform!r}: choose one of {', '.join(PLATFORMS)}")
        elif platform == "kube":
            problems.append(
                "--platform kube: the Kubernetes driver is not part of this release yet; use --platform lab"
            )
        if lab_profile not in PROFILES:
            problems.append(f"--lab-profile {lab_profile!r}: choose one of {', '.join(PROFILES)}")
        if not 0 < probe_hz <= MAX_HZ:
            problems.append(f"--chaos-probe-hz {probe_hz!r}: use a rate above 0 and at most {MAX_HZ:g}")
        ttl = 0.0
        try:
            ttl = parse_duration(fault_ttl, what="--chaos-fault-ttl")
        except ConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        return cls(platform, lab_profile, seed, dry_run, probe_hz, ttl, reports)
