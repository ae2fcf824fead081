"""The ``@experiment`` decorator: names the property a test verifies and its hypothesis."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from chaos.errors import ConfigError

F = TypeVar("F", bound=Callable[..., object])

PROPERTIES = ("HA", "circuit breaking", "failover", "scale-out", "durability", "steady state")


def experiment(*, verifies: str, hypothesis: str) -> Callable[[F], F]:
    """Mark a test as an experiment: ``verifies`` is the property (report epic), and
    ``hypothesis`` the claim in one sentence (report description)."""
    if verifies not in PROPERTIES:
        raise ConfigError(f"@experiment(verifies={verifies!r}): use one of {', '.join(PROPERTIES)}")
    if not hypothesis.strip():
        raise ConfigError("@experiment(hypothesis=...) must state the claim being tested")

    def decorate(fn: F) -> F:
        marked: F = pytest.mark.experiment(verifies=verifies, hypothesis=hypothesis)(fn)
        return marked

    return decorate
