"""Failure classes of an experiment's outcome, for the summary and Allure's categories.

The class comes from the type of what ended the experiment, never from its message: a
message can quote any text, a type says what happened.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chaos.errors import Aborted, ConfigError, FaultNotInEffect, PreconditionNotMet, SteadyStateViolation

# failure classes, most specific first: (key, Allure category, exception type)
CATEGORIES: tuple[tuple[str, str, type[BaseException]], ...] = (
    ("aborted", "Aborted (stop condition or operator)", Aborted),
    ("fault not in effect", "Fault not in effect", FaultNotInEffect),
    ("precondition not met", "Precondition not met (the hypothesis was not judged)", PreconditionNotMet),
    ("steady state violated", "Steady state violated", SteadyStateViolation),
    ("usage error", "Usage error (the experiment asked for something invalid)", ConfigError),
)
INFRASTRUCTURE = "infrastructure error"


def category_of(outcome: str, failure: BaseException | None) -> str:
    """The failure class of one experiment's outcome (``passed`` / ``skipped`` as they are).

    Anything that is not one of the classes above is an infrastructure error: the platform or
    the tooling broke, and the hypothesis was never judged to the end."""
    if outcome in ("passed", "skipped"):
        return outcome
    if failure is None:
        return INFRASTRUCTURE
    return next((key for key, _, kind in CATEGORIES if isinstance(failure, kind)), INFRASTRUCTURE)


def write_allure_categories(results_dir: Path) -> None:
    """Allure's categories: the failure classes above, matched on the exception's type in the
    trace, and everything else (a test that broke, not a hypothesis that failed) as an
    infrastructure error."""
    cats: list[dict[str, Any]] = [
        {
            "name": title,
            "matchedStatuses": ["failed", "broken"],
            "traceRegex": f"(?s).*{re.escape(kind.__module__ + '.' + kind.__qualname__)}.*",
        }
        for _key, title, kind in CATEGORIES
    ]
    cats.append({"name": "Infrastructure error", "matchedStatuses": ["broken", "failed"]})
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "categories.json").write_text(json.dumps(cats, indent=2))
