"""The plugin's fixtures: the run's configuration, the lab, each test's context, the platform
it acts on, its probes and verdicts (``steady``), its SLO bounds and its loads."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from chaos.config import RunConfig
from chaos.context import RunContext, default_journal, lab_unavailable, state_dir
from chaos.errors import ChaosError, ConfigError, EnvironmentNotReady
from chaos.journal import Journal
from chaos.overrides import SLOs
from chaos.platform import Platform
from chaos.redact import redact_url
from chaos.registry import PLATFORMS, PRIVATE_JOURNAL, resolve
from chaos.stash import (
    CONFIG,
    CONTEXT,
    ENVIRONMENT,
    EVIDENCE,
    EXPLORE,
    EXPLORER,
    LOADS,
    PROGRESS,
    SLOS,
    STEADY,
)
from chaos.steady import Steady

if TYPE_CHECKING:
    from chaos.explore import Explorer
    from chaos.lab import Lab
    from chaos.load import Loads


@pytest.fixture(scope="session")
def chaos_config(request: pytest.FixtureRequest) -> RunConfig:
    """The validated run configuration (from the chaos command-line options)."""
    return request.config.stash[CONFIG]


@pytest.fixture(scope="session")
def chaos_lab(chaos_config: RunConfig, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The lab, brought up if it is not (and then taken down at the end of the session)."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    from chaos.lab import Lab

    lab = Lab()
    try:
        _, started = lab.up(
            chaos_config.lab_profile,
            weaknesses=chaos_config.lab_weaknesses,
            topology=chaos_config.lab_topology,
        )
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
            watched = s.http(f"guard {redact_url(spec.target)}", spec.target)
            s.guard(watched.error_rate(over=spec.over) <= spec.limit)
        else:
            prometheus = request.getfixturevalue("platform").prometheus_url
            watched = s.promql(f"guard {spec.target}", spec.target, prometheus)
            s.guard(watched.value("last") <= spec.limit)
    try:
        yield s
    finally:
        collect_evidence(request.node)


def collect_evidence(item: pytest.Item) -> None:
    """Stop the probes and attach the evidence once, at the end of the test body, so the
    attachments belong to the test in the report (not to fixture teardown)."""
    explorer = item.stash.get(EXPLORER, None)
    if explorer is not None and explorer.result.steady is not None:
        # an exploration's evidence is its smallest failing schedule's
        item.stash[STEADY] = explorer.result.steady
    s = item.stash.get(STEADY, None)
    if s is None or EVIDENCE in item.stash:
        if explorer is not None:
            _record_exploration(item, explorer, {})
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
        from chaos.report import attach_evidence, attach_history, attach_load

        attach_evidence(s.ctx.tl, evidence, item.nodeid)
        for run in runs:
            attach_load(run.name, run.stats_csv())
        for history in s.histories:
            attach_history(history)
    if explorer is not None:
        _record_exploration(item, explorer, evidence)


def _record_exploration(item: pytest.Item, explorer: Explorer, evidence: dict[str, Any]) -> None:
    """What was explored goes into the evidence; the smallest failing schedule into a file
    to replay (reports/schedules/) and into the report as a table."""
    result = explorer.result
    evidence["exploration"] = result.summary()
    item.stash[EVIDENCE] = evidence
    if result.minimal is None:
        return
    from chaos.explore import write_record
    from chaos.report import attach_schedule

    cfg = item.config.stash[CONFIG]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.nodeid)
    path = cfg.reports / "schedules" / f"{name}.json"
    env = {
        "platform": cfg.platform,
        "profile": cfg.lab_profile,
        "weaknesses": list(cfg.lab_weaknesses),
        "topology": str(cfg.lab_topology) if cfg.lab_topology else None,
        "seed": cfg.seed,
    }
    write_record(path, item.nodeid, env, result)
    evidence["exploration"]["replay"] = f"pytest '{item.nodeid}' --chaos-replay {path}"
    attach_schedule(result.minimal, path)


@pytest.fixture
def explore(platform: Platform, chaos_config: RunConfig, request: pytest.FixtureRequest) -> Explorer:
    """``explore(schedules(platform, ...), trial)``: run ``trial(steady, run)`` over generated
    fault schedules within the run's budget (--chaos-explore-examples, --chaos-explore-budget),
    shrink a failure to its smallest schedule, record it to replay (--chaos-replay FILE)."""
    from chaos.explore import Explorer

    opts = request.config.stash[EXPLORE]
    progress = request.config.stash[PROGRESS]
    explorer = Explorer(
        platform,
        hz=chaos_config.probe_hz,
        seed_=chaos_config.seed,
        examples=opts.examples,
        budget_s=opts.budget_s,
        database=chaos_config.reports / "hypothesis",
        replay=opts.replay,
        on_progress=lambda msg: progress.emit("explore", nodeid=request.node.nodeid, message=msg),
    )
    request.node.stash[EXPLORER] = explorer
    return explorer


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
