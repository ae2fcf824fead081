"""What an experiment's run leaves: its typed record (outcome, failure category, the checks it
violated, its figures and evidence), the live progress event, ``summary.json``, Allure's
environment and categories, and the terminal's summary."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaos.categories import category_of
from chaos.errors import DryRunPlan, NotSupported
from chaos.fixtures import collect_evidence
from chaos.stash import (
    ASKED,
    CONFIG,
    CONTEXT,
    ENVIRONMENT,
    EVIDENCE,
    EXPLORER,
    FAILURE,
    PROGRESS,
    RECORDS,
    REPORTS,
)
from chaos.units import unit_of
from chaos.wording import figure_sentences, first_violated


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment's result, as summary.json, the review and the game-day view read it."""

    nodeid: str
    verifies: str | None
    hypothesis: str | None
    outcome: str  # passed, failed, error, skipped
    category: str | None  # why it did not pass, from the exception's type
    message: str
    # the checks that failed, by label, and whether the preconditions all held: what a
    # negative control asserts (never the output text)
    violated: list[str]
    preconditions_held: bool
    duration_s: float | None
    profile: str
    weaknesses: list[str]
    figures: dict[str, float | None]
    units: dict[str, str] = field(default_factory=dict)  # by figure: ms, s, share, count, members
    evidence: dict[str, Any] = field(default_factory=dict)
    finished: str = ""
    # an exploring experiment's smallest failing fault schedule (kind, target, params, start,
    # duration per step), or None
    schedule: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """A dry run never passes: it skips with the plan it resolved (the first fault's targets,
    or, for an experiment without a fault, the probes and load it would have run)."""
    try:
        result = yield
    except DryRunPlan as plan:
        pytest.skip(f"dry run: {plan}")
    ctx = pyfuncitem.stash.get(CONTEXT, None)
    if ctx is not None and ctx.dry_run:
        plans = [str(e.data.get("load") or e.data.get("plan")) for e in ctx.tl.events if e.name == "dry-run"]
        probes = [s.name for s in ctx.tl.series]
        shown = "; ".join(plans + ([f"probes: {', '.join(probes)}"] if probes else []))
        pytest.skip(f"dry run: nothing injected, nothing observed, no verdict ({shown or 'no fault'})")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    if call.when == "call":
        collect_evidence(item)
    report = yield
    if call.excinfo is not None and call.when in ("setup", "call") and FAILURE not in item.stash:
        item.stash[FAILURE] = call.excinfo.value
    ctx = item.stash.get(CONTEXT, None)
    before_first_fault = ctx is None or ctx.tl.first_injection() is None
    if call.excinfo is not None and call.excinfo.errisinstance(NotSupported) and before_first_fault:
        # a capability the platform lacks, found before anything was injected: the
        # experiment does not apply there, and says why. After a fault it is an error.
        report.outcome = "skipped"
        report.longrepr = (
            str(item.path),
            0,
            f"Skipped: not on platform {item.config.stash[CONFIG].platform}: {call.excinfo.value}",
        )
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.when == "teardown" and item.get_closest_marker("experiment"):
        record = _record(item)
        item.config.stash[RECORDS].append(record)
        item.config.stash[PROGRESS].emit(
            "result",
            nodeid=item.nodeid,
            outcome=record.outcome,
            category=record.category,
            # the first violated check says more than the exception's header line
            message=first_violated(record.as_dict())
            or (record.message.splitlines()[0][:300] if record.message else ""),
            figures=record.figures,
            units=record.units,
        )
    return report


def _record(item: pytest.Item) -> ExperimentRecord:
    reports = item.stash.get(REPORTS, {})
    outcome = "passed"
    message = ""
    for phase in ("setup", "call", "teardown"):
        rep = reports.get(phase)
        if rep is None:
            continue
        if rep.failed:
            outcome = "failed" if phase == "call" else "error"
            crash = getattr(rep.longrepr, "reprcrash", None)
            message = str(crash.message) if crash is not None else str(rep.longrepr)
            break
        if rep.skipped:
            outcome = "skipped"
            message = str(rep.longrepr[2]) if isinstance(rep.longrepr, tuple) else ""
            break
    marker = item.get_closest_marker("experiment")
    evidence = item.stash.get(EVIDENCE, {})
    findings = evidence.get("findings", [])
    figures = {f["label"]: f["measured"] for f in findings}
    units = {f["label"]: unit_of(f) for f in findings}
    call = reports.get("call")
    return ExperimentRecord(
        nodeid=item.nodeid,
        verifies=marker.kwargs.get("verifies") if marker else None,
        hypothesis=marker.kwargs.get("hypothesis") if marker else None,
        outcome=outcome,
        category=category_of(outcome, item.stash.get(FAILURE, None)),
        message=message,
        violated=[f["label"] for f in findings if not f["passed"]],
        preconditions_held=all(f["passed"] for f in findings if f["stage"] == "precondition"),
        duration_s=round(call.duration, 3) if call else None,
        profile=item.config.stash[CONFIG].lab_profile,
        weaknesses=list(item.config.stash[CONFIG].lab_weaknesses),
        figures=figures,
        units=units,
        evidence=evidence,
        finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        schedule=_schedule(item),
    )


def _schedule(item: pytest.Item) -> list[dict[str, Any]] | None:
    explorer = item.stash.get(EXPLORER, None)
    if explorer is None or explorer.result.minimal is None:
        return None
    return explorer.result.minimal.to_json()


def pytest_sessionfinish(session: pytest.Session) -> None:
    cfg = session.config.stash.get(CONFIG, None)
    records = session.config.stash.get(RECORDS, [])
    asked: int = session.config.stash.get(ASKED, 0)
    if cfg is None or not (records or asked) or session.config.option.collectonly:
        return
    from chaos.categories import write_allure_categories
    from chaos.report import write_allure_environment, write_summary

    env: dict[str, Any] = {
        "platform": cfg.platform,
        "profile": cfg.lab_profile,
        "weaknesses": ", ".join(cfg.lab_weaknesses) or "none",
        "seed": cfg.seed,
    }
    extra: dict[str, Any] = session.config.stash[ENVIRONMENT]
    env.update(extra)
    if os.environ.get("CHAOS_RUN_RECORD"):
        env["run record"] = os.environ["CHAOS_RUN_RECORD"]
    write_summary(cfg.reports / "summary.json", [r.as_dict() for r in records], env, asked)
    alluredir = getattr(session.config.option, "allure_report_dir", None)
    if alluredir:
        write_allure_environment(Path(alluredir), env)
        write_allure_categories(Path(alluredir))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    records = config.stash.get(RECORDS, [])
    asked = config.stash.get(ASKED, 0)
    if not (records or asked) or config.option.collectonly:
        return
    tr = terminalreporter
    tr.section("chaos experiments")
    for r in records:
        why = "" if r.outcome in ("passed", "skipped") else f" ({r.category})"
        tr.write_line(f"{r.outcome.upper():8} {r.nodeid}  [{r.verifies}]{why}")
        shown = r.as_dict()
        for line in figure_sentences(shown):
            tr.write_line(f"           {line}")
        if r.outcome != "passed" and r.message and not first_violated(shown):
            # a violated check already says why, above; anything else says it here
            tr.write_line(f"           {r.message.splitlines()[0][:200]}")
    ran = sum(1 for r in records if r.outcome != "skipped")
    if ran < asked:
        skipped = sum(1 for r in records if r.outcome == "skipped")
        tr.write_line(
            f"INCOMPLETE: {ran} of {asked} experiments ran ({skipped} skipped, "
            f"{asked - len(records)} never reached): no verdict for the rest"
        )
    tr.write_line(f"summary: {config.stash[CONFIG].reports / 'summary.json'}")
