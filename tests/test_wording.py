"""Findings read as sentences with their units, windows and bounds; the review's "why" names
the first violated check with its number and bound."""

import pytest

from chaos.review import markdown
from chaos.wording import figure_sentences, first_violated, sentence, split_label


def finding(name, window, measured, unit="", *, op="<=", bound=5.0, passed=True):
    return {
        "label": f"{name} [{window}]",
        "name": name,
        "window": window,
        "measured": measured,
        "unit": unit,
        "op": op,
        "bound": bound,
        "passed": passed,
        "stage": "hypothesis",
    }


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (
            finding("writes time to recover", "during", 0.94, " s"),
            "writes recovered 0.94 s into the fault (bound ≤ 5 s)",
        ),
        (
            finding("writes time to recover after revert", "recovery", 2.5, " s", bound=10),
            "writes recovered 2.5 s after the revert (bound ≤ 10 s)",
        ),
        (
            finding("writes time to recover", "during", None, " s", passed=False),
            "writes recovered: never, during the fault (VIOLATED, bound ≤ 5 s)",
        ),
        (
            finding("entry failover to west", "during", 0.29, " s"),
            "entry failover to west 0.29 s into the fault (bound ≤ 5 s)",
        ),
        (
            finding("old leader caught up after healing", "recovery", 0.5, " s", bound=10),
            "old leader caught up 0.5 s after the revert (bound ≤ 10 s)",
        ),
        (
            finding("orders availability", "baseline", 0.995, op=">=", bound=0.99),
            "orders available 99.5 % of the time in the baseline (bound ≥ 99 %)",
        ),
        (
            finding("writes lost (acknowledged)", "all", 3, op="==", bound=0, passed=False),
            "3 acknowledged writes lost over the run (VIOLATED, bound = 0)",
        ),
        (
            finding("orders p99 latency", "during", 212.2, " ms", bound=1000),
            "orders p99 latency 212.2 ms during the fault (bound ≤ 1000 ms)",
        ),
        (
            finding("recommendations share shed", "during", 0.7395, op=">=", bound=0.2),
            "73.95 % of recommendations shed during the fault (bound ≥ 20 %)",
        ),
        (
            finding("east breaker state max", "during", 2, op=">=", bound=2),
            "east breaker state peaked at 2 during the fault (bound ≥ 2)",
        ),
        (
            finding("entry error rate", "last 3 s", 0.6, op="<=", bound=0.5, passed=False),
            "60 % of entry samples failed in the last 3 s (VIOLATED, bound ≤ 50 %)",
        ),
        (
            finding("registers linearizable", "all", 0, op="==", bound=1, passed=False),
            "registers NOT linearizable over the run",
        ),
        (
            finding("a shape of its own", "spike", 7, op="<=", bound=9),
            "a shape of its own: 7 in phase 'spike' (bound ≤ 9)",
        ),
    ],
)
def test_a_finding_reads_as_a_sentence_with_unit_window_and_bound(f, expected):
    assert sentence(f) == expected


def test_records_without_findings_read_from_their_figures_and_units():
    record = {
        "figures": {"writes time to recover [during]": 1.06},
        "units": {"writes time to recover [during]": "s"},
    }
    assert figure_sentences(record) == ["writes recovered 1.06 s into the fault"]
    assert split_label("writes lost (acknowledged) [all]") == ("writes lost (acknowledged)", "all")
    assert first_violated(record) == ""


def test_the_review_says_what_failed_first_with_its_number_and_bound():
    failed = finding("writes time to recover", "during", 7.25, " s", passed=False)
    record = {
        "nodeid": "experiments/test_x.py::test_leader_loss",
        "verifies": "HA",
        "outcome": "failed",
        "category": "steady state violated",
        "message": "chaos.errors.SteadyStateViolation: steady state violated (1 of 2 checks):\n  ...",
        "figures": {failed["label"]: 7.25},
        "units": {failed["label"]: "s"},
        "evidence": {
            "findings": [finding("writes availability", "baseline", 1.0, op=">=", bound=0.99), failed]
        },
    }
    summary = {"generated": "t", "environment": {}, "experiments": [record], "asked": 1}
    text = markdown(summary, [], {})
    row = next(line for line in text.splitlines() if "test_leader_loss" in line)
    assert row.endswith("| writes recovered 7.25 s into the fault (VIOLATED, bound ≤ 5 s) |")
    assert "writes available 100 % of the time in the baseline (bound ≥ 99 %)" in row
    assert "SteadyStateViolation" not in row
    # with no finding to name, the failure's own first line, past its exception's name
    record["evidence"] = {}
    text = markdown(summary, [], {})
    assert "| steady state violated (1 of 2 checks): |" in text
