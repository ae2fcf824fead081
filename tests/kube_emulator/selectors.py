"""Label, field and LabelSelector matching as the API server does it."""

from __future__ import annotations

import re
from typing import Any

FIELDS = {
    "pods": {
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "deployments": {"metadata.name", "metadata.namespace"},
    "statefulsets": {"metadata.name", "metadata.namespace", "status.successful"},
}
_SET = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")


def _terms(selector: str) -> list[str]:
    """Split on the commas outside parentheses (``app in (a,b),tier=web`` is two terms)."""
    out, depth, cur = [], 0, ""
    for ch in selector:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t for t in (x.strip() for x in out) if t]


def label_problem(selector: str) -> str | None:
    """What a real API server answers 400 for, or None when the selector parses."""
    for term in _terms(selector):
        if not (_EQ.match(term) or _SET.match(term)):
            return f"unable to parse requirement: {term!r}: found unexpected token"
    return None


def field_problem(resource: str, selector: str) -> str | None:
    for term in _terms(selector):
        key = re.split(r"!=|==|=", term, maxsplit=1)[0].strip()
        if resource in FIELDS and key not in FIELDS[resource]:
            return f'field label not supported: "{key}"'
        if not re.search(r"!=|==|=", term):
            return f"invalid selector: '{selector}'; can't understand '{term}'"
    return None


def matches_labels(labels: dict[str, str], selector: str) -> bool:
    for term in _terms(selector):
        eq = _EQ.match(term)
        if eq:
            key, op, value = eq.groups()
            if (labels.get(key) == value) == (op == "!="):
                return False
            continue
        found = _SET.match(term)
        if found is None:
            return False
        neg, key, op, values = found.groups()
        wanted = {v.strip() for v in (values or "").split(",") if v.strip()}
        ok = {
            "in": key in labels and labels[key] in wanted,
            "notin": labels.get(key) not in wanted,
            None: (key in labels) != bool(neg),
        }[op]
        if not ok:
            return False
    return True


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def field(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        value = str(field(obj, k.strip().rstrip("=")) or "")
        if (value == v.strip().lstrip("=")) == neg:
            return False
    return True
