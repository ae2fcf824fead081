"""Game-day plans: a valid plan becomes a pytest command line; a bad one is refused with every
problem at once, each with its file and line, before anything runs."""

import textwrap

import pytest
from hypothesis import given

from chaos import ConfigError
from chaos.config import GuardSpec
from chaos.gameday import pytest_argv
from chaos.plan import load_plan
from tests.fuzzing import replaced, replacements
from tests.lab.conftest import ROOT


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # plan paths are relative to where the plan is run


def write(tmp_path, text):
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_plan_becomes_the_pytest_command(tmp_path):
    plan = load_plan(
        write(
            tmp_path,
            """
            name: nightly
            seed: 3
            experiments:
              - experiments/test_master_ha.py::test_follower_loss_keeps_writes
              - experiments/test_workload_storage.py::test_workload_storage_failure_loses_nothing[full]
            guards:
              - {http: "http://198.18.0.20/healthz", max_error_rate: 0.5, over: 3s}
              - {promql: 'sum(rate(x{a="b",c="d"}[5s]))', max: 5}
            slo: {p99_ms: 250}
            time_limit: 20m
            """,
        )
    )
    assert plan.name == "nightly" and plan.time_limit == 1200
    assert [g.kind for g in plan.guards] == ["http", "promql"]
    assert plan.guards[1].target == 'sum(rate(x{a="b",c="d"}[5s]))'  # commas survive
    argv = pytest_argv(plan, tmp_path / "run", tmp_path / "run" / "progress.jsonl")
    assert argv[argv.index("--chaos-seed") + 1] == "3"
    assert argv[argv.index("--chaos-slo") + 1] == "p99_ms=250"
    assert "--junitxml" in argv and "--alluredir" in argv
    assert argv.count("--chaos-guard") == 2


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path):
    path = write(
        tmp_path,
        """\
        name: bad
        platfrom: lab
        profile: sturdy
        experiments:
          - experiments/test_nope.py
          - experiments/test_master_ha.py::test_nothing
        guards:
          - {http: "http://198.18.0.20/", max_error_rate: 2}
        contexts: {east: kind-east}
        schedule: every monday
        time_limit: forever
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_plan(path)
    problems = err.value.problems
    expected = [
        (2, "unknown key 'platfrom'"),
        (3, "profile 'sturdy': use one of resilient, fragile"),
        (5, "experiment 'experiments/test_nope.py': no file"),
        (6, "no test 'test_nothing' in experiments/test_master_ha.py; it has: test_leader_loss_keeps_writes"),
        (8, "max_error_rate is a share from 0 up to (not including) 1"),
        (9, "context 'kind-east' (role east)"),
        (10, "schedule 'every monday': a cron expression of 5 fields"),
        (11, "time_limit: 'forever' is not a duration"),
    ]
    for line, text in expected:
        assert any(p.startswith(f"{path}:{line}: ") and text in p for p in problems), (line, problems)


def test_unknown_kube_context_names_the_ones_there_are(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("contexts:\n  - name: kind-east\n  - name: kind-west\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    path = write(
        tmp_path,
        """\
        platform: kube
        experiments: [experiments/test_master_ha.py]
        contexts: {east: kind-east, west: prod-west}
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_plan(path)
    assert f"{path}:3: unknown context 'prod-west' (role west); the kubeconfig has: kind-east, kind-west" in (
        err.value.problems
    )
    assert f"{path}:1: platform kube needs namespaces: the blast radius, e.g. [shop]" in err.value.problems


def test_a_kube_plan_passes_contexts_and_blast_radius_to_pytest(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("contexts:\n  - name: kind-east\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    path = write(
        tmp_path,
        """\
        platform: kube
        experiments: [experiments/test_master_ha.py]
        contexts: {east: kind-east}
        namespaces: [shop, chaos]
        control_plane: true
        topology: TOPOLOGY
        """.replace("TOPOLOGY", str(tmp_path / "topology.yaml")),
    )
    (tmp_path / "topology.yaml").write_text("services:\n  gtm: {external: true}\n")
    argv = pytest_argv(load_plan(path), tmp_path, tmp_path / "p.jsonl")
    assert argv[argv.index("--kube-context") + 1] == "east=kind-east"
    assert argv.count("--kube-namespace") == 2 and "--kube-control-plane" in argv
    assert argv[argv.index("--kube-topology") + 1] == str(tmp_path / "topology.yaml")
    (tmp_path / "topology.yaml").write_text("services:\n  east-gw: {cluster: north, labels: 'app'}\n")
    with pytest.raises(ConfigError) as err:
        load_plan(path)
    problems = "\n".join(err.value.problems)
    assert "services.east-gw: namespace is missing" in problems
    assert "cluster 'north' is not a context's role (east)" in problems
    assert "write key=value[,key=value], e.g. app=router" in problems


def test_not_yaml_or_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"plan.yaml:2: not valid YAML"):
        load_plan(write(tmp_path, "name: x\n  bad: [\n"))
    with pytest.raises(ConfigError, match="a plan is a mapping"):
        load_plan(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="no such plan file"):
        load_plan(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http=http://x/", "give max_error_rate="),
        ("max_error_rate=0.5", "end with exactly one http=URL or promql=QUERY"),
        ("over=2s,max=1", "end with exactly one"),
        ("max=x,promql=up", "max='x' is not a number"),
        ("colour=red,max=1,promql=up", "unknown option(s) colour"),
        ("max_error_rate=0.5,over=never,http=http://x/", "'never' is not a duration"),
    ],
)
def test_bad_guard_specs_say_how_to_write_one(text, message):
    with pytest.raises(ConfigError) as err:
        GuardSpec.parse(text)
    assert message in str(err.value)


def test_the_shipped_plans_are_valid():
    for plan in (ROOT / "plans").glob("*.yaml"):
        assert load_plan(plan).experiments


# -- fuzzed: any field of any YAML type ends in a plan or a clear ConfigError ---------------------

_VALID_PLAN = {
    "name": "p",
    "platform": "lab",
    "profile": "resilient",
    "seed": 1,
    "experiments": ["experiments/test_master_ha.py"],
    "guards": [{"http": "http://198.18.0.20/healthz", "max_error_rate": 0.5, "over": "3s"}],
    "slo": {"p99_ms": 300},
    "schedule": "0 3 * * 1",
    "time_limit": "30m",
    "reports": "reports/x",
    "namespaces": ["a"],
    "control_plane": False,
    "topology": "examples/web/topology.yaml",
    "contexts": {},
}


@given(pairs=replacements([(k,) for k in _VALID_PLAN]))
def test_any_field_of_any_type_gives_a_plan_or_a_clear_error(tmp_path_factory, pairs):
    # found by this test: a mapping for platform or profile, null for time_limit and a mapping
    # for reports each ended in a TypeError traceback
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "plan.yaml"
    path.write_text(yaml.safe_dump(replaced(_VALID_PLAN, pairs)))
    try:
        load_plan(path)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith(str(path)) for p in exc.problems), exc.problems
