"""The pytest plugin: options, markers, fixtures and report wiring for chaos experiments.

Registered through the ``pytest11`` entry point. Importing it stays cheap: the lab, Allure
and matplotlib are imported only when a fixture that needs them runs.
"""

from __future__ import annotations

import os
import random
import time
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chaos.categories import category_of
from chaos.config import RunConfig
from chaos.context import RunContext, default_journal, state_dir
from chaos.errors import ChaosError, ConfigError, DryRunPlan, EnvironmentNotReady, NotSupported
from chaos.journal import Journal
from chaos.overrides import SLOs, parse_slo_overrides
from chaos.platform import Platform
from chaos.progress import ProgressLog
from chaos.registry import PLATFORMS, PRIVATE_JOURNAL, resolve
from chaos.steady import Steady

if TYPE_CHECKING:
    from chaos.lab import Lab
    from chaos.load import Loads

CONFIG = pytest.StashKey[RunConfig]()
RECORDS = pytest.StashKey[list[dict[str, Any]]]()
ENVIRONMENT = pytest.StashKey[dict[str, Any]]()
EVIDENCE = pytest.StashKey[dict[str, Any]]()
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
STEADY = pytest.StashKey[Steady]()
SLOS = pytest.StashKey[dict[str, float]]()
LOADS = pytest.StashKey[Any]()  # chaos.load.Loads: every load the test started
CONTEXT = pytest.StashKey[RunContext]()
FAILURE = pytest.StashKey[BaseException]()  # what ended the test, for its failure category
PROGRESS = pytest.StashKey[ProgressLog]()
ASKED = pytest.StashKey[int]()  # experiments collected: what the run was asked to run


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos experiments")
    group.addoption(
        "--platform",
        default="lab",
        help="where experiments run: lab (default), kube (real clusters) or memory (in-process masters, "
        "for testing experiments without root)",
    )
    group.addoption("--lab-profile", default="resilient", help="lab profile: resilient (default) or fragile")
    group.addoption(
        "--lab-weakness",
        action="append",
        default=[],
        metavar="NAME",
        help="a seeded weakness on the resilient lab (repeatable; `chaos lab weaknesses` lists them): "
        "the negative control that proves a check can fail",
    )
    group.addoption("--chaos-seed", type=int, default=0, help="seed for every random choice (default 0)")
    group.addoption(
        "--dry-run", action="store_true", help="resolve and print each fault's targets; change nothing"
    )
    group.addoption(
        "--chaos-probe-hz", type=float, default=20.0, help="probe sampling rate, Hz (default 20, max 100)"
    )
    group.addoption(
        "--chaos-fault-ttl", default="15m", help="longest any fault may stay in force (default 15m)"
    )
    group.addoption("--chaos-reports", default="reports", help="where summary.json goes (default ./reports)")
    group.addoption(
        "--chaos-slo",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an experiment's SLO bound (repeatable), e.g. --chaos-slo p99_ms=200",
    )
    group.addoption(
        "--chaos-guard",
        action="append",
        default=[],
        metavar="SPEC",
        help="stop condition for every experiment (repeatable): "
        "max_error_rate=0.5,over=2s,http=URL or max=VALUE,promql=QUERY; a breach while a fault "
        "is in force reverts every fault and fails the test as aborted",
    )
    group.addoption(
        "--kube-context",
        action="append",
        default=[],
        metavar="ROLE=CONTEXT",
        help="a cluster for --platform kube (repeatable): its role and kubeconfig context, or in-cluster",
    )
    group.addoption(
        "--kube-clusters",
        default=None,
        metavar="FILE",
        help="YAML mapping cluster roles to contexts, e.g. {east: kind-east}",
    )
    group.addoption(
        "--kubeconfig", default=None, help="kubeconfig file (default $KUBECONFIG or ~/.kube/config)"
    )
    group.addoption(
        "--kube-namespace",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="blast radius for --platform kube (repeatable): faults touch only these namespaces",
    )
    group.addoption(
        "--kube-topology",
        default=None,
        help="YAML mapping the names experiments use (entry_url, services such as east-router) to clusters",
    )
    group.addoption(
        "--kube-load",
        default="cluster",
        help="where Locust runs on --platform kube: cluster (master and worker pods, default) or local",
    )
    group.addoption(
        "--kube-control-plane", action="store_true", help="allow faults on the control plane (etcd members)"
    )
    group.addoption(
        "--chaos-progress",
        default=None,
        metavar="FILE",
        help="append live progress as JSON lines (for chaos gameday)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "experiment(verifies, hypothesis): a chaos experiment (use @chaos.experiment)"
    )
    config.addinivalue_line(
        "markers", "lab: needs the embedded lab (root); skipped with the reason otherwise"
    )
    config.addinivalue_line(
        "markers",
        "chaos_controls(mapping): negative controls, weakness -> check labels it must turn red "
        "(use @chaos.experiment(controls=...))",
    )
    config.addinivalue_line(
        "markers", "chaos_param_controls(mapping): one parametrization's controls (use chaos.controls(...))"
    )
    config.addinivalue_line("markers", "kube: needs a real cluster (CHAOS_KUBE_CONTEXT); skipped otherwise")
    reports = Path(config.getoption("--chaos-reports"))
    try:
        cfg = RunConfig.build(
            platform=config.getoption("--platform"),
            lab_profile=config.getoption("--lab-profile"),
            lab_weaknesses=config.getoption("--lab-weakness"),
            seed=config.getoption("--chaos-seed"),
            dry_run=config.getoption("--dry-run"),
            probe_hz=config.getoption("--chaos-probe-hz"),
            fault_ttl=config.getoption("--chaos-fault-ttl"),
            reports=reports if reports.is_absolute() else config.rootpath / reports,
            guards=config.getoption("--chaos-guard"),
            kube_contexts=config.getoption("--kube-context"),
            kube_clusters=Path(c) if (c := config.getoption("--kube-clusters")) else None,
            kubeconfig=Path(k) if (k := config.getoption("--kubeconfig")) else None,
            kube_namespaces=config.getoption("--kube-namespace"),
            kube_control_plane=config.getoption("--kube-control-plane"),
            kube_topology=Path(t) if (t := config.getoption("--kube-topology")) else None,
            kube_load=config.getoption("--kube-load"),
            progress=Path(p) if (p := config.getoption("--chaos-progress")) else None,
        )
        slos = parse_slo_overrides(config.getoption("--chaos-slo"))
    except ConfigError as exc:
        raise pytest.UsageError("chaos: " + "\nchaos: ".join(exc.problems)) from exc
    config.stash[CONFIG] = cfg
    config.stash[PROGRESS] = ProgressLog(cfg.progress)
    config.stash[SLOS] = slos
    config.stash[RECORDS] = []
    config.stash[ENVIRONMENT] = {}


def _lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, iptables, loop mounts); run as root"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Undo whatever a killed run left in force before anything else touches the platform."""
    journal = default_journal()
    if _lab_unavailable() or not journal.path.exists():
        return
    from chaos.journal import recover

    report = recover(journal)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        for entry in report.undone:
            tr.write_line(f"chaos: recovered a fault left by a killed run: {entry.description}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    cfg = config.stash[CONFIG]
    return [
        f"chaos: platform={cfg.platform} profile={' + '.join((cfg.lab_profile, *cfg.lab_weaknesses))} "
        f"seed={cfg.seed} "
        f"probe={cfg.probe_hz:g}Hz dry-run={cfg.dry_run} state={state_dir()}"
    ]


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[ASKED] = sum(1 for i in session.items if i.get_closest_marker("experiment"))
    session.config.stash[PROGRESS].emit(
        "session", total=len(session.items), nodeids=[i.nodeid for i in session.items]
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[PROGRESS].emit("test", nodeid=item.nodeid)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _describe_for_allure(items)
    reason = _lab_unavailable()
    if reason is None or config.stash[CONFIG].platform != "lab":
        return
    for item in items:
        if item.get_closest_marker("lab") or item.get_closest_marker("experiment"):
            item.add_marker(pytest.mark.skip(reason=reason))


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chaos_config(request: pytest.FixtureRequest) -> RunConfig:
    """The validated run configuration (from the chaos command-line options)."""
    return request.config.stash[CONFIG]


@pytest.fixture(scope="session")
def chaos_lab(chaos_config: RunConfig, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The lab, brought up if it is not (and then taken down at the end of the session)."""
    reason = _lab_unavailable()
    if reason:
        pytest.skip(reason)
    from chaos.lab import Lab

    lab = Lab()
    try:
        _, started = lab.up(chaos_config.lab_profile, weaknesses=chaos_config.lab_weaknesses)
    except (ConfigError, EnvironmentNotReady) as exc:
        pytest.fail(f"chaos lab: {exc}", pytrace=False)
    yield lab
    lab.close()
    if started:
        lab.down()


@pytest.fixture
def chaos_context(request: pytest.FixtureRequest, chaos_config: RunConfig) -> Iterator[RunContext]:
    """Journal, timeline, clock and a per-test seeded random generator."""
    seed = zlib.crc32(f"{chaos_config.seed}:{request.node.nodeid}".encode())
    private = chaos_config.platform in PRIVATE_JOURNAL
    tmp = request.getfixturevalue("tmp_path_factory").getbasetemp() if private else None
    ctx = RunContext(
        journal=Journal(tmp / "journal.json") if tmp else default_journal(),
        rng=random.Random(seed),
        dry_run=chaos_config.dry_run,
        fault_ttl=chaos_config.fault_ttl,
    )
    from chaos.report import AllureSteps

    request.node.stash[CONTEXT] = ctx
    steps = AllureSteps()
    ctx.tl.subscribe(steps)
    ctx.tl.subscribe(request.config.stash[PROGRESS].timeline_event)
    _label_experiment(request.node)
    try:
        yield ctx
    finally:
        steps.close_all()


@pytest.fixture
def timeline(chaos_context: RunContext) -> Any:
    """The test's timeline (events, probe series, chart)."""
    return chaos_context.tl


@pytest.fixture
def platform(
    chaos_config: RunConfig, chaos_context: RunContext, request: pytest.FixtureRequest
) -> Iterator[Platform]:
    """The platform experiments act on, built by its entry in chaos.registry (the lab, the
    clusters of --platform kube, or the in-memory masters of --platform memory); its own
    events, if it has any, go on the timeline while the test runs."""
    build = resolve(PLATFORMS[chaos_config.platform])
    try:
        plat: Platform = build(chaos_config, chaos_context, request.getfixturevalue)
        plat.wait_healthy()
    except ChaosError as exc:
        pytest.fail(f"chaos {chaos_config.platform}: {exc}", pytrace=False)
    env = request.config.stash[ENVIRONMENT]
    if not env:
        env.update(plat.environment())
        env["seed"] = request.config.stash[CONFIG].seed
    recorder = None if chaos_config.dry_run else plat.record_events()
    try:
        yield plat
    finally:
        if recorder is not None:
            recorder.stop()


@pytest.fixture
def steady(
    chaos_context: RunContext, chaos_config: RunConfig, request: pytest.FixtureRequest
) -> Iterator[Steady]:
    """Probes, baseline and verdicts for one experiment; evidence goes to the report."""
    s = Steady(chaos_context, hz=chaos_config.probe_hz)
    request.node.stash[STEADY] = s
    s.guards.watch_abort_file(state_dir())
    for spec in chaos_config.guards:
        if spec.kind == "http":
            watched = s.http(f"guard {spec.target}", spec.target)
            s.guard(watched.error_rate(over=spec.over) <= spec.limit)
        else:
            prometheus = request.getfixturevalue("platform").prometheus_url
            watched = s.promql(f"guard {spec.target}", spec.target, prometheus)
            s.guard(watched.value("last") <= spec.limit)
    try:
        yield s
    finally:
        _collect_evidence(request.node)


def _collect_evidence(item: pytest.Item) -> None:
    """Stop the probes and attach the evidence once, at the end of the test body, so the
    attachments belong to the test in the report (not to fixture teardown)."""
    s = item.stash.get(STEADY, None)
    if s is None or EVIDENCE in item.stash:
        return
    s.stop()
    evidence = s.evidence()
    if s.ctx.abort.is_set:
        evidence["aborted"] = s.ctx.abort.evidence()
    loads = item.stash.get(LOADS, None)
    runs = loads.started if loads is not None else []
    if loads is not None:
        loads.stop_all()
    for run in runs:
        evidence.setdefault("load", {})[run.name] = run.evidence()
    item.stash[EVIDENCE] = evidence
    if s.ctx.tl.series:
        from chaos.report import attach_evidence, attach_load

        attach_evidence(s.ctx.tl, evidence, item.nodeid)
        for run in runs:
            attach_load(run.name, run.stats_csv())


@pytest.fixture
def slo(request: pytest.FixtureRequest) -> SLOs:
    """``slo("p99_ms", 250)``: the bound to hold, 250 unless --chaos-slo p99_ms=... says otherwise."""
    return SLOs(request.config.stash[SLOS])


@pytest.fixture
def load(
    chaos_context: RunContext, chaos_config: RunConfig, request: pytest.FixtureRequest, platform: Platform
) -> Iterator[Loads]:
    """``load(users=20, duration=30, shape="steady")``: Locust against the platform's entry point
    (a context manager); ``load.spike(users=...)`` as a fault. Every load still running at the
    end of the test is stopped. On --platform kube Locust runs as pods (--kube-load cluster)."""
    from chaos.load import Loads

    loads = Loads(chaos_context, platform.entry_url, request.config.rootpath, platform.load_engine())
    request.node.stash[LOADS] = loads
    chaos_context.abort.on_abort(loads.stop_all)
    yield loads
    loads.stop_all()


def _label_experiment(item: pytest.Item) -> None:
    marker = item.get_closest_marker("experiment")
    if marker is None:
        return
    import allure

    dynamic: Any = allure.dynamic  # allure's API is untyped
    dynamic.epic(marker.kwargs.get("verifies", "experiment"))
    dynamic.feature(item.module.__name__ if isinstance(item, pytest.Function) else item.nodeid)
    dynamic.story(item.name)


def _describe_for_allure(items: list[pytest.Item]) -> None:
    """The hypothesis becomes the report's description (allure reads it from a marker
    after setup, so setting it dynamically in a fixture would be overwritten)."""
    try:
        from allure_pytest.utils import ALLURE_DESCRIPTION_MARK
    except ImportError:  # allure-pytest not installed: reports without descriptions
        return
    for item in items:
        marker = item.get_closest_marker("experiment")
        if marker is not None and marker.kwargs.get("hypothesis"):
            item.add_marker(getattr(pytest.mark, ALLURE_DESCRIPTION_MARK)(marker.kwargs["hypothesis"]))


# -- outcome, summary ------------------------------------------------------------------------------


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
        _collect_evidence(item)
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
            outcome=record["outcome"],
            category=record["category"],
            message=record["message"].splitlines()[0][:300] if record["message"] else "",
            figures=record["figures"],
        )
    return report


def _record(item: pytest.Item) -> dict[str, Any]:
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
    call = reports.get("call")
    return {
        "nodeid": item.nodeid,
        "verifies": marker.kwargs.get("verifies") if marker else None,
        "hypothesis": marker.kwargs.get("hypothesis") if marker else None,
        "outcome": outcome,
        "category": category_of(outcome, item.stash.get(FAILURE, None)),
        "message": message,
        # the checks that failed, by label, and whether the preconditions all held: what a
        # negative control asserts (never the output text)
        "violated": [f["label"] for f in findings if not f["passed"]],
        "preconditions_held": all(f["passed"] for f in findings if f["stage"] == "precondition"),
        "duration_s": round(call.duration, 3) if call else None,
        "profile": item.config.stash[CONFIG].lab_profile,
        "weaknesses": list(item.config.stash[CONFIG].lab_weaknesses),
        "figures": figures,
        "evidence": evidence,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


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
    write_summary(cfg.reports / "summary.json", records, env, asked)
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
        why = "" if r["outcome"] in ("passed", "skipped") else f" ({r['category']})"
        tr.write_line(f"{r['outcome'].upper():8} {r['nodeid']}  [{r['verifies']}]{why}")
        for name, value in r["figures"].items():
            shown = "n/a" if value is None else f"{value:.4g}"
            tr.write_line(f"           {name}: {shown}")
        if r["outcome"] != "passed" and r["message"]:
            tr.write_line(f"           {r['message'].splitlines()[0][:200]}")
    ran = sum(1 for r in records if r["outcome"] != "skipped")
    if ran < asked:
        skipped = sum(1 for r in records if r["outcome"] == "skipped")
        tr.write_line(
            f"INCOMPLETE: {ran} of {asked} experiments ran ({skipped} skipped, "
            f"{asked - len(records)} never reached): no verdict for the rest"
        )
    tr.write_line(f"summary: {config.stash[CONFIG].reports / 'summary.json'}")
