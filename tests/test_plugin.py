"""The pytest plugin, exercised through pytester as a user would run it."""

import json
import subprocess
import sys

import pytest

PROBE_EXPERIMENT = """
from chaos import experiment

@experiment(verifies="steady state", hypothesis="a healthy function stays healthy")
def test_healthy(steady):
    probe = steady.watch("fn", lambda: 1, hz=50)
    steady.baseline(seconds=0.5)
    steady.expect(probe.availability() >= {bound}, probe.latency(90) <= 1000)
"""


def test_bad_options_are_usage_errors_that_say_how_to_fix_them(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--lab-profile", "sturdy", "--chaos-fault-ttl", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--lab-profile 'sturdy': choose one of resilient, fragile" in err
    assert "--chaos-fault-ttl: 'soon' is not a duration; write e.g. 500ms, 5s, 2m or 1h" in err
    assert "Traceback" not in err


def test_bad_slo_override_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--chaos-slo", "p99_ms", "--chaos-slo", "x=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--chaos-slo 'p99_ms': write NAME=NUMBER" in err and "--chaos-slo 'x=fast'" in err


def test_slo_fixture_takes_overrides(pytester):
    pytester.makepyfile(
        """
        def test_x(slo):
            assert slo("p99_ms", 250) == 12.5
            assert slo("availability", 0.99) == 0.99
        """
    )
    pytester.runpytest_subprocess("--chaos-slo", "p99_ms=12.5").assert_outcomes(passed=1)


def test_platform_kube_without_clusters_is_refused_clearly(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--platform", "kube", "--kube-context", "east=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--kube-context 'east=': write ROLE=CONTEXT, e.g. east=kind-east" in err
    assert "--platform kube needs --kube-context ROLE=CONTEXT" in err
    assert "--platform kube needs a blast radius: --kube-namespace NAMESPACE" in err


def test_markers_are_declared_for_strict_markers(pytester):
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.lab
        @pytest.mark.experiment(verifies="HA", hypothesis="h")
        def test_x(): pass
        """
    )
    result = pytester.runpytest_subprocess("--strict-markers", "--co", "-q")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_x*"])


def test_experiment_writes_summary_and_allure_evidence(pytester):
    pytester.makepyfile(PROBE_EXPERIMENT.format(bound=0.99))
    allure_dir = pytester.path / "allure"
    result = pytester.runpytest_subprocess("--alluredir", str(allure_dir), "--chaos-reports", "out")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*chaos experiments*", "PASSED*test_healthy*[[]steady state[]]*"])
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    [rec] = summary["experiments"]
    assert rec["outcome"] == "passed"
    assert rec["figures"]["fn availability [all]"] == 1.0
    assert rec["evidence"]["probes"]["fn"]["samples"] >= 5
    [res] = [json.loads(p.read_text()) for p in allure_dir.glob("*-result.json")]
    labels = {(x["name"], x["value"]) for x in res["labels"]}
    assert ("epic", "steady state") in labels
    assert res["description"] == "a healthy function stays healthy"
    assert [s["name"] for s in res["steps"]][:2] == ["baseline", "verify"]
    # each check judged is a step of the verification, read as a sentence with its bound
    checks = {c["name"]: c["status"] for s in res["steps"] if s["name"] == "verify" for c in s["steps"]}
    assert checks["fn available 100 % of the time over the run (bound ≥ 99 %)"] == "passed"
    assert [name for name in checks if name.startswith("fn p90 latency ")] != []
    result.stdout.fnmatch_lines(["*fn available 100 % of the time over the run (bound ≥ 99 %)"])
    kinds = {a["name"]: a["type"] for a in res["attachments"]}
    assert kinds == {"timeline": "image/png", "probe samples": "text/csv", "evidence": "application/json"}


def test_a_violated_slo_fails_the_experiment_with_the_numbers(pytester):
    pytester.makepyfile(PROBE_EXPERIMENT.format(bound=1.01))  # tighter than any probe can meet
    allure_dir = pytester.path / "allure"
    result = pytester.runpytest_subprocess("--chaos-reports", "out", "--alluredir", str(allure_dir))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SteadyStateViolation: steady state violated (1 of 2 checks):",
            "*[[]VIOLATED[]] fn availability (all*1 < 1.01*",
        ]
    )
    result.stdout.fnmatch_lines(["*fn available 100 % of the time over the run (VIOLATED, bound ≥ 101 %)"])
    [res] = [json.loads(p.read_text()) for p in allure_dir.glob("*-result.json")]
    checks = {c["name"]: c["status"] for s in res["steps"] if s["name"] == "verify" for c in s["steps"]}
    assert checks["fn available 100 % of the time over the run (VIOLATED, bound ≥ 101 %)"] == "failed"
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["failed"] == 1
    assert "fn availability" in summary["experiments"][0]["message"]


def test_dry_run_prints_the_plan_and_injects_nothing(pytester, tmp_path):
    marker = tmp_path / "injected"
    pytester.makepyfile(
        f"""
        from chaos import Fault, experiment, register_undo

        @register_undo("test.touch")
        def undo(data):
            pass

        class Touch(Fault):
            def describe(self):
                return "touch a file"
            def inject(self):
                self.journaled("test.touch", {{}}, "nothing")
                open({str(marker)!r}, "w").close()
            def verify(self):
                pass

        @experiment(verifies="HA", hypothesis="h")
        def test_x(steady, chaos_context):
            with Touch(chaos_context):
                pass
        """
    )
    result = pytester.runpytest_subprocess("--dry-run", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*dry run: would touch a file*"])
    assert not marker.exists()


def test_importing_the_plugin_imports_nothing_heavy():
    code = (
        "import sys, chaos.plugin, chaos;"
        "heavy = [m for m in ('matplotlib', 'allure', 'locust', 'gevent', 'kubernetes', 'pyroute2', 'httpx')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugin_is_registered_through_the_entry_point():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert eps.get("chaos") == "chaos.plugin"


SKIP_OR_ERROR = """
from chaos import Fault, NotSupported, experiment, register_undo

@register_undo("test.nothing")
def undo(data):
    pass

class Nothing(Fault):
    def describe(self):
        return "change nothing"
    def inject(self):
        self.journaled("test.nothing", {}, "nothing")
    def verify(self):
        pass

def unsupported():
    raise NotSupported("this platform has no such thing")

@experiment(verifies="HA", hypothesis="h")
def test_unsupported_before_any_fault(steady):
    probe = steady.watch("thing", unsupported, hz=50)
    steady.baseline(seconds=0.2)
    steady.expect(probe.availability() >= 0.9)

@experiment(verifies="HA", hypothesis="h")
def test_unsupported_after_a_fault(steady, chaos_context):
    fine = steady.watch("fine", lambda: 1, hz=50)
    steady.baseline(seconds=0.2)
    with Nothing(chaos_context):
        steady.watch("thing", unsupported, hz=50)
        steady.hold(seconds=0.2)
        steady.expect(fine.availability("during") >= 1.01)  # violated, and still reported

@experiment(verifies="HA", hypothesis="h")
def test_fault_unsupported_after_another_fault(steady, chaos_context):
    fine = steady.watch("fine", lambda: 1, hz=50)
    steady.baseline(seconds=0.2)
    with Nothing(chaos_context):
        raise NotSupported("the second fault cannot be made here")
"""


def test_not_supported_skips_only_before_the_first_fault(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("CHAOS_STATE_DIR", str(tmp_path / "state"))
    pytester.makepyfile(SKIP_OR_ERROR)
    result = pytester.runpytest_subprocess("--chaos-reports", "out", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1, failed=2)
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    by_name = {e["nodeid"].split("::")[1]: e for e in summary["experiments"]}
    assert by_name["test_unsupported_before_any_fault"]["outcome"] == "skipped"
    after = by_name["test_unsupported_after_a_fault"]
    assert (after["outcome"], after["category"]) == ("failed", "infrastructure error")
    assert after["violated"] == ["fine availability [during]"]  # judged, kept as evidence
    assert after["preconditions_held"] is True
    second = by_name["test_fault_unsupported_after_another_fault"]
    assert (second["outcome"], second["category"]) == ("failed", "infrastructure error")
    assert (summary["asked"], summary["ran"], summary["complete"]) == (3, 2, False)


def test_a_dry_run_of_an_experiment_without_a_fault_is_skipped_not_passed(pytester):
    pytester.makepyfile(PROBE_EXPERIMENT.format(bound=0.99))
    result = pytester.runpytest_subprocess(
        "--dry-run", "-rs", "--chaos-reports", "out", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*dry run: nothing injected, nothing observed, no verdict (probes: fn)*"])
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert [e["outcome"] for e in summary["experiments"]] == ["skipped"]
    assert summary["complete"] is False
