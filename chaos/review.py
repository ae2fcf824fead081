"""Reviewing runs: a one-page summary of every experiment's verdict and measured figures, a
resilience score per run, and the trend across runs kept in ``reports/history/``.

Score: 100 × passed / (experiments the run was asked to run). A failure of any class (steady
state violated, precondition not met, fault not in effect, aborted, usage or infrastructure
error) counts against it, and so does an experiment that was skipped or never reached: a run in
which fewer experiments ran than were asked is *incomplete*, and its score is never 100. A run
asked to run nothing has no score.

Regressions: a figure measured in seconds (recovery, failover, scale-out, detection times)
is flagged when it is more than 25 % and 0.1 s above the median of the same figure in the
previous runs (up to five); an experiment that passed in the previous run and fails now is
flagged too.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import ConfigError
from chaos.userfiles import check_path, read_user_file
from chaos.wording import figure_sentences, first_violated

TIMED = ("time", "failover", "failback", "scaled out", "scale-in", "recover")
WINDOW = 5
SLOWER = 1.25
SLACK_S = 0.1


def load_summary(path: Path) -> dict[str, Any]:
    check_path(path, "run summary")
    if not path.exists():
        raise ConfigError(f"no run summary at {path}: run the experiments first")
    text = read_user_file(path, "run summary")
    try:
        doc: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not a run summary: {exc}") from exc
    if "experiments" not in doc:
        raise ConfigError(f"{path} is not a run summary (no experiments)")
    return doc


def asked(summary: dict[str, Any]) -> int:
    """How many experiments the run was asked to run (older summaries: those it recorded)."""
    return max(int(summary.get("asked", 0)), len(summary["experiments"]))


def complete(summary: dict[str, Any]) -> bool:
    """Every experiment asked for ran to a verdict (none skipped, none left unreached)."""
    ran = sum(1 for e in summary["experiments"] if e["outcome"] != "skipped")
    return ran == asked(summary)


def score(summary: dict[str, Any]) -> float | None:
    total = asked(summary)
    if not total:
        return None
    return round(100.0 * sum(1 for e in summary["experiments"] if e["outcome"] == "passed") / total, 1)


def completeness(summary: dict[str, Any]) -> str:
    """ "complete", or what is missing, e.g. "INCOMPLETE: 3 of 5 ran (1 skipped, 1 not reached)"."""
    if complete(summary):
        return "complete"
    exps = summary["experiments"]
    skipped = sum(1 for e in exps if e["outcome"] == "skipped")
    ran = len(exps) - skipped
    return (
        f"INCOMPLETE: {ran} of {asked(summary)} ran ({skipped} skipped, "
        f"{asked(summary) - len(exps)} not reached)"
    )


def is_timed(figure: str) -> bool:
    name = figure.rsplit(" [", 1)[0]
    return any(word in name for word in TIMED)


@dataclass(frozen=True)
class Regression:
    nodeid: str
    what: str
    now: float | None
    before: float | None

    def line(self) -> str:
        if self.now is None or self.before is None:
            return f"{self.nodeid}: {self.what}"
        return f"{self.nodeid}: {self.what}: {self.now:.3g} s, was {self.before:.3g} s (median)"


def regressions(current: dict[str, Any], previous: list[dict[str, Any]]) -> list[Regression]:
    """What got worse in ``current`` compared with the runs before it (oldest first)."""
    out: list[Regression] = []
    recent = previous[-WINDOW:]
    last = {e["nodeid"]: e for e in recent[-1]["experiments"]} if recent else {}
    for exp in current["experiments"]:
        before = last.get(exp["nodeid"])
        if before and before["outcome"] == "passed" and exp["outcome"] not in ("passed", "skipped"):
            out.append(Regression(exp["nodeid"], f"passed before, {exp['outcome']} now", None, None))
        for figure, value in exp.get("figures", {}).items():
            if value is None or not is_timed(figure):
                continue
            history = [
                e["figures"][figure]
                for run in recent
                for e in run["experiments"]
                if e["nodeid"] == exp["nodeid"] and e.get("figures", {}).get(figure) is not None
            ]
            if not history:
                continue
            median = statistics.median(history)
            if value > median * SLOWER and value - median > SLACK_S:
                out.append(Regression(exp["nodeid"], figure, value, median))
    return out


# -- history ---------------------------------------------------------------------------------------


def history_dir(reports: Path) -> Path:
    return reports / "history"


def record(summary_path: Path, reports: Path) -> Path:
    """Keep this run's summary in the history (once, named by its generation time)."""
    doc = load_summary(summary_path)
    hist = history_dir(reports)
    hist.mkdir(parents=True, exist_ok=True)
    stamp = doc.get("generated", "unknown").replace(":", "").replace("-", "")
    target = hist / f"{stamp}.json"
    if not target.exists():
        shutil.copyfile(summary_path, target)
    return target


def runs(reports: Path) -> list[dict[str, Any]]:
    """Every run kept in the history, oldest first."""
    hist = history_dir(reports)
    docs = []
    for path in sorted(hist.glob("*.json")) if hist.is_dir() else []:
        try:
            docs.append(load_summary(path))
        except ConfigError:
            continue  # a file that is not a summary is not part of the trend
    return sorted(docs, key=lambda d: str(d.get("generated", "")))


# -- rendering -------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _n(summary: dict[str, Any], outcome: str) -> int:
    return sum(1 for e in summary["experiments"] if e["outcome"] == outcome)


def _counts(summary: dict[str, Any]) -> str:
    failed = _n(summary, "failed") + _n(summary, "error")
    return f"{_n(summary, 'passed')} passed, {failed} failed, {_n(summary, 'skipped')} skipped"


def _first_line(message: str) -> str:
    """What a failure message says first, past its exception's name."""
    line = next((x for x in message.splitlines() if x.strip()), "")
    return re.sub(r"^(?:\w+\.)+\w+: |^\w+(?:Error|Violation|NotMet|Exception): ", "", line)[:200]


def _rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for e in summary["experiments"]:
        figures = "; ".join(figure_sentences(e))
        why = "" if e["outcome"] == "passed" else (first_violated(e) or _first_line(e.get("message") or ""))
        plain = e["outcome"] in ("passed", "skipped")
        verdict = e["outcome"] if plain else f"{e['outcome']} ({e.get('category', '')})"
        rows.append((e["nodeid"].split("::", 1)[-1], e.get("verifies") or "", verdict, figures, why))
    return rows


def markdown(summary: dict[str, Any], history: list[dict[str, Any]], links: dict[str, str]) -> str:
    """The one-page review: verdicts and figures, score, trend and regressions."""
    s = score(summary)
    env = summary.get("environment", {})
    lines = [
        f"# Resilience run {summary.get('generated', '')}",
        "",
        f"**Score: {_fmt(s)} / 100** — {_counts(summary)} — {completeness(summary)} "
        f"(platform {env.get('platform', '?')}, profile {env.get('profile', '?')}, "
        f"seed {env.get('seed', '?')})",
        "",
    ]
    lines += [f"- {name}: {target}" for name, target in links.items()]
    lines += ["", "| experiment | verifies | verdict | measured | why |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _rows(summary)]
    previous = [h for h in history if h.get("generated") != summary.get("generated")]
    lines += [
        "",
        "## Trend",
        "",
        "| run | score | passed | failed | skipped | complete |",
        "|---|---|---|---|---|---|",
    ]
    for run in [*previous[-9:], summary]:
        counts = f"{_n(run, 'passed')} | {_n(run, 'failed') + _n(run, 'error')} | {_n(run, 'skipped')}"
        done = "yes" if complete(run) else "no"
        lines.append(f"| {run.get('generated', '')} | {_fmt(score(run))} | {counts} | {done} |")
    found = regressions(summary, previous)
    lines += ["", "## Regressions", ""]
    lines += [f"- {r.line()}" for r in found] or ["- none against the previous runs"]
    return "\n".join(lines) + "\n"


def to_html(
    md_title: str, summary: dict[str, Any], history: list[dict[str, Any]], links: dict[str, str]
) -> str:
    """The same page as HTML, for a browser next to the Allure report."""
    e = html.escape
    previous = [h for h in history if h.get("generated") != summary.get("generated")]
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in _rows(summary))
    trend = "".join(
        f"<tr><td>{e(str(r.get('generated', '')))}</td><td>{e(_fmt(score(r)))}</td>"
        f"<td>{_n(r, 'passed')}</td><td>{_n(r, 'failed') + _n(r, 'error')}</td><td>{_n(r, 'skipped')}</td>"
        f"<td>{'yes' if complete(r) else 'no'}</td></tr>"
        for r in [*previous[-9:], summary]
    )
    regs = "".join(f"<li>{e(r.line())}</li>" for r in regressions(summary, previous)) or (
        "<li>none against the previous runs</li>"
    )
    link_items = "".join(f'<li>{e(k)}: <a href="{e(v)}">{e(v)}</a></li>' for k, v in links.items())
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(md_title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px;"
        "vertical-align:top}table{border-collapse:collapse}</style></head><body>"
        f"<h1>{e(md_title)}</h1><p><b>Score: {e(_fmt(score(summary)))} / 100</b> — "
        f"{e(_counts(summary))} — {e(completeness(summary))}</p><ul>{link_items}</ul>"
        "<table><tr><th>experiment</th><th>verifies</th><th>verdict</th><th>measured</th><th>why</th></tr>"
        f"{rows}</table><h2>Trend</h2><table><tr><th>run</th><th>score</th><th>passed</th><th>failed</th>"
        "<th>skipped</th><th>complete</th></tr>"
        f"{trend}</table><h2>Regressions</h2><ul>{regs}</ul></body></html>"
    )


def write_review(summary_path: Path, reports: Path, links: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Record the run in the history and write ``summary.md`` and ``summary.html`` next to
    ``summary_path``; returns both paths."""
    summary = load_summary(summary_path)
    record(summary_path, reports)
    history = runs(reports)
    links = links or {}
    md = summary_path.with_name("summary.md")
    md.write_text(markdown(summary, history, links))
    page = summary_path.with_name("summary.html")
    page.write_text(to_html(f"Resilience run {summary.get('generated', '')}", summary, history, links))
    return md, page
