"""Exploring fault schedules: a property (``trial``) run over schedules hypothesis draws, each
in a context of its own, within a budget of schedules and of wall time; a failure shrunk to
the smallest schedule that still breaks it, recorded to replay exactly.

The ``explore`` fixture gives an ``Explorer``; ``--chaos-replay FILE`` makes it run the
recorded schedule once instead of exploring. Hypothesis's settings for real-time runs are
set here (no deadline, the example database under the reports directory), so experiments do
not need to know them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from chaos.context import RunContext
from chaos.errors import Aborted, DryRunPlan, NotSupported
from chaos.platform import Platform
from chaos.schedules import Schedule, run_schedule
from chaos.steady import Steady

SEARCH_SHARE = 0.8  # of an exploration's budget; the rest takes needless steps out of a failure

# the property: given a fresh Steady (its own timeline) and a function that runs the schedule
# as the "during" phase, start probes, run it, and judge the invariants with steady.expect
Trial = Callable[[Steady, Callable[[], None]], None]


@dataclass
class Exploration:
    """What an exploration did: schedules tried, the smallest failing one (if any)."""

    tried: int = 0
    faults: int = 0
    failures: int = 0
    found_at: int = 0  # the schedule (1-based) that failed first; the rest shrank it
    every_step_needed: bool = False  # checked: without any one step, the minimal one passes
    minimal: Schedule | None = None
    error: BaseException | None = None
    steady: Steady | None = None  # the minimal failing schedule's, for its evidence
    progress: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "tried": self.tried,
            "faults injected": self.faults,
            "failing schedules": self.failures,
            "first failure at schedule": self.found_at or None,
            "every step needed (checked)": self.every_step_needed,
            "minimal": None if self.minimal is None else self.minimal.to_json(),
        }


def write_record(path: Path, nodeid: str, environment: dict[str, Any], result: Exploration) -> None:
    """The minimal failing schedule as a small JSON file: what ``--chaos-replay`` and ``chaos
    replay`` run again."""
    if result.minimal is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "nodeid": nodeid,
        "environment": environment,
        "error": f"{type(result.error).__name__}: {result.error}" if result.error else None,
        "tried": result.tried,
        "schedule": result.minimal.to_json(),
    }
    path.write_text(json.dumps(doc, indent=2, default=str))


@dataclass(frozen=True)
class _Failure:
    """How one schedule failed, and the evidence it left."""

    error: BaseException
    steady: Steady | None


class Explorer:
    def __init__(
        self,
        platform: Platform,
        *,
        hz: float,
        seed_: int,
        examples: int,
        budget_s: float,
        database: Path | None,
        replay: Schedule | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.platform, self.hz, self.seed = platform, hz, seed_
        self.examples, self.budget_s, self.database = examples, budget_s, database
        self.replay = replay
        self.on_progress = on_progress or (lambda _msg: None)
        self.result = Exploration()
        self.stopped: NotSupported | DryRunPlan | None = None
        self._last_steady: Steady | None = None  # the schedule run last, whatever it ended in

    def __call__(self, strategy: st.SearchStrategy[Schedule], trial: Trial) -> Exploration:
        """Run ``trial`` over schedules from ``strategy``; raise the smallest failure found."""
        if self.replay is not None:
            self.on_progress(f"replaying a recorded schedule of {len(self.replay.steps)} step(s)")
            try:
                self._one(self.replay, trial)
            except BaseException as exc:
                self._failed(self.replay, exc)
                raise
            return self.result
        start = time.monotonic()
        # hypothesis searches and shrinks in the first part of the budget; the rest is kept for
        # taking single steps out of the failure it reports (see _drop_steps)
        deadline, until = start + self.budget_s * SEARCH_SHARE, start + self.budget_s
        failed: dict[str, _Failure] = {}

        @settings(
            max_examples=self.examples,
            deadline=None,
            database=DirectoryBasedExampleDatabase(str(self.database)) if self.database else None,
            suppress_health_check=list(HealthCheck),
            # not the explain phase: it runs variations of the minimal schedule after shrinking
            # (each a full trial with faults, on a lab minutes of them) to annotate a traceback
            # no one reads; taking single steps out (_drop_steps) is what a person needs
            phases=[p for p in Phase if p is not Phase.explain],
            report_multiple_bugs=False,
            print_blob=False,
        )
        @seed(self.seed)
        @given(strategy)
        def example(schedule: Schedule) -> None:
            if self.stopped is not None:
                # the platform cannot host a step, or this is a dry run (which stops at the
                # first fault with its plan): every further schedule ends the same way at once,
                # so hypothesis's shrinking costs nothing and the experiment skips saying why
                raise self.stopped
            key = json.dumps(schedule.to_json(), sort_keys=True)
            if key in failed:  # the same schedule again (shrinking, the final replay): same verdict
                # its error and evidence go with it: when hypothesis met two different failures,
                # the one it replays last need not be the one recorded last, and a minimal
                # schedule shown beside another schedule's error would send a person after the
                # wrong cause
                self._keep(schedule, failed[key])
                raise failed[key].error
            if time.monotonic() > deadline:
                return  # the budget is spent: what is left passes unrun, so shrinking stops here
            try:
                self._one(schedule, trial)
            except (NotSupported, DryRunPlan) as exc:
                self.stopped, self.result.steady = exc, self._last_steady
                raise
            except BaseException as exc:
                failed[key] = self._failed(schedule, exc)
                raise

        try:
            example()
        except (NotSupported, DryRunPlan):
            raise
        except BaseException:
            if self.result.minimal is None or self.result.error is None:
                raise
            self._drop_steps(trial, until, failed)
            raise self.result.error from None
        return self.result

    def _drop_steps(self, trial: Trial, until: float, failed: dict[str, _Failure]) -> None:
        """Take steps out of the smallest failure, one at a time, keeping each removal that
        still fails, until no single step can go (or the budget ends): hypothesis's shrinking
        stops where its budget does, and a step a person need not read should not be shown."""
        best = self.result.minimal
        assert best is not None
        while len(best.steps) > 1:
            for i in range(len(best.steps)):
                if time.monotonic() > until:
                    return
                candidate = Schedule(best.steps[:i] + best.steps[i + 1 :])
                key = json.dumps(candidate.to_json(), sort_keys=True)
                if key in failed:
                    self._keep(candidate, failed[key])
                    break
                try:
                    self._one(candidate, trial)
                except (NotSupported, DryRunPlan, Aborted):
                    self.result.steady = self._last_steady
                    raise
                except Exception as exc:  # noqa: BLE001 - the property's failure, judged next
                    if type(exc) is not type(self.result.error):
                        # another failure than the one being shrunk: not the same bug
                        self.on_progress(f"without step {i + 1}: {type(exc).__name__}: {exc}")
                        continue
                    failed[key] = self._failed(candidate, exc)
                    break
            else:
                break  # every step is needed
            best = candidate
        self.result.every_step_needed = True

    def _failed(self, schedule: Schedule, exc: BaseException) -> _Failure:
        """Count the failure of the schedule just run and keep it as the smallest so far."""
        self.result.failures += 1
        self.result.found_at = self.result.found_at or self.result.tried
        failure = _Failure(exc, self._last_steady)
        self._keep(schedule, failure)
        # hypothesis only keeps a failure smaller than the last: this is the best shrink so far
        self.on_progress(
            f"failed ({self.result.failures} of {self.result.tried} so far); smallest failing: "
            + "; ".join(s.describe() for s in schedule.steps)
        )
        return failure

    def _keep(self, schedule: Schedule, failure: _Failure) -> None:
        # a schedule, its error and its evidence are kept together, always
        self.result.minimal, self.result.error, self.result.steady = schedule, failure.error, failure.steady

    def _one(self, schedule: Schedule, trial: Trial) -> None:
        base = self.platform.ctx
        ctx = RunContext(
            journal=base.journal,
            rng=random.Random(self.seed * 1_000_003 + self.result.tried),
            dry_run=base.dry_run,
            fault_ttl=base.fault_ttl,
        )
        steady = Steady(ctx, hz=self.hz)
        self.result.tried += 1
        self.result.faults += len(schedule.steps)
        self.on_progress(f"schedule {self.result.tried}: {'; '.join(s.describe() for s in schedule.steps)}")
        self.platform.ctx = ctx  # this schedule's faults go on this schedule's timeline
        self._last_steady = steady  # the evidence of whatever this schedule ends in
        try:
            self.platform.wait_healthy()
            trial(steady, lambda: _during(steady, self.platform, schedule))
        finally:
            steady.stop()
            self.platform.ctx = base


def _during(steady: Steady, platform: Platform, schedule: Schedule) -> None:
    with steady.phase("schedule"):
        run_schedule(platform, schedule)
