"""`chaos gameday PLAN`: run a plan's experiments through pytest with live progress, then
write the run record, the review (summary, score, trend) and the Allure report.

Each run gets ``<reports>/<plan name>-<UTC time>/`` with ``allure-results/``, ``junit.xml``,
``summary.json``, ``summary.md``/``summary.html``, ``progress.jsonl``, ``pytest.log``,
``run.json`` (the record, linking all of them) and, unless ``--no-html``, ``allure-report/``.
The exit code is pytest's: non-zero when any hypothesis failed or the run was stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from chaos.abort import requested_since
from chaos.context import state_dir
from chaos.plan import Plan
from chaos.wording import figure_sentences

GRACE_S = 60.0  # after Ctrl-C or the time limit: how long pytest gets to revert and report


@dataclass
class RunView:
    """What the live display shows, folded from the progress stream."""

    total: int = 0
    started: float = field(default_factory=time.time)
    current: str | None = None
    phase: str | None = None
    faults: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    explored: int = 0  # fault schedules an exploring experiment has tried

    def apply(self, ev: dict[str, Any]) -> str | None:
        """Fold one progress event in; returns a line worth printing on a plain terminal."""
        handler = getattr(self, "_on_" + str(ev.get("event", "")).replace(".", "_"), None)
        return handler(ev) if handler is not None else None

    def _on_session(self, ev: dict[str, Any]) -> str:
        self.total = int(ev.get("total", 0))
        return f"{self.total} experiment(s) to run"

    def _on_test(self, ev: dict[str, Any]) -> str:
        self.current, self.phase, self.faults = ev["nodeid"], None, []
        return f"[{len(self.results) + 1}/{self.total}] {ev['nodeid']}"

    def _on_explore(self, ev: dict[str, Any]) -> str:
        message = str(ev.get("message", ""))
        if message.startswith("schedule"):
            self.explored += 1
        return f"    explore: {message}"

    def _on_phase_start(self, ev: dict[str, Any]) -> None:
        self.phase = ev["name"]

    def _on_fault_start(self, ev: dict[str, Any]) -> str:
        self.faults.append(ev["name"])
        return f"    injecting: {ev['name']}"

    def _on_fault_verified(self, ev: dict[str, Any]) -> str:
        return f"    fault in force: {ev['name']} (verified after {float(ev.get('after', 0)) * 1000:.0f} ms)"

    def _on_fault_end(self, ev: dict[str, Any]) -> str:
        if ev["name"] in self.faults:
            self.faults.remove(ev["name"])
        return f"    fault reverted: {ev['name']}"

    def _on_abort(self, ev: dict[str, Any]) -> str:
        self.notes.append(f"ABORT: {ev.get('reason')}")
        return f"    ABORT: {ev.get('reason')}"

    def _on_result(self, ev: dict[str, Any]) -> str:
        self.results.append(ev)
        self.current, self.faults = None, []
        line = f"    {ev['outcome'].upper()}"
        if ev.get("outcome") != "passed" and ev.get("message"):
            line += f": {ev['message'][:200]}"
        return line

    def eta(self) -> float | None:
        done = len(self.results)
        if not done or not self.total:
            return None
        per = (time.time() - self.started) / done
        return per * (self.total - done)

    def render(self, plan: Plan) -> Group:
        elapsed = time.time() - self.started
        eta = self.eta()
        head = Text(
            f"game day {plan.name}: {len(self.results)}/{self.total} done, "
            f"{elapsed:.0f} s elapsed, "
            f"{'~' + format(eta, '.0f') + ' s left' if eta is not None else 'estimating'}, "
            f"time limit {plan.time_limit:.0f} s"
        )
        # Text, not str: figure names hold "[during]", which rich would read as markup
        now = Table(show_header=False, box=None)
        now.add_row("experiment", Text(self.current or "-"))
        now.add_row("phase", Text(self.phase or "-"))
        now.add_row("fault in force", Text(", ".join(self.faults) or "none"))
        done = Table("experiment", "verdict", "figures")
        for r in self.results[-8:]:
            figs = "; ".join(figure_sentences(r)[:4])
            done.add_row(Text(r["nodeid"].split("::", 1)[-1]), Text(r["outcome"]), Text(figs))
        return Group(head, now, done, *[Text(n, style="bold red") for n in self.notes[-3:]])


def pytest_argv(plan: Plan, run_dir: Path, progress: Path, extra: Sequence[str] = ()) -> list[str]:
    argv = [sys.executable, "-m", "pytest", *plan.experiments, "-p", "no:cacheprovider", "-q"]
    argv += ["--platform", plan.platform, "--lab-profile", plan.profile, "--chaos-seed", str(plan.seed)]
    argv += ["--chaos-reports", str(run_dir), "--alluredir", str(run_dir / "allure-results")]
    argv += ["--junitxml", str(run_dir / "junit.xml"), "--chaos-progress", str(progress)]
    for arg in plan.guard_args:
        argv += ["--chaos-guard", arg]
    for name, value in plan.slo.items():
        argv += ["--chaos-slo", f"{name}={value:g}"]
    for role, context in plan.contexts.items():
        argv += ["--kube-context", f"{role}={context}"]
    for namespace in plan.namespaces:
        argv += ["--kube-namespace", namespace]
    if plan.control_plane:
        argv.append("--kube-control-plane")
    if plan.topology is not None:
        argv += ["--lab-topology" if plan.platform == "lab" else "--kube-topology", str(plan.topology)]
    return [*argv, *extra]


def _read_new(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    try:
        with open(path) as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    complete = data[: data.rfind("\n") + 1]
    events = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return events, offset + len(complete.encode())


def _show(
    progress: Path, offset: int, view: RunView, plan: Plan, *, console: Console, live: Live | None
) -> int:
    """Fold the progress written since ``offset`` into the view and show it; new offset."""
    events, offset = _read_new(progress, offset)
    for ev in events:
        line = view.apply(ev)
        if line and live is None:
            console.print(line, markup=False, highlight=False)  # text, never markup
    if live is not None:
        live.update(view.render(plan))
    return offset


def run_plan(
    plan: Plan,
    *,
    console: Console,
    html: bool = True,
    allure: list[str] | None = None,
    extra: Sequence[str] = (),
) -> int:
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # started in the background (nohup, `&`): SIGINT is ignored and pytest would inherit
        # that, so the SIGINT that stops a run at its time limit (faults reverted) would do nothing
        signal.signal(signal.SIGINT, signal.default_int_handler)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = plan.reports / f"{plan.name}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = run_dir / "progress.jsonl"
    argv = pytest_argv(plan, run_dir, progress, extra)
    view = RunView()
    started = time.time()
    stop_reason: str | None = None
    stopped_at = 0.0
    live_ui = console.is_terminal
    console.print(f"game day {plan.name}: {len(plan.experiments)} item(s) from {plan.path}; run in {run_dir}")
    with open(run_dir / "pytest.log", "wb") as log:
        # the run record's path goes into the Allure environment: report and record link both ways
        env = {**os.environ, "CHAOS_RUN_RECORD": str((run_dir / "run.json").resolve())}
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        offset = 0
        live = Live(view.render(plan), console=console, refresh_per_second=4) if live_ui else None
        if live is not None:
            live.start()
        try:
            while True:
                try:
                    rc = proc.wait(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                except KeyboardInterrupt:
                    if stop_reason is None:
                        stop_reason, stopped_at = "interrupted (Ctrl-C)", time.time()
                    os.killpg(proc.pid, signal.SIGINT)  # pytest reverts every fault in force
                offset = _show(progress, offset, view, plan, console=console, live=live)
                if stop_reason is None:
                    operator = requested_since(state_dir(), started)
                    if operator is not None:
                        stop_reason = f"operator abort ({operator})"
                    elif time.time() - started > plan.time_limit:
                        stop_reason = f"time limit of {plan.time_limit:.0f} s reached"
                    if stop_reason is not None:
                        console.print(f"stopping: {stop_reason}", markup=False)
                        os.killpg(proc.pid, signal.SIGINT)
                        stopped_at = time.time()
                elif time.time() - stopped_at > GRACE_S:
                    os.killpg(proc.pid, signal.SIGKILL)  # `chaos recover` undoes what it left
        finally:
            _show(progress, offset, view, plan, console=console, live=live)
            if live is not None:
                live.stop()
    return _finish(
        plan,
        run_dir=run_dir,
        rc=rc,
        started=started,
        stop_reason=stop_reason,
        console=console,
        html=html,
        allure=allure,
    )


def _finish(
    plan: Plan,
    *,
    run_dir: Path,
    rc: int,
    started: float,
    stop_reason: str | None,
    console: Console,
    html: bool,
    allure: list[str] | None,
) -> int:
    from chaos.review import load_summary, score, write_review

    summary_path = run_dir / "summary.json"
    # relative to the run's directory, so the record and the review still link when the
    # directory is archived or served elsewhere
    links = {
        "run record": "run.json",
        "Allure results": "allure-results",
        "JUnit XML": "junit.xml",
        "pytest output": "pytest.log",
    }
    if html and allure:
        out = subprocess.run(
            [
                *allure,
                "generate",
                str(run_dir / "allure-results"),
                "--output",
                str(run_dir / "allure-report"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0:
            links["Allure report"] = "allure-report/index.html"
        else:
            console.print(f"allure generate failed: {out.stderr.strip()[-300:]}")
    record: dict[str, Any] = {
        "plan": str(plan.path),
        "name": plan.name,
        "platform": plan.platform,
        "profile": plan.profile,
        "seed": plan.seed,
        "schedule": plan.schedule,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "directory": str(run_dir.resolve()),
        "exit_code": rc,
        "stopped": stop_reason,
        "links": links,
    }
    if summary_path.exists():
        summary = load_summary(summary_path)
        md, page = write_review(summary_path, plan.reports, links)
        links["summary"] = md.name
        links["summary (HTML)"] = page.name
        record.update(passed=summary["passed"], failed=summary["failed"], score=score(summary))
    (run_dir / "run.json").write_text(json.dumps(record, indent=2))
    verdict = "PASSED" if rc == 0 else "FAILED"
    console.print(
        f"game day {plan.name}: {verdict} (exit {rc}); score {record.get('score', 'n/a')}; "
        f"record {run_dir / 'run.json'}"
    )
    if stop_reason:
        console.print(f"stopped: {stop_reason}", markup=False)
    for name, target in links.items():
        console.print(f"  {name}: {run_dir / target}", markup=False, highlight=False)
    return rc if rc != 0 or stop_reason is None else 1
