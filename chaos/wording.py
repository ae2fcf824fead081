"""How a finding reads to a person: a sentence with its unit, its window and its bound.

"writes recovered 0.94 s into the fault (bound ≤ 5 s)", not "writes time to recover [during]:
0.9383". The label ("writes time to recover [during]") stays what machines match on (negative
controls, summary.json, ``chaos checks``); the sentence is for the review, the terminal and the
game-day view. The measures' names follow a few shapes (see ``chaos.watched`` and the other
probes); a name of any other shape reads as "name: value".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from chaos.units import shown, unit_of

SYMBOL = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "="}
_WINDOW = {
    "baseline": "in the baseline",
    "during": "during the fault",
    "recovery": "after the fault",
    "all": "over the run",
}

Phrase = Callable[[re.Match[str], str, str], str]


def _timed(what: Callable[[re.Match[str]], str]) -> Phrase:
    def phrase(m: re.Match[str], value: str, window: str) -> str:
        return _after_fault(what(m), value, window)

    return phrase


def _after_fault(what: str, value: str, window: str) -> str:
    """A time from the fault's injection (window "during") or its revert ("recovery")."""
    if value == "no value":
        return f"{what}: never, {_in(window)}"
    if window == "recovery":
        # "caught up after revert" reads "caught up 0.2 s after the revert"
        return f"{re.sub(r' after (revert|healing)$', '', what)} {value} after the revert"
    if window == "during":
        return f"{what} {value} into the fault"
    return f"{what} after {value} ({_in(window)})"


def _plain(template: str) -> Phrase:
    def phrase(m: re.Match[str], value: str, window: str) -> str:
        return f"{template.format(value=value, **m.groupdict())} {_in(window)}"

    return phrase


# first match wins: the more specific shapes first
_SHAPES: list[tuple[re.Pattern[str], Phrase]] = [
    (re.compile(r"(?P<s>.+) time to recover( after revert)?"), _timed(lambda m: f"{m['s']} recovered")),
    (re.compile(r"(?P<s>.+) time until (?P<what>.+)"), _timed(lambda m: f"{m['s']}: {m['what']}")),
    (re.compile(r"(?P<s>.+) availability"), _plain("{s} available {value} of the time")),
    (re.compile(r"(?P<s>.+) lost \(acknowledged\)"), _plain("{value} acknowledged {s} lost")),
    (re.compile(r"(?P<s>.+) downtime"), _plain("{s} down for {value}")),
    (re.compile(r"(?P<s>.+) failed (?P<what>samples|requests)"), _plain("{value} failed {s} {what}")),
    (re.compile(r"(?P<s>.+) error rate"), _plain("{value} of {s} samples failed")),
    (re.compile(r"(?P<s>.+) (?P<p>p[\d.]+) latency"), _plain("{s} {p} latency {value}")),
    (re.compile(r"(?P<s>.+) share (?P<what>.+)"), _plain("{value} of {s} {what}")),
    (re.compile(r"(?P<s>.+) max"), _plain("{s} peaked at {value}")),
    (re.compile(r"(?P<s>.+) min"), _plain("{s} never below {value}")),
    (re.compile(r"(?P<s>.+) stale reads"), _plain("{value} stale reads of {s}")),
    (re.compile(r"(?P<s>.+) changes"), _plain("{s} changed {value} times")),
    (re.compile(r"(?P<s>.+) failure tolerance"), _plain("{s} could lose {value}")),
]


def _in(window: str) -> str:
    if window in _WINDOW:
        return _WINDOW[window]
    return f"in the {window}" if window.startswith("last ") else f"in phase {window!r}"


def split_label(label: str) -> tuple[str, str]:
    """ "writes time to recover [during]" -> ("writes time to recover", "during")."""
    m = re.fullmatch(r"(.*) \[([^\]]*)\]", label)
    return (m[1], m[2]) if m else (label, "all")


def bound_of(finding: dict[str, Any]) -> str:
    """The bound as a person reads it: "≤ 5 s", "≥ 99 %"; "" when the finding has none."""
    op, bound = finding.get("op"), finding.get("bound")
    if op not in SYMBOL or not isinstance(bound, (int, float)):
        return ""
    return f"{SYMBOL[op]} {shown(float(bound), unit_of(finding))}"


def sentence(finding: dict[str, Any], *, bound: bool = True) -> str:
    """One finding (``Finding.as_dict()``, or just ``name``/``window``/``measured``/``unit``)
    as a sentence; with its bound, and "VIOLATED" when it failed."""
    name = str(finding.get("name") or "")
    window = str(finding.get("window") or "all")
    measured = finding.get("measured")
    number = measured if isinstance(measured, (int, float)) and not isinstance(measured, bool) else None
    value = "no value" if number is None else shown(float(number), unit_of(finding))
    text = ""
    if name.endswith(" linearizable") and number is not None:
        verdict = "linearizable" if number == 1 else "NOT linearizable"
        text = f"{name.removesuffix(' linearizable')} {verdict} {_in(window)}"
    for pattern, phrase in _SHAPES if not text else []:
        m = pattern.fullmatch(name)
        if m:
            text = phrase(m, value, window)
            break
    if not text and unit_of(finding) == "s" and window in ("during", "recovery"):
        # a condition met after a fault or its revert, named by the experiment ("failover to west")
        text = _after_fault(name, value, window)
    if not text:
        text = f"{name}: {value} {_in(window)}" if name else value
    seen = (finding.get("detail") or {}).get("seen")
    if number is None and seen:
        # a condition never met: what was read instead ("replaced: never ..., read 1 → 2")
        text += f", read {seen}"
    # "linearizable" says its verdict itself; a bound of "= 1" would only confuse
    limit = bound_of(finding) if bound and not name.endswith(" linearizable") else ""
    if not limit:
        return text
    verdict = "VIOLATED, " if finding.get("passed") is False else ""
    return f"{text} ({verdict}bound {limit})"


def figure_sentences(record: dict[str, Any]) -> list[str]:
    """Every figure of an experiment record (summary.json) as a sentence: from its findings
    (with bounds) when the record carries them, else from its figures and units."""
    findings = (record.get("evidence") or {}).get("findings") or []
    if findings:
        return [sentence(f) for f in findings]
    units = record.get("units") or {}
    out = []
    for label, value in (record.get("figures") or {}).items():
        name, window = split_label(label)
        unit = units.get(label, "")
        out.append(sentence({"name": name, "window": window, "measured": value, "unit": unit}))
    return out


def first_violated(record: dict[str, Any]) -> str:
    """The first violated check of a record as a sentence with its number and bound; "" if none."""
    for f in (record.get("evidence") or {}).get("findings") or []:
        if f.get("passed") is False:
            return sentence(f)
    return ""
