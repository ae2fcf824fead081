"""One exception root for everything the framework raises.

User mistakes also subclass a built-in so callers can catch them idiomatically
(``ConfigError`` is a ``ValueError``); a failed hypothesis is an ``AssertionError`` so
pytest reports it as a test failure, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ChaosError(Exception):
    """Root of every exception the chaos framework raises."""

    # True when waiting cannot change it (a permission refused): waits stop at once
    lasting: bool = False


class ConfigError(ChaosError, ValueError):
    """The caller asked for something invalid; the message says what and how to fix it."""

    lasting = True  # asking again cannot make it valid

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("; ".join(self.problems))


class EnvironmentNotReady(ChaosError):
    """The machine lacks something the lab needs (root, a binary, a free name)."""


class UnsafeFaultRefused(ChaosError):
    """A fault would exceed its safety bound (e.g. take etcd below quorum); nothing was changed."""


class FaultNotInEffect(ChaosError):
    """A fault was injected but its effect could not be observed; it has been reverted."""


class RollbackError(ChaosError):
    """One or more undo steps failed; ``__cause__`` is an ``ExceptionGroup`` of every failure."""


class PlatformError(ChaosError):
    """The platform (lab processes, cluster API) did not do what it was asked."""


class ObservationError(PlatformError):
    """Something the verdict rests on could not be observed (a permission missing, a timeout, an
    endpoint the platform does not expose). Never evidence that the thing is down: a check
    that meets one is an infrastructure error, not a violated hypothesis."""

    def __init__(self, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting


class SteadyStateViolation(ChaosError, AssertionError):
    """A steady-state hypothesis did not hold; carries the measured evidence."""

    def __init__(self, message: str, evidence: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.evidence: list[dict[str, Any]] = list(evidence)


class PreconditionNotMet(SteadyStateViolation):
    """What the experiment needs of the platform is not there (``steady.require``: a member to
    spare, a reserve to scale into): the hypothesis was never judged, so the run is red without
    saying anything about it."""


class Aborted(ChaosError, AssertionError):
    """The run was stopped early (a guard breached, or an operator's abort); every fault in
    force was reverted. Carries when and why, and how long the revert took."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence: dict[str, Any] = dict(evidence or {})


class NotSupported(ChaosError):
    """The platform cannot do what the experiment asks (yet, or at all); experiments skip."""


class DryRunPlan(ChaosError):
    """Raised by a fault in dry-run mode after resolving its targets; nothing was changed."""
