"""Fuzzed pytest options, as a user types them: every combination ends in a run configuration or a
ConfigError naming the option (pytest's usage error, exit code 2), never another exception; and
what is accepted is usable (finite numbers, durations above zero)."""

import math
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.config import RunConfig
from chaos.errors import ConfigError
from chaos.overrides import parse_slo_overrides
from chaos.schedules import ExploreOptions

# what a shell hands over: any text, and the near misses that matter most
TYPED = st.one_of(
    st.text(max_size=24),
    st.sampled_from(
        [
            "",
            "=",
            "5s",
            "0s",
            "-1s",
            "1e9",
            "9" * 400,
            "nan",
            "inf",
            "-inf",
            "1.5h",
            "250ms",
            "2 m",
            "east=kind-east",
            "=ctx",
            "east=",
            "max=5,promql=up",
            "max_error_rate=0.5,over=2s,http=http://x",
            "max_error_rate=nan,http=u",
            "max=inf,promql=q",
            "p99_ms=200",
            "p99_ms=nan",
            "x=1e999",
            "resilient",
            "fragile",
            "lab",
            "kube",
            "memory",
            "slow-election",
            "\x00",
            "a\x00b",
            "../..",
        ]
    ),
)
PATHS = st.one_of(st.none(), TYPED.map(Path))
# CI runs the same few hundred cases every time (a failure there is one to fix, not a fluke);
# benchmarks/bench_fuzz.py runs thousands of fresh ones through CHAOS_FUZZ_EXAMPLES
MANY = int(os.environ.get("CHAOS_FUZZ_EXAMPLES") or 0)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=MANY or examples,
        derandomize=not MANY,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


OPTIONS = st.fixed_dictionaries(
    {
        "platform": TYPED,
        "lab_profile": TYPED,
        "lab_weaknesses": st.lists(TYPED, max_size=3),
        "probe_hz": st.floats(allow_nan=True, allow_infinity=True),
        "fault_ttl": TYPED,
        "guards": st.lists(TYPED, max_size=2),
        "kube_contexts": st.lists(TYPED, max_size=2),
        "kube_namespaces": st.lists(TYPED, max_size=2),
        "kube_topology": PATHS,
        "kube_clusters": PATHS,
        "lab_topology": PATHS,
        "kube_load": TYPED,
    }
)


@fuzz(300)
@given(
    options=OPTIONS,
    slos=st.lists(TYPED, max_size=3),
    budget=TYPED,
    replay=st.one_of(st.none(), TYPED),
)
def test_any_pytest_options_give_a_configuration_or_a_clear_error(
    tmp_path_factory, options, slos, budget, replay
):
    reports = tmp_path_factory.getbasetemp() / "reports"
    try:
        cfg = RunConfig.build(seed=0, dry_run=False, reports=reports, **options)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert math.isfinite(cfg.fault_ttl) and cfg.fault_ttl > 0
        assert math.isfinite(cfg.probe_hz) and cfg.probe_hz > 0
        assert all(math.isfinite(g.limit) and math.isfinite(g.over) and g.over > 0 for g in cfg.guards)
    try:
        overrides = parse_slo_overrides(slos)
    except ConfigError as exc:
        assert all("--chaos-slo" in p for p in exc.problems)
    else:
        assert all(math.isfinite(v) for v in overrides.values())
    try:
        explore = ExploreOptions.build(5, budget, replay)
    except ConfigError as exc:
        assert exc.problems
    else:
        assert math.isfinite(explore.budget_s) and explore.budget_s > 0


# the commands that only read, validate or write under the working directory: lab up/down,
# recover and abort act on the machine and are left out (their arguments are validated by the
# same functions, tested above and in test_cli.py)
SAFE = {
    "schema": [],
    "lab weaknesses": [],
    "gameday": ["--check", "--no-html"],
    "replay": [],
    "explore": ["--budget", "--examples", "--no-html"],
    "report": ["--results", "--output", "--summary", "--no-html"],
    "init": [],
}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(SAFE)))
    words = st.one_of(TYPED, st.sampled_from(SAFE[command] or ["--help"]))
    return [*command.split(), *draw(st.lists(words, max_size=4))]


@fuzz(200)
@given(argv=command_lines())
def test_any_command_line_ends_in_a_result_or_a_usage_error_never_a_traceback(argv):
    from click.testing import CliRunner

    from chaos.cli import main

    if any("\x00" in a for a in argv):
        argv = [a.replace("\x00", "") for a in argv]  # a shell cannot pass a NUL in an argument
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as here:
        before = os.getcwd()
        os.chdir(here)  # what init and report write stays in a directory of its own
        try:
            result = CliRunner().invoke(main, argv, catch_exceptions=True)
        finally:
            os.chdir(before)
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exception)
    assert "Traceback" not in result.output, (argv, result.output)
