"""An experiment's SLO bounds: the default each experiment declares, unless the run overrides
it with ``--chaos-slo NAME=NUMBER``."""

from __future__ import annotations

import math

from chaos.errors import ConfigError


def parse_slo_overrides(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number: float | None = float(value)
        except ValueError:
            number = None
        if not sep or not name.strip() or number is None or not math.isfinite(number):
            problems.append(f"--chaos-slo {item!r}: write NAME=NUMBER, e.g. --chaos-slo p99_ms=200")
        else:
            out[name.strip()] = number
    if problems:
        raise ConfigError(problems)
    return out


class SLOs:
    """An experiment's SLO bounds: the default it declares, unless --chaos-slo overrides it."""

    def __init__(self, overrides: dict[str, float]) -> None:
        self.overrides = overrides
        self.used: dict[str, float] = {}

    def __call__(self, name: str, default: float) -> float:
        value = self.overrides.get(name, default)
        self.used[name] = value
        return value
