"""Lab profiles: ``resilient`` is the platform as it should be; ``fragile`` is the negative
control with the redundancy taken away, on which every experiment must fail."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaos.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    masters: int
    clusters: tuple[str, ...]  # the first is primary behind the traffic manager, others backup
    breaker: bool
    description: str
    gateway_slots: int = 2  # capacity: gateway replicas a cluster can run
    min_replicas: int = 2  # in rotation at rest
    reserve: float = 0.0  # share of slots held warm and free for scale-out
    autoscale: bool = False
    target_rps: float = 10.0  # per replica: the autoscaler's set point
    durable_storage: bool = True  # inventory fsyncs before acknowledging, refuses failed writes

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.reserve <= 0.9:
            problems.append(f"reserve={self.reserve!r}: use a share from 0 to 0.9 (90%)")
        if not 1 <= self.min_replicas <= self.gateway_slots:
            problems.append(
                f"min_replicas={self.min_replicas!r} with {self.gateway_slots} slots: use 1 to the slot count"
            )
        if self.target_rps <= 0:
            problems.append(f"target_rps={self.target_rps!r}: must be greater than 0")
        if problems:
            raise ConfigError(problems)

    @property
    def reserved_slots(self) -> int:
        return math.ceil(self.reserve * self.gateway_slots - 1e-9)


PROFILES: dict[str, Profile] = {
    "resilient": Profile(
        "resilient",
        masters=3,
        clusters=("east", "west"),
        breaker=True,
        description="3 etcd masters, clusters east + west (backup), circuit breaker on, "
        "autoscaled gateways with a 20% warm reserve",
        gateway_slots=5,
        min_replicas=2,
        reserve=0.2,
        autoscale=True,
    ),
    "fragile": Profile(
        "fragile",
        masters=1,
        clusters=("east",),
        breaker=False,
        description="1 etcd master, cluster east only (no backup), no circuit breaker, no reserve, "
        "no autoscaler, write-behind inventory (no fsync, acknowledges failed writes)",
        durable_storage=False,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown lab profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
