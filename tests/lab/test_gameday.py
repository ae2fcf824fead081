"""Game days end to end on the lab: a plan runs with progress and leaves a record, a review
with a trend and an Allure report; a breached guard or `chaos abort` reverts every fault in
force and the run says "aborted"."""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from chaos.context import default_journal
from chaos.lab import Lab
from tests.lab.conftest import chaos_cli, machine_snapshot, start_a_run

pytestmark = pytest.mark.lab
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]

GUARDED = """
    from chaos import experiment, kill_service

    @experiment(verifies="failover", hypothesis="the entry point survives losing the traffic manager")
    def test_traffic_manager_loss(platform, steady):
        steady.baseline(seconds=1)
        with kill_service(platform, "gtm"):
            steady.hold(seconds=30, phase="during")
"""


def plan(tmp_path, experiments, *, guards="", name="trial"):
    path = tmp_path / f"{name}.yaml"
    lines = [f"name: {name}", "experiments:"] + [f"  - {e}" for e in experiments]
    lines += [f"reports: {tmp_path / 'reports'}", "time_limit: 5m"]
    path.write_text("\n".join(lines) + "\n" + textwrap.dedent(guards))
    return path


def run_dirs(tmp_path):
    return sorted(p for p in (tmp_path / "reports").iterdir() if p.name != "history")


def test_a_plan_runs_twice_with_progress_record_review_trend_and_report(resilient_lab, tmp_path):
    target = "experiments/test_master_ha.py::test_follower_loss_keeps_writes"
    path = plan(tmp_path, [target])
    first = chaos_cli("gameday", str(path), timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"[1/1] {target}" in first.stdout  # live progress (plain lines off a terminal)
    assert "fault in force: SIGKILL etcd member" in first.stdout
    assert "game day trial: PASSED (exit 0); score 100.0" in first.stdout
    time.sleep(1.1)  # run directories and history entries are named by the second
    second = chaos_cli("gameday", str(path), "--no-html", timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    one, two = run_dirs(tmp_path)
    record = json.loads((one / "run.json").read_text())
    assert record["exit_code"] == 0 and record["score"] == 100.0 and record["passed"] == 1
    for link in ("run.json", "allure-results", "junit.xml", "summary.md", "allure-report/index.html"):
        assert (one / link).exists(), link
        assert link in record["links"].values()
    assert "<testcase" in (one / "junit.xml").read_text()
    env = (one / "allure-results" / "environment.properties").read_text()
    assert f"run record={(one / 'run.json').resolve()}" in env and "seed=0" in env and "etcd=" in env
    assert (one / "allure-results" / "categories.json").exists()
    results = [json.loads(p.read_text()) for p in (one / "allure-results").glob("*-result.json")]
    assert {"timeline"} <= {a["name"] for r in results for a in r["attachments"]}  # the chart
    review = (two / "summary.md").read_text()
    assert review.count("| 100 | 1 | 0 |") == 2  # the trend holds both runs
    assert "0 acknowledged writes lost over the run (bound = 0)" in review


def test_a_breached_guard_aborts_reverts_and_says_so(resilient_lab, tmp_path):
    test_file = tmp_path / "test_guarded.py"
    test_file.write_text(textwrap.dedent(GUARDED))
    guards = """\
        guards:
          - {http: "http://198.18.0.20/healthz", max_error_rate: 0.2, over: 1s}
    """
    out = chaos_cli("gameday", str(plan(tmp_path, [str(test_file)], guards=guards)), "--no-html", timeout=300)
    assert out.returncode == 1, out.stdout
    assert (
        "ABORT: guard breached: [VIOLATED] guard http://198.18.0.20/healthz error rate (last 1 s"
        in out.stdout
    )
    assert "FAILED: chaos.errors.Aborted: aborted: guard breached" in out.stdout
    [run] = run_dirs(tmp_path)
    [exp] = json.loads((run / "summary.json").read_text())["experiments"]
    assert exp["category"] == "aborted"
    assert exp["evidence"]["aborted"]["reverted_after_s"] < 5
    assert default_journal().entries() == []  # every fault reverted
    assert Lab().status().problems == []  # the traffic manager runs again


def test_chaos_abort_from_another_terminal_stops_the_run(resilient_lab, tmp_path):
    rules_before = machine_snapshot()["iptables"]
    proc = start_a_run(
        tmp_path,
        """
        import pathlib
        from chaos import partition

        def test_partitioned(platform, steady):
            with partition(platform, ["m1"], ["m2", "m3"]):
                pathlib.Path({ready!r}).write_text("in force")
                steady.hold(seconds=60)
        """,
    )
    asked = chaos_cli("abort", "stop now")
    assert asked.returncode == 0 and "abort requested (stop now)" in asked.stdout
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "aborted: operator abort (stop now) at t=" in out.decode()
    assert machine_snapshot()["iptables"] == rules_before  # the partition's rules are gone
    assert default_journal().entries() == []


def test_a_promql_guard_aborts_when_prometheus_sees_a_target_down(resilient_lab, tmp_path):
    test_file = tmp_path / "test_gateway_loss.py"
    test_file.write_text(
        textwrap.dedent(
            """
            from chaos import experiment, kill_service

            @experiment(verifies="circuit breaking", hypothesis="losing a gateway goes unnoticed")
            def test_gateway_loss(platform, steady):
                steady.baseline(seconds=1)
                with kill_service(platform, "east-gw1"):
                    steady.hold(seconds=30, phase="during")
            """
        )
    )
    guard = 'max=0,promql=count(up{job="workload"} == 0) or vector(0)'
    out = subprocess.run(
        [*PYTEST, str(test_file), "--chaos-reports", str(tmp_path), "--chaos-guard", guard],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1
    assert 'aborted: guard breached: [VIOLATED] guard count(up{job="workload"} == 0)' in out.stdout
    assert "1 > 0" in out.stdout
    assert default_journal().entries() == []
    assert Lab().status().problems == []  # the gateway was restarted by the abort
