"""The ``@experiment`` decorator: names the property a test verifies, its hypothesis, and the
negative controls that prove its checks can fail."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import pytest

from chaos.errors import ConfigError

F = TypeVar("F", bound=Callable[..., object])

PROPERTIES = (
    "HA",
    "circuit breaking",
    "failover",
    "scale-out",
    "durability",
    "overload protection",
    "steady state",
)

# weakness -> the labels of the checks it must turn red ("writes lost (acknowledged) [all]")
Controls = Mapping[str, Sequence[str]]


def _checked(controls: Controls, where: str) -> dict[str, tuple[str, ...]]:
    problems = []
    out: dict[str, tuple[str, ...]] = {}
    for weakness, labels in controls.items():
        if isinstance(labels, str):
            problems.append(f"{where}: {weakness!r} needs a list of check labels, not one string")
            continue
        bad = [lab for lab in labels if not (isinstance(lab, str) and lab.endswith("]") and " [" in lab)]
        if bad:
            problems.append(
                f"{where}: {weakness!r}: a check label is the check's name and window, e.g. "
                f"'writes lost (acknowledged) [all]'; got {bad[0]!r}"
            )
        out[weakness] = tuple(labels)
    if problems:
        raise ConfigError(problems)
    return out


def experiment(*, verifies: str, hypothesis: str, controls: Controls | None = None) -> Callable[[F], F]:
    """Mark a test as an experiment: ``verifies`` is the property (report epic), ``hypothesis``
    the claim in one sentence (report description), and ``controls`` the negative controls:
    for each seeded weakness of the lab, the labels of the checks it must turn red while every
    precondition holds (``chaos checks`` reports which checks are proven able to fail)."""
    if verifies not in PROPERTIES:
        raise ConfigError(f"@experiment(verifies={verifies!r}): use one of {', '.join(PROPERTIES)}")
    if not hypothesis.strip():
        raise ConfigError("@experiment(hypothesis=...) must state the claim being tested")
    checked = _checked(controls or {}, "@experiment(controls=...)")

    def decorate(fn: F) -> F:
        marked: F = pytest.mark.experiment(verifies=verifies, hypothesis=hypothesis)(fn)
        if checked:
            marked = pytest.mark.chaos_controls(checked)(marked)
        return marked

    return decorate


def controls(mapping: Controls) -> pytest.MarkDecorator:
    """Negative controls for one parametrization, over the experiment's own:
    ``pytest.param("slow", marks=controls({"commit-per-write": [...]}))``. A weakness named
    here replaces the experiment's labels for it; an empty list removes it."""
    return pytest.mark.chaos_param_controls(_checked(mapping, "controls(...)"))


def controls_of(item: pytest.Item) -> dict[str, tuple[str, ...]]:
    """The negative controls of one collected experiment: its own, then its parametrization's."""
    merged: dict[str, tuple[str, ...]] = {}
    for name in ("chaos_controls", "chaos_param_controls"):
        for mark in item.iter_markers(name):
            merged.update(mark.args[0])
    return {weakness: labels for weakness, labels in merged.items() if labels}
