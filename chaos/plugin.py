"""The pytest plugin: options, markers, the run's configuration and collection.

Registered through the ``pytest11`` entry point; it brings in the fixtures
(``chaos.fixtures``) and the records and summary (``chaos.records``). Importing it stays
cheap: the lab, Allure and matplotlib are imported only when a fixture that needs them runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.config import RunConfig
from chaos.context import default_journal, lab_unavailable, state_dir
from chaos.errors import ConfigError
from chaos.overrides import parse_slo_overrides
from chaos.progress import ProgressLog
from chaos.schedules import ExploreOptions
from chaos.stash import ASKED, CONFIG, ENVIRONMENT, EXPLORE, PROGRESS, RECORDS, SLOS

pytest_plugins = ["chaos.fixtures", "chaos.records"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos experiments")
    group.addoption(
        "--platform",
        default="lab",
        help="where experiments run: lab (default), kube (real clusters) or memory (in-process masters, "
        "for testing experiments without root)",
    )
    group.addoption(
        "--lab-profile",
        default="resilient",
        help="lab profile: resilient (default) or fragile; with --lab-topology, one of its variants",
    )
    group.addoption(
        "--lab-topology",
        default=None,
        metavar="FILE",
        help="run a system of your own on the lab, declared in a topology file (docs/your-system.md)",
    )
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
        "--chaos-explore-examples",
        type=int,
        default=20,
        metavar="N",
        help="schedules an exploring experiment tries at most (default 20)",
    )
    group.addoption(
        "--chaos-explore-budget",
        default="10m",
        metavar="DURATION",
        help="wall time an exploring experiment may spend, shrinking included (default 10m)",
    )
    group.addoption(
        "--chaos-replay",
        default=None,
        metavar="FILE",
        help="run an exploring experiment's recorded schedule (reports/schedules/*.json) once, exactly",
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
            lab_topology=_topology_path(config),
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
        explore = ExploreOptions.build(
            config.getoption("--chaos-explore-examples"),
            config.getoption("--chaos-explore-budget"),
            config.getoption("--chaos-replay"),
        )
    except ConfigError as exc:
        raise pytest.UsageError("chaos: " + "\nchaos: ".join(exc.problems)) from exc
    config.stash[CONFIG] = cfg
    config.stash[PROGRESS] = ProgressLog(cfg.progress)
    config.stash[SLOS] = slos
    config.stash[EXPLORE] = explore
    config.stash[RECORDS] = []
    config.stash[ENVIRONMENT] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Undo whatever a killed run left in force before anything else touches the platform."""
    journal = default_journal()
    if lab_unavailable() or not journal.path.exists():
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
        f"chaos: platform={cfg.platform} profile={cfg.lab_title} "
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
    reason = lab_unavailable()
    if reason is None or config.stash[CONFIG].platform != "lab":
        return
    for item in items:
        if item.get_closest_marker("lab") or item.get_closest_marker("experiment"):
            item.add_marker(pytest.mark.skip(reason=reason))


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


def _topology_path(config: pytest.Config) -> Path | None:
    """``--lab-topology``, relative to where pytest runs or, as an ``addopts`` in a project's
    ini file would mean it, to that file's directory."""
    value = config.getoption("--lab-topology")
    if value is None:
        return None
    path = Path(value)
    if not path.is_absolute() and not path.exists() and config.inipath is not None:
        beside = config.inipath.parent / path
        if beside.exists():
            return beside
    return path
