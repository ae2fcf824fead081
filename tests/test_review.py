"""The review of runs: failure classes, the score, regressions against earlier runs, and the
one-page summary with its trend, rendered from real summary files."""

import json

import pytest

from chaos import Aborted, ConfigError, FaultNotInEffect, NotSupported, PlatformError, SteadyStateViolation
from chaos.categories import category_of, write_allure_categories
from chaos.review import (
    complete,
    completeness,
    load_summary,
    markdown,
    regressions,
    runs,
    score,
    write_review,
)

CATEGORY_OF = {"aborted: x": "aborted", "steady state violated (1 of 1 checks)": "steady state violated"}


def summary(generated, *experiments, asked=None):
    exps = [
        {
            "nodeid": f"experiments/test_x.py::{name}",
            "verifies": "HA",
            "outcome": outcome,
            "category": outcome if outcome in ("passed", "skipped") else CATEGORY_OF.get(message, "?"),
            "message": message,
            "figures": figures,
        }
        for name, outcome, message, figures in experiments
    ]
    doc = {
        "generated": generated,
        "environment": {"platform": "lab", "profile": "resilient", "seed": 0},
        "experiments": exps,
        "passed": sum(e["outcome"] == "passed" for e in exps),
        "failed": sum(e["outcome"] == "failed" for e in exps),
    }
    if asked is not None:
        doc["asked"] = asked
    return doc


@pytest.mark.parametrize(
    ("outcome", "failure", "category"),
    [
        ("passed", None, "passed"),
        ("skipped", None, "skipped"),
        ("failed", Aborted("aborted: guard breached: [VIOLATED] ..."), "aborted"),
        (
            "failed",
            FaultNotInEffect("kill: injected but not in effect: still running"),
            "fault not in effect",
        ),
        ("failed", SteadyStateViolation("steady state violated (1 of 2 checks)"), "steady state violated"),
        ("failed", ConfigError("orders p99 latency (during): 40 samples are too few"), "usage error"),
        ("error", PlatformError("the lab is not healthy"), "infrastructure error"),
        # after the first fault a probe the platform cannot serve is an error, never a skip
        ("failed", NotSupported("no such probe here"), "infrastructure error"),
        # the class comes from the type, not from text the message happens to quote
        ("failed", PlatformError("steady state violated (1 of 2 checks)"), "infrastructure error"),
        ("failed", None, "infrastructure error"),
    ],
)
def test_failure_classes_come_from_the_exception_type(outcome, failure, category):
    assert category_of(outcome, failure) == category


def test_allure_categories_match_the_failure_classes_by_type(tmp_path):
    import re

    write_allure_categories(tmp_path)
    cats = json.loads((tmp_path / "categories.json").read_text())
    assert [c["name"] for c in cats][-1] == "Infrastructure error"
    aborted = next(c for c in cats if c["name"].startswith("Aborted"))
    assert re.match(aborted["traceRegex"], "x\nE   chaos.errors.Aborted: aborted: guard breached at t=1.0s")
    assert not re.match(aborted["traceRegex"], "E   chaos.errors.SteadyStateViolation: aborted: quoted text")


def test_score_counts_every_experiment_asked_for():
    doc = summary(
        "t1",
        ("a", "passed", "", {}),
        ("b", "failed", "aborted: x", {}),
        ("c", "passed", "", {}),
        ("d", "skipped", "", {}),
    )
    assert score(doc) == pytest.approx(50.0)  # the skipped one counts as not passed
    assert not complete(doc)
    assert completeness(doc) == "INCOMPLETE: 3 of 4 ran (1 skipped, 0 not reached)"
    # a run that skips nearly everything can never score 100
    mostly_skipped = summary("t2", ("a", "passed", "", {}), *[(f"s{i}", "skipped", "", {}) for i in range(9)])
    assert score(mostly_skipped) == pytest.approx(10.0)
    # experiments never reached (an interrupted run) count too
    interrupted = summary("t3", ("a", "passed", "", {}), asked=4)
    assert score(interrupted) == pytest.approx(25.0)
    assert completeness(interrupted) == "INCOMPLETE: 1 of 4 ran (0 skipped, 3 not reached)"
    assert complete(summary("t4", ("a", "passed", "", {}), asked=1))
    assert score(summary("t0", asked=0)) is None


def test_slower_recovery_and_a_verdict_flip_are_regressions():
    before = [
        summary("t1", ("a", "passed", "", {"writes time to recover [during]": 1.0, "writes lost [all]": 0})),
        summary("t2", ("a", "passed", "", {"writes time to recover [during]": 1.2, "writes lost [all]": 0})),
    ]
    now = summary("t3", ("a", "failed", "steady state violated", {"writes time to recover [during]": 2.0}))
    found = [r.line() for r in regressions(now, before)]
    assert found == [
        "experiments/test_x.py::a: passed before, failed now",
        "experiments/test_x.py::a: writes time to recover [during]: 2 s, was 1.1 s (median)",
    ]
    # within 25 % (or 0.1 s) of the median is noise, not a regression; non-time figures never are
    same = summary(
        "t3", ("a", "passed", "", {"writes time to recover [during]": 1.3, "writes lost [all]": 9})
    )
    assert regressions(same, before) == []


def test_two_runs_render_a_summary_with_trend(tmp_path):
    reports = tmp_path / "reports"
    first = reports / "one" / "summary.json"
    first.parent.mkdir(parents=True)
    first.write_text(
        json.dumps(summary("2026-11-26T10:00:00Z", ("a", "passed", "", {"failover to west [during]": 0.3})))
    )
    write_review(first, reports)
    second = reports / "two" / "summary.json"
    second.parent.mkdir(parents=True)
    second.write_text(
        json.dumps(
            summary(
                "2026-11-26T11:00:00Z",
                ("a", "passed", "", {"failover to west [during]": 0.9}),
                ("b", "failed", "steady state violated (1 of 1 checks)", {}),
            )
        )
    )
    md, page = write_review(second, reports, {"Allure report": "allure-report/index.html"})
    text = md.read_text()
    assert "**Score: 50 / 100** — 1 passed, 1 failed, 0 skipped — complete" in text
    assert "| 2026-11-26T10:00:00Z | 100 | 1 | 0 | 0 | yes |" in text
    assert "| 2026-11-26T11:00:00Z | 50 | 1 | 1 | 0 | yes |" in text
    assert "failover to west [during]: 0.9 s, was 0.3 s (median)" in text
    assert "| b | HA | failed (steady state violated) |" in text
    assert "- Allure report: allure-report/index.html" in text
    assert '<a href="allure-report/index.html">' in page.read_text()
    assert len(runs(reports)) == 2
    write_review(second, reports)  # reviewing the same run again does not add it twice
    assert len(runs(reports)) == 2


def test_a_missing_or_foreign_summary_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no run summary at"):
        load_summary(tmp_path / "summary.json")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ConfigError, match="is not a run summary"):
        load_summary(tmp_path / "x.json")
    assert "none against the previous runs" in markdown(summary("t", ("a", "passed", "", {})), [], {})


def test_the_review_shows_skips_with_their_reason_and_an_incomplete_run():
    doc = summary(
        "t1",
        ("a", "passed", "", {}),
        ("b", "skipped", "not on platform kube: no Prometheus URL", {}),
        asked=3,
    )
    text = markdown(doc, [], {})
    assert "**Score: 33.3 / 100** — 1 passed, 0 failed, 1 skipped — INCOMPLETE: 1 of 3 ran" in text
    assert "| b | HA | skipped |  | not on platform kube: no Prometheus URL |" in text


def test_every_figure_is_shown_with_its_unit():
    from chaos.units import shown, unit_of

    doc = summary(
        "t1",
        (
            "a",
            "passed",
            "",
            {
                "orders p99 latency [during]": 16.24,
                "writes time to recover [during]": 1.06,
                "orders availability [during]": 0.995,
                "writes lost (acknowledged) [all]": 0,
                "masters failure tolerance [all]": 1,
            },
        ),
    )
    doc["experiments"][0]["units"] = {
        "orders p99 latency [during]": "ms",
        "writes time to recover [during]": "s",
        "orders availability [during]": "share",
        "writes lost (acknowledged) [all]": "count",
        "masters failure tolerance [all]": "members",
    }
    text = markdown(doc, [], {})
    for figure in (
        "orders p99 latency 16.24 ms during the fault",
        "writes recovered 1.06 s into the fault",
        "orders available 99.5 % of the time during the fault",
        "0 acknowledged writes lost over the run",
        "masters could lose 1 members over the run",
    ):
        assert figure in text
    # a unit the measure declares wins; otherwise the name says what it is
    assert unit_of({"name": "orders p99 latency", "unit": " ms"}) == "ms"
    assert unit_of({"name": "recommendations share shed", "unit": ""}) == "share"
    assert unit_of({"name": "writes lost (acknowledged)", "unit": ""}) == "count"
    assert unit_of({"name": "east breaker state max", "unit": ""}) == ""
    assert shown(None, "ms") == "n/a"
