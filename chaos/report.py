"""Evidence out of a run: Allure steps and attachments, and ``reports/summary.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chaos.chart import samples_csv, timeline_png
from chaos.history import History
from chaos.schedules import Schedule
from chaos.timeline import Event, Timeline


class AllureSteps:
    """Turns phases and faults on the timeline into nested Allure steps as they happen."""

    def __init__(self) -> None:
        import allure

        self._allure: Any = allure  # allure's API is untyped
        self._open: list[tuple[str, Any]] = []

    def __call__(self, event: Event) -> None:
        kind, _, edge = event.kind.partition(".")
        if kind == "check":
            # a step of its own inside "verify", failed when the check is violated
            step = self._allure.step(event.name)
            step.__enter__()
            finding = event.data.get("finding", {})
            failed = None if finding.get("passed") else AssertionError(finding.get("label", event.name))
            step.__exit__(AssertionError if failed else None, failed, None)
            return
        if kind not in ("phase", "fault"):
            return
        key = f"{kind}:{event.name}"
        if edge == "start":
            title = f"inject: {event.name}" if kind == "fault" else event.name
            step = self._allure.step(title)
            step.__enter__()
            self._open.append((key, step))
        elif edge == "end" and any(k == key for k, _ in self._open):
            # close anything opened inside this one first: Allure steps nest strictly
            while self._open:
                k, step = self._open.pop()
                step.__exit__(None, None, None)
                if k == key:
                    break

    def close_all(self) -> None:
        while self._open:
            _, step = self._open.pop()
            step.__exit__(None, None, None)


def attach_evidence(timeline: Timeline, evidence: dict[str, Any], title: str) -> None:
    import allure

    allure.attach(timeline_png(timeline, title), "timeline", allure.attachment_type.PNG)
    allure.attach(samples_csv(timeline), "probe samples", allure.attachment_type.CSV)
    allure.attach(json.dumps(evidence, indent=2, default=str), "evidence", allure.attachment_type.JSON)


def attach_history(history: History) -> None:
    """A register history as Jepsen's EDN (for Elle or Knossos) and JSON, and, when it is not
    linearizable, the smallest set of operations that shows it, drawn per client."""
    import allure

    allure.attach(history.to_edn(), f"{history.name} history (EDN)", allure.attachment_type.TEXT)
    allure.attach(json.dumps(history.to_json()), f"{history.name} history", allure.attachment_type.JSON)
    verdict = history.check()
    if not verdict.ok:
        allure.attach(
            f"key {verdict.key}: these operations cannot be linearized\n{verdict.timeline()}",
            f"{history.name} counterexample",
            allure.attachment_type.TEXT,
        )


def attach_schedule(schedule: Schedule, path: Path) -> None:
    """The smallest failing schedule: a table to read and the file to replay it from."""
    import allure

    allure.attach(schedule.table(), "minimal failing schedule", allure.attachment_type.TEXT)
    allure.attach(path.read_text(), "schedule (replay with --chaos-replay)", allure.attachment_type.JSON)


def attach_load(name: str, stats_csv: str) -> None:
    import allure

    allure.attach(stats_csv, f"{name} stats (per second)", allure.attachment_type.CSV)


def write_summary(
    path: Path, records: list[dict[str, Any]], environment: dict[str, Any], asked: int | None = None
) -> None:
    """The run's summary. ``asked`` is how many experiments the run was asked to run; a run in
    which fewer ran (skipped, or never reached) is incomplete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {
        outcome: sum(1 for r in records if r["outcome"] == outcome)
        for outcome in ("passed", "failed", "error", "skipped")
    }
    asked = max(asked if asked is not None else len(records), len(records))
    ran = len(records) - counts["skipped"]
    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": environment,
        "experiments": records,
        **counts,
        "asked": asked,
        "ran": ran,
        "not_run": asked - len(records),
        "complete": ran == asked,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    tmp.replace(path)


def write_allure_environment(results_dir: Path, environment: dict[str, Any]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{k}={v}" for k, v in environment.items()]
    (results_dir / "environment.properties").write_text("\n".join(lines) + "\n")
