"""Check coverage: is every hypothesis check of every experiment proven able to go red?

``chaos checks`` lists the checks each experiment declares in its negative controls
(``@experiment(controls=...)``) and the weaknesses meant to turn them red. ``chaos checks
--run`` proves it on the lab: it runs every experiment on the resilient lab (which judges every
check, so every check of the hypothesis is known), then, one lab per weakness, every
experiment that names the weakness, and reports per check the weakness that turned it red,
or ``unproven``. A weakness proves a check only when the run failed with a steady-state
violation, every precondition held, and the check is among those violated: a run that fails
on a precondition proves nothing about the hypothesis.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaos.errors import ConfigError
from chaos.marker import controls_of


@dataclass(frozen=True)
class Declared:
    """One collected experiment and its negative controls."""

    nodeid: str
    controls: dict[str, tuple[str, ...]]


class _Collector:
    def __init__(self) -> None:
        self.found: list[Declared] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            if item.get_closest_marker("experiment"):
                self.found.append(Declared(item.nodeid, controls_of(item)))


def collect(args: list[str], rootdir: Path) -> list[Declared]:
    """The experiments pytest would run for ``args`` (paths, ``-k``), with their controls."""
    collector = _Collector()
    with contextlib.redirect_stdout(io.StringIO()) as said:  # pytest's own listing is not ours to print
        code = pytest.main(
            ["--collect-only", "-qq", "-p", "no:cacheprovider", "--rootdir", str(rootdir), *args],
            plugins=[collector],
        )
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise ConfigError(
            f"collecting {' '.join(args)} failed (pytest exit code {code}): {said.getvalue()[-1500:]}"
        )
    return collector.found


def runs(declared: list[Declared], only: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """One lab run per weakness: the experiments that name it (every parametrization)."""
    out: dict[str, list[str]] = {}
    for d in declared:
        for weakness in d.controls:
            if not only or weakness in only:
                out.setdefault(weakness, []).append(d.nodeid)
    return dict(sorted(out.items()))


@dataclass
class Coverage:
    """What the runs showed, per experiment and check label."""

    judged: dict[str, list[str]] = field(default_factory=dict)  # nodeid -> hypothesis labels
    proven: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (nodeid, label) -> weaknesses
    misses: list[str] = field(default_factory=list)  # controls that did not go red as declared

    def rows(self) -> list[tuple[str, str, str]]:
        return [
            (nodeid, label, ", ".join(self.proven.get((nodeid, label), [])) or "unproven")
            for nodeid, labels in self.judged.items()
            for label in labels
        ]

    def counts(self) -> tuple[int, int]:
        rows = self.rows()
        return sum(1 for *_, by in rows if by != "unproven"), len(rows)


def record_resilient(cov: Coverage, summary: dict[str, Any]) -> list[str]:
    """Every hypothesis check judged on the resilient lab; returns the experiments that did
    not pass there (their checks cannot be enumerated, and a red baseline proves nothing)."""
    broken = []
    for exp in summary["experiments"]:
        if exp["outcome"] != "passed":
            broken.append(f"{exp['nodeid']}: {exp['outcome']} on the resilient lab ({exp.get('category')})")
            continue
        findings = exp.get("evidence", {}).get("findings", [])
        cov.judged[exp["nodeid"]] = [f["label"] for f in findings if f["stage"] == "hypothesis"]
    return broken


def record_weakness(
    cov: Coverage, weakness: str, declared: dict[str, Declared], summary: dict[str, Any]
) -> None:
    for exp in summary["experiments"]:
        nodeid = exp["nodeid"]
        meant = declared[nodeid].controls.get(weakness, ()) if nodeid in declared else ()
        why = (exp.get("message") or "").splitlines()[0][:160] if exp.get("message") else ""
        if exp["category"] == "precondition not met" or (
            exp["category"] == "steady state violated" and not exp.get("preconditions_held", False)
        ):
            cov.misses.append(
                f"{nodeid} under {weakness}: failed on a precondition, which proves nothing ({why})"
            )
            continue
        if exp["category"] != "steady state violated":
            cov.misses.append(
                f"{nodeid} under {weakness}: {exp['category']}, not a steady-state violation ({why})"
            )
            continue
        violated = set(exp.get("violated", []))
        for label in meant:
            if label in violated:
                cov.proven.setdefault((nodeid, label), []).append(weakness)
            else:
                cov.misses.append(
                    f"{nodeid} under {weakness}: {label!r} did not go red (violated: {sorted(violated)})"
                )


EXPLORE_EXAMPLES = 5
EXPLORE_BUDGET = "90s"

Runner = Callable[[list[str], tuple[str, ...], Path], dict[str, Any]]


def run_pytest(
    nodeids: list[str],
    weaknesses: tuple[str, ...],
    reports: Path,
    rootdir: Path,
    topology: Path | None = None,
) -> dict[str, Any]:
    """Run ``nodeids`` on a lab of its own with ``weaknesses`` (with ``topology``: that
    system, a weakness being one of its variants); the run's summary."""
    from chaos.lab import Lab

    Lab().down()  # one lab per run: each weakness gets a lab made for it
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *nodeids,
        "-p",
        "no:cacheprovider",
        "-q",
        "--chaos-reports",
        str(reports),
        # node ids as `collect` saw them, even where a project's own ini file sits deeper
        "--rootdir",
        str(rootdir),
        # an exploring experiment gets a bounded search: enough to find what a weakness
        # breaks and shrink it some; `chaos explore` is for long searches
        "--chaos-explore-examples",
        str(EXPLORE_EXAMPLES),
        "--chaos-explore-budget",
        EXPLORE_BUDGET,
    ]
    if topology is None:
        argv += [arg for w in weaknesses for arg in ("--lab-weakness", w)]
    else:
        argv += ["--lab-topology", str(topology), *(arg for w in weaknesses for arg in ("--lab-profile", w))]
    proc = subprocess.run(argv, cwd=rootdir, capture_output=True, text=True, check=False)
    summary = reports / "summary.json"
    if not summary.exists():
        raise SystemExit(
            f"chaos checks: the run wrote no summary: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    doc: dict[str, Any] = json.loads(summary.read_text())
    return doc
