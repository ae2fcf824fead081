"""Failure classes of an experiment's outcome, for the summary and Allure's categories."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# failure classes, in the order they are tried: (key, Allure category, text in the message)
CATEGORIES = (
    ("aborted", "Aborted (stop condition or operator)", "aborted: "),
    ("fault not in effect", "Fault not in effect", "injected but not in effect"),
    ("steady state violated", "Steady state violated", "steady state violated"),
)


def category_of(outcome: str, message: str) -> str:
    """The failure class of one experiment's outcome (``passed`` / ``skipped`` as they are)."""
    if outcome in ("passed", "skipped"):
        return outcome
    return next((key for key, _, marker in CATEGORIES if marker in message), "infrastructure error")


def write_allure_categories(results_dir: Path) -> None:
    """Allure's categories: the failure classes above, and everything else (a test that
    broke, not a hypothesis that failed) as an infrastructure error."""
    cats: list[dict[str, Any]] = [
        {
            "name": title,
            "matchedStatuses": ["failed", "broken"],
            "messageRegex": f"(?s).*{re.escape(marker)}.*",
        }
        for _key, title, marker in CATEGORIES
    ]
    cats.append({"name": "Infrastructure error", "matchedStatuses": ["broken", "failed"]})
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "categories.json").write_text(json.dumps(cats, indent=2))
