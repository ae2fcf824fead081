"""The unit of each figure an experiment reports, and how a person reads it: latencies in ms,
times in s, shares as percentages, counts as plain numbers. The figures themselves stay plain
numbers in summary.json (``figures``), their units beside them (``units``)."""

from __future__ import annotations

from typing import Any

# measures that count events, by how their names end
_COUNTS = ("lost (acknowledged)", "failed samples", "changes", "stale reads", "failed requests")


def unit_of(finding: dict[str, Any]) -> str:
    """A finding's unit: the one its measure declares, else the one its name implies."""
    declared = str(finding.get("unit") or "").strip()
    if declared:
        return declared
    name = str(finding.get("name") or "")
    if name.endswith(("availability", "error rate")) or " share " in name:
        return "share"
    if name.endswith(_COUNTS):
        return "count"
    return ""


def shown(value: float | None, unit: str) -> str:
    """``value`` as a person reads it: "99.5 %", "16.2 ms", "1.06 s", "0"."""
    if value is None:
        return "n/a"
    if unit == "share":
        return f"{value * 100:.4g} %"
    if unit in ("", "count"):
        return f"{value:.4g}"
    return f"{value:.4g} {unit}"
