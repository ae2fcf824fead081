"""Lab profiles: ``resilient`` is the platform as it should be; ``fragile`` is the negative
control with the redundancy taken away, on which every experiment must fail."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    masters: int
    clusters: tuple[str, ...]  # the first is primary behind the traffic manager, others backup
    breaker: bool
    description: str
    gateways_per_cluster: int = 2


PROFILES: dict[str, Profile] = {
    "resilient": Profile(
        "resilient",
        masters=3,
        clusters=("east", "west"),
        breaker=True,
        description="3 etcd masters, clusters east + west (backup), circuit breaker on",
    ),
    "fragile": Profile(
        "fragile",
        masters=1,
        clusters=("east",),
        breaker=False,
        description="1 etcd master, cluster east only (no backup), no circuit breaker",
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown lab profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
