"""Lab profiles: ``resilient`` is the platform as it should be; ``fragile`` is the negative
control with the redundancy taken away, on which every experiment must fail."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    masters: int
    description: str


PROFILES: dict[str, Profile] = {
    "resilient": Profile("resilient", masters=3, description="3 etcd masters (tolerates 1 failure)"),
    "fragile": Profile("fragile", masters=1, description="1 etcd master (tolerates none)"),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown lab profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
