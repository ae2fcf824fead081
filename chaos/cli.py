"""`chaos`: bring the lab up and down, show it, recover after a crash, build the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click

from chaos.errors import ChaosError, ConfigError
from chaos.friendly import UserPath
from chaos.friendly import friendly as _friendly
from chaos.lab.cli import lab


def _version() -> str:
    from chaos.init import version

    return version()


@click.group()
@click.version_option(_version(), "--version", prog_name="chaos", message="%(prog)s %(version)s")
def main() -> None:
    """Chaos and resilience experiments for Kubernetes container clouds."""


main.add_command(lab)


def _allure_command() -> list[str]:
    """The Allure 3 CLI: the project's node_modules (from here or from the checkout this
    package runs from), else one on PATH."""
    checkout = Path(__file__).resolve().parents[1]
    for base in (Path.cwd(), checkout):
        local = base / "node_modules" / ".bin" / "allure"
        if local.exists():
            return [str(local)]
    found = shutil.which("allure")
    if found is None:
        raise ChaosError(
            "the Allure report tool is not installed: run `npm install allure` in your project "
            "(npm itself: apt-get install npm), or put Allure 3's `allure` on PATH; "
            "`chaos report --no-html` writes the review without it"
        )
    return [found]


@main.command()
@click.option("--force", is_flag=True, help="also undo faults owned by a run that is still alive")
@click.option(
    "--kube-context",
    "contexts",
    multiple=True,
    metavar="ROLE=CONTEXT",
    help="also reap expired objects there",
)
@click.option("--kubeconfig", type=UserPath(), default=None)
@click.option("--kube-namespace", "namespaces", multiple=True, help="namespaces to reap (repeatable)")
@_friendly
def recover(
    force: bool, contexts: tuple[str, ...], kubeconfig: Path | None, namespaces: tuple[str, ...]
) -> None:
    """Undo every fault a killed run left in force (idempotent); with --kube-context, also
    delete the framework's expired objects on those clusters (the reaper)."""
    from chaos.config import parse_contexts
    from chaos.context import default_journal
    from chaos.journal import recover as do_recover

    problems: list[str] = []
    clusters = parse_contexts(list(contexts), problems)
    if clusters and not namespaces:
        problems.append("--kube-context needs --kube-namespace: the namespaces to reap")
    if problems:
        raise ConfigError(problems)

    journal = default_journal()
    report = do_recover(journal, include_live=force)
    for e in report.undone:
        click.echo(f"undone: {e.description} (left by pid {e.owner_pid})")
    for e in report.skipped_live:
        click.echo(f"skipped: {e.description}: its run (pid {e.owner_pid}) is still alive; --force to undo")
    if not report.undone and not report.skipped_live:
        click.echo("nothing to recover")
    if clusters:
        from chaos.kube import connect
        from chaos.kube.platform import reap

        for role, context in clusters:
            removed = reap(connect(role, context, kubeconfig=kubeconfig), namespaces)
            for item in removed:
                click.echo(f"reaped: {item}")
            if not removed:
                click.echo(f"nothing expired on {role}")


@main.command()
@click.option("--results", default="reports/allure-results", show_default=True, type=UserPath())
@click.option("--output", default="reports/allure-report", show_default=True, type=UserPath())
@click.option(
    "--summary",
    default="reports/summary.json",
    show_default=True,
    type=UserPath(),
    help="the run's summary: the review (summary.md/.html, score, trend) is written next to it",
)
@click.option("--no-html", is_flag=True, help="only the review, not the Allure HTML")
@_friendly
def report(results: Path, output: Path, summary: Path, no_html: bool) -> None:
    """Render the Allure HTML report (npm package `allure`, Allure 3) and the one-page review:
    every experiment's verdict and figures, the run's score and the trend across runs."""
    from chaos.review import write_review

    links: dict[str, str] = {"Allure results": str(results)}
    if not no_html:
        if not results.is_dir() or not any(results.iterdir()):
            raise ConfigError(
                f"no Allure results in {results}: run the experiments with --alluredir {results} first"
            )
        cmd = [*_allure_command(), "generate", str(results), "--output", str(output)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ChaosError(
                f"allure generate failed ({proc.returncode}): {proc.stderr.strip()[-400:]}; "
                "is the npm package installed (npm install in the repository)?"
            )
        links["Allure report"] = str(output / "index.html")
        click.echo(f"report: {output / 'index.html'}")
    if summary.exists():  # a directory given for it is refused saying so
        md, page = write_review(summary, summary.parent, links)
        click.echo(f"review: {md} and {page} (history: {summary.parent / 'history'})")
    elif no_html:
        raise ConfigError(f"no run summary at {summary}: run the experiments first")


@main.command()
@click.argument("plan", type=UserPath())
@click.option("--check", is_flag=True, help="validate the plan and show what would run; run nothing")
@click.option("--no-html", is_flag=True, help="skip the Allure HTML report")
@_friendly
def gameday(plan: Path, check: bool, no_html: bool) -> None:
    """Run a game-day plan (YAML): its experiments with live progress, then the run record,
    review and report. Exit code is non-zero when any hypothesis failed."""
    from rich.console import Console

    from chaos.gameday import pytest_argv, run_plan
    from chaos.plan import load_plan

    loaded = load_plan(plan)
    if check:
        click.echo(f"plan {loaded.name}: valid")
        click.echo(
            "would run: "
            + " ".join(pytest_argv(loaded, loaded.reports / "RUN", loaded.reports / "RUN/progress.jsonl"))
        )
        return
    allure = None
    if not no_html:
        try:
            allure = _allure_command()
        except ChaosError as exc:
            click.echo(f"chaos: {exc}; the run goes on without the HTML report", err=True)
    sys.exit(run_plan(loaded, console=Console(soft_wrap=True), html=not no_html, allure=allure))


@main.command()
@click.argument("plan", type=UserPath())
@click.option(
    "--budget", default="10m", show_default=True, help="wall time each exploring experiment may use"
)
@click.option("--examples", default=1000, show_default=True, help="schedules each may try at most")
@click.option("--no-html", is_flag=True, help="skip the Allure HTML report")
@_friendly
def explore(plan: Path, budget: str, examples: int, no_html: bool) -> None:
    """Explore generated fault schedules for a time budget: a game-day plan's experiments (those
    that explore, such as experiments/test_explore_masters.py) with live progress (schedules
    tried, failures, the smallest failing schedule). Exit code is non-zero when one failed."""
    from rich.console import Console

    from chaos.config import parse_duration
    from chaos.gameday import run_plan
    from chaos.plan import load_plan

    parse_duration(budget, what="--budget")
    loaded = load_plan(plan)
    extra = ["--chaos-explore-budget", budget, "--chaos-explore-examples", str(examples)]
    sys.exit(run_plan(loaded, console=Console(soft_wrap=True), html=not no_html, extra=extra))


@main.command()
@click.argument("record", type=UserPath())
@_friendly
def replay(record: Path) -> None:
    """Run a recorded minimal failing schedule again, exactly (RECORD: a file from
    reports/schedules/, or a run directory holding one): the same experiment, platform,
    profile, weaknesses and seed."""
    try:
        # a run directory holds schedules/, or one level down (a game day's run): never a walk
        # of the whole tree under whatever directory was named
        found_in = [*record.glob("schedules/*.json"), *record.glob("*/schedules/*.json")]
        files = sorted(found_in) if record.is_dir() else [record]
    except OSError as exc:
        raise ConfigError(f"{record}: cannot look for a schedule there: {exc.strerror or exc}") from None
    if len(files) != 1:
        found = ", ".join(str(f) for f in files) or "none"
        raise ConfigError(f"{record}: give one schedule file (found: {found})")
    try:
        doc = json.loads(files[0].read_text())
        nodeid, env = doc["nodeid"], doc.get("environment", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{files[0]}: not a recorded schedule ({exc})") from exc
    argv = [sys.executable, "-m", "pytest", nodeid, "-p", "no:cacheprovider", "--chaos-replay", str(files[0])]
    argv += [
        "--platform",
        str(env.get("platform", "lab")),
        "--lab-profile",
        str(env.get("profile", "resilient")),
    ]
    argv += ["--chaos-seed", str(env.get("seed", 0))]
    argv += [arg for w in env.get("weaknesses", []) for arg in ("--lab-weakness", str(w))]
    if env.get("topology"):
        argv += ["--lab-topology", str(env["topology"])]
    click.echo("replay: " + " ".join(argv[2:]))
    sys.exit(subprocess.run(argv, check=False).returncode)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--run", "do_run", is_flag=True, help="prove it on the lab: one lab per weakness (takes minutes)"
)
@click.option("--weakness", "only", multiple=True, metavar="NAME", help="with --run: only these weaknesses")
@click.option(
    "--topology",
    type=UserPath(),
    default=None,
    metavar="FILE",
    help="experiments of a system of your own: controls name the topology's variants, which the "
    "lab runs in place of the shop's weaknesses",
)
@click.option(
    "--reports",
    default="reports/checks",
    show_default=True,
    type=UserPath(),
    help="run summaries",
)
@_friendly
def checks(
    args: tuple[str, ...], do_run: bool, only: tuple[str, ...], topology: Path | None, reports: Path
) -> None:
    """Which checks of which experiments are proven able to go red, and by which weakness.

    ARGS select experiments as pytest does (paths, -k EXPR; default: experiments/). Without
    --run, lists the negative controls each experiment declares. With --run, runs every
    experiment on the resilient lab, then every weakness against the experiments that name it,
    and ends with the line `checks proven: X of Y`; it takes the lab down at the end. With
    --topology, the lab runs that file, and a control names one of its variants."""
    from chaos.checks import Coverage, collect, record_resilient, record_weakness, run_pytest, runs
    from chaos.lab.weaknesses import WEAKNESSES

    root = Path.cwd()
    reports = reports.resolve()  # a project's own ini file would make a relative path its own
    declared = collect(list(args) or ["experiments"], root)
    if not declared:
        raise ConfigError(f"no experiments found in {' '.join(args) or 'experiments'}")
    if topology is None:
        known, what = set(WEAKNESSES), "lab weakness"
    else:
        from chaos.lab.topofile import load_topology

        topology = topology.resolve()
        known, what = set(load_topology(topology).variants), f"variant of {topology}"
    unknown = sorted({w for d in declared for w in d.controls} - known)
    if unknown:
        raise ConfigError([f"controls name an unknown {what} {w!r}" for w in unknown])
    plan = runs(declared, only)
    if not do_run:
        for d in declared:
            click.echo(d.nodeid + ("" if d.controls else "  (no negative control)"))
            by_label: dict[str, list[str]] = {}
            for weakness, labels in d.controls.items():
                for label in labels:
                    by_label.setdefault(label, []).append(weakness)
            for label, weaknesses in by_label.items():
                click.echo(f"    {label}  <-  {', '.join(weaknesses)}")
        with_control = sum(len({lab for labels in d.controls.values() for lab in labels}) for d in declared)
        click.echo(
            f"{len(declared)} experiments, {with_control} checks with a control, {len(plan)} weaknesses; "
            "`chaos checks --run` proves them on the lab"
        )
        return
    from chaos.lab import Lab

    cov = Coverage()
    try:
        click.echo(f"resilient lab: {len(declared)} experiments (every check judged)")
        summary = run_pytest([d.nodeid for d in declared], (), reports / "resilient", root, topology)
        for problem in record_resilient(cov, summary):
            click.echo(f"  NOT GREEN: {problem}")
        by_id = {d.nodeid: d for d in declared}
        for i, (weakness, nodeids) in enumerate(plan.items(), 1):
            click.echo(f"[{i}/{len(plan)}] {weakness}: {len(nodeids)} experiment(s)")
            found = run_pytest(nodeids, (weakness,), reports / weakness, root, topology)
            record_weakness(cov, weakness, by_id, found)
    finally:
        Lab().down()
    for nodeid, label, by in cov.rows():
        click.echo(f"{by:>20}  {nodeid}  {label}")
    for miss in cov.misses:
        click.echo(f"control missed: {miss}")
    proven, total = cov.counts()
    click.echo(f"checks proven: {proven} of {total}")
    if proven < total or cov.misses:
        sys.exit(1)


@main.command()
@click.argument("reason", default="operator abort", required=False)
@_friendly
def abort(reason: str) -> None:
    """Abort every run on this machine now: each reverts its faults in force at once, stops
    its load and fails as "aborted"; a game day stops after it."""
    from chaos.abort import request_abort
    from chaos.context import state_dir

    path = request_abort(state_dir(), reason)
    click.echo(f"abort requested ({reason}): {path}")


@main.command()
@click.argument("directory", default=".", type=UserPath())
@click.option("--name", default=None, help="the project's name (default: the directory's)")
@_friendly
def init(directory: Path, name: str | None) -> None:
    """Scaffold a team's repository of experiments in DIRECTORY (default: here): pyproject.toml,
    conftest.py, an experiment, a locustfile, a game-day plan, a CI workflow and a README.
    Never overwrites a file."""
    from chaos.init import scaffold

    written = scaffold(directory, name)
    for path in written:
        click.echo(f"created {path}")
    click.echo(
        f"next: cd {directory} && python3 -m venv .venv && .venv/bin/pip install -e . && "
        "sudo .venv/bin/python -m pytest  (as README.md says)"
    )


@main.command()
@click.argument("name", type=click.Choice(["topology", "plan", "kube-topology"]))
@click.option(
    "--write",
    "directory",
    type=UserPath(file_okay=False),
    default=None,
    help="write NAME.schema.json into this directory instead of printing it",
)
@_friendly
def schema(name: str, directory: Path | None) -> None:
    """The JSON Schema of a file you write (a lab topology, a game-day plan, a kube topology),
    for an editor's YAML language server; the same files are in the repository's schemas/."""
    from chaos.schemas import schema as build

    text = json.dumps(build(name), indent=2) + "\n"
    if directory is None:
        click.echo(text, nl=False)
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.schema.json"
    path.write_text(text)
    click.echo(f"wrote {path}")
