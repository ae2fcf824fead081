"""The experiment's side of steady state: start probes, hold a baseline, expect checks.

``Steady`` is what the ``steady`` fixture hands a test. It owns the probes it started and
stops them when the test ends; every check it evaluates is kept as evidence for the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from chaos.context import RunContext
from chaos.durability import DurabilityProbe
from chaos.errors import (
    ConfigError,
    ObservationError,
    PlatformError,
    PreconditionNotMet,
    SteadyStateViolation,
)
from chaos.guard import GuardMonitor
from chaos.history import History
from chaos.masters_watch import HasKV, HasLeader, Leadership, Writes
from chaos.probes import DEFAULT_DEADLINE, DEFAULT_HZ, Probe
from chaos.registers import RegisterClient, RegisterStore
from chaos.slo import Check, Finding, Stage
from chaos.wait import WaitTimeout, wait_until
from chaos.watched import Watched
from chaos.wording import sentence


class Steady:
    def __init__(self, ctx: RunContext, *, hz: float = DEFAULT_HZ, consecutive: int = 5) -> None:
        self.ctx = ctx
        self.hz = hz
        self.consecutive = consecutive
        self.findings: list[Finding] = []
        self._probes: list[Probe] = []
        self._writers: list[DurabilityProbe] = []
        self._watched: list[Watched] = []
        self.histories: list[History] = []
        self.guards = GuardMonitor(ctx)

    # -- probes -----------------------------------------------------------------------------
    def durability(
        self, target: HasKV, *, hz: float | None = None, timeout: float = 1.0, name: str = "writes"
    ) -> Writes:
        """Start a writer against ``target`` (e.g. ``platform.masters``, or
        ``platform.masters.only("m1")`` for one member)."""
        self._claim(name)
        probe = DurabilityProbe(target.kv(), self.ctx.tl, hz=hz or self.hz, timeout=timeout, name=name)
        self._writers.append(probe)
        self._probes.append(probe.probe)
        if not self.ctx.dry_run:  # a dry run writes nothing, not even probe keys
            probe.start()
        writes = Writes(probe, self.ctx.tl, self.consecutive)
        self._watched.append(writes)
        return writes

    def leadership(self, masters: HasLeader, *, hz: float | None = None) -> Leadership:
        """Sample which member leads ``masters`` (e.g. ``platform.masters``)."""

        def sample() -> str:
            leader = masters.leader()
            if leader is None:
                raise ConnectionError("no leader")
            return leader

        # three status reads of up to 0.5 s each when members are down
        watched = self.watch("leader", sample, hz=hz, timeout=2.0)
        leadership = Leadership(watched.series, self.ctx.tl, self.consecutive)
        self._watched[-1] = leadership
        return leadership

    def http(
        self,
        name: str,
        url: str,
        *,
        method: str = "GET",
        hz: float | None = None,
        timeout: float = 1.0,
        expect: int | tuple[int, ...] = 200,
    ) -> Watched:
        """Sample ``method url``: good when it answers ``expect`` (a status, or several: a 429
        that sheds load is an answer) within ``timeout``; the sample's value is the JSON body."""
        from chaos.http_probes import http_sampler

        sampler = http_sampler(url, method=method, timeout=timeout, expect=expect)
        return self.watch(name, sampler, hz=hz, timeout=timeout)

    def promql(
        self, name: str, query: str, prometheus_url: str, *, hz: float | None = None, timeout: float = 1.0
    ) -> Watched:
        """Sample a PromQL instant query. Refuses at once, saying where it looked, when
        Prometheus is not there."""
        from chaos.http_probes import PromQL

        sampler = PromQL(prometheus_url, query, timeout=timeout)
        if not self.ctx.dry_run:
            sampler.check_reachable()
            self._first_value(name, sampler)
        return self.watch(name, sampler, hz=hz, timeout=timeout)

    def _first_value(self, name: str, sampler: Callable[[], Any], *, within: float = 15.0) -> None:
        """Wait until a query has a value before its probe starts counting. A series appears
        only after its targets were scraped (twice, for a ``rate``): an empty answer before that
        says nothing about the system, and counted as a failed baseline sample it made a
        healthy run red."""
        clock = self.ctx.clock
        start = clock.now()
        try:
            wait_until(
                lambda: (sampler(),),  # a tuple: a value of 0.0 is a value
                timeout=within,
                interval=0.25,
                what=f"a first value of the PromQL probe {name!r}",
                clock=clock,
            )
        except WaitTimeout as exc:
            raise ObservationError(
                f"the PromQL probe {name!r} had no value within {within:g} s ({exc.__cause__}); "
                "check the metric names and labels in its query against Prometheus's own "
                "expression browser, and that its targets are scraped"
            ) from exc
        waited = clock.now() - start
        if waited >= 0.01:
            self.ctx.tl.note("probe ready", probe=name, waited_s=round(waited, 3))

    def registers(
        self,
        stores: Sequence[RegisterStore],
        *,
        keys: int = 3,
        hz: float = 10.0,
        timeout: float = 1.0,
        name: str = "registers",
    ) -> History:
        """Start one register client per store (``platform.masters.registers(member)``): reads,
        writes and compare-and-set on ``keys`` keys, ``hz`` operations a second each, every one
        recorded. The history's checks: ``linearizable()``, ``stale_reads() == 0``, ``lost() == 0``."""
        if not stores:
            raise ConfigError("registers() needs at least one store, e.g. [platform.masters.registers()]")
        if not 1 <= keys <= 100:
            raise ConfigError(f"registers(keys={keys!r}): use 1 to 100 keys")
        history = History(name, now=self.ctx.tl.now)
        names = [f"{name}/k{i}" for i in range(keys)]
        for i, store in enumerate(stores):
            rng = random.Random(self.ctx.rng.random())
            client = RegisterClient(history, store, i, keys=names, rng=rng, timeout=timeout)
            self.watch(
                f"{name} client {i} ({store.member or 'any member'})", client, hz=hz, timeout=timeout + 0.5
            )
        self.histories.append(history)
        return history

    def watch(
        self,
        name: str,
        sampler: Callable[[], Any],
        *,
        hz: float | None = None,
        timeout: float = DEFAULT_DEADLINE,
    ) -> Watched:
        """Start sampling ``sampler`` (raise to report a bad sample) in the background. A
        sample that takes longer than ``timeout`` seconds is a failed sample, and one still
        outstanding past it counts as failed when a window is judged."""
        self._claim(name)
        probe = Probe(name, sampler, self.ctx.tl, hz=hz or self.hz, deadline=timeout)
        if not self.ctx.dry_run:
            probe.start()
        self._probes.append(probe)
        watched = Watched(probe.series, self.ctx.tl, self.consecutive)
        self._watched.append(watched)
        return watched

    def _claim(self, name: str) -> None:
        if any(w.name == name for w in self._watched):
            raise ConfigError(f"a probe named {name!r} is already running in this experiment")

    # -- phases ------------------------------------------------------------------------------
    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        tl = self.ctx.tl
        tl.record("phase.start", name)
        try:
            yield
        finally:
            tl.record("phase.end", name)

    def hold(self, seconds: float, phase: str = "observe") -> None:
        """Let the probes run for ``seconds`` (through the injected clock)."""
        if seconds < 0:
            raise ConfigError(f"hold(seconds=...) must be >= 0, got {seconds!r}")
        with self.phase(phase):
            if not self.ctx.dry_run:
                self.ctx.clock.sleep(seconds)

    def baseline(self, seconds: float = 5.0, *, availability: float = 0.99) -> list[Finding]:
        """Observe before any fault; every probe must meet ``availability`` or nothing is
        injected (a fault on an already-broken system proves nothing). Preconditions."""
        if self.ctx.tl.first_injection() is not None:
            raise ConfigError("baseline() must run before the first fault is injected")
        if not self._watched:
            raise ConfigError(
                "baseline() needs a probe: start one with steady.durability() or steady.watch()"
            )
        self.hold(seconds, phase="baseline")
        return self.require(*(w.availability("baseline") >= availability for w in self._watched))

    # -- verdicts ----------------------------------------------------------------------------
    def require(self, *checks: Check) -> list[Finding]:
        """Preconditions: what the platform must offer for the experiment to mean anything
        (``masters.tolerance() >= 1``: HA needs a member to spare). Judged like ``expect``
        and recorded as preconditions, so a run that fails here is never mistaken for a
        hypothesis proven false."""
        return self._judge(checks, "precondition")

    def expect(self, *checks: Check) -> list[Finding]:
        """The hypothesis: evaluate every check (waiting for the eventual ones), keep the
        findings as evidence, and raise ``SteadyStateViolation`` naming every one that failed.

        A probe the platform cannot serve skips the experiment only before the first fault
        (the platform cannot host it); after that it is an infrastructure error."""
        return self._judge(checks, "hypothesis")

    def wait_for(self, *checks: Check) -> None:
        """Let the fault act until every eventual check (``recovers``, ``notices``) holds or
        its deadline passes, without judging: judge them later with ``expect``, together
        with the checks that can only be judged after the revert, so one verdict names every
        check that failed."""
        self._validate(checks, "wait_for")
        if self.ctx.dry_run:
            return
        for c in checks:
            self._settle(c)
            self.ctx.abort.check()

    def _validate(self, checks: tuple[Check, ...], what: str) -> None:
        if not checks:
            raise ConfigError(f"{what}() needs at least one check, e.g. writes.availability() >= 0.99")
        for c in checks:
            if not isinstance(c, Check):
                raise ConfigError(
                    f"{what}() takes checks such as `writes.lost() == 0`, got {c!r} ({type(c).__name__})"
                )

    def _judge(self, checks: tuple[Check, ...], stage: Stage) -> list[Finding]:
        self._validate(checks, "require" if stage == "precondition" else "expect")
        if self.ctx.dry_run:
            return []  # nothing was observed, so there is nothing to judge (the plugin skips)
        self.ctx.abort.check()
        before_first_fault = self.ctx.tl.first_injection() is None
        unsupported = next((p.unsupported for p in self._probes if p.unsupported is not None), None)
        if unsupported is not None and before_first_fault:
            raise unsupported  # what it watches does not exist here: the experiment skips
        with self.phase("verify"):
            # eventual checks first (they wait); then every sample invoked until now answers
            # or passes its deadline, so the rest are judged on everything observed
            settled = {id(c): self._settle(c) for c in checks if c.measure.settle_until is not None}
            self._await_outstanding()
            findings = [
                dataclasses.replace(settled.get(id(c)) or self._settle(c), stage=stage) for c in checks
            ]
            for f in findings:  # each check a step of the verification, read as a sentence
                self.ctx.tl.record("check", sentence(f.as_dict()), finding=f.as_dict())
        self.findings.extend(findings)
        if unsupported is not None:
            raise PlatformError(
                f"a probe lost what it watches after the first fault ({unsupported}); the verdict "
                "cannot be given, and this is an infrastructure error, not a skip"
            ) from unsupported
        blind = next((p for p in self._probes if p.unobservable is not None), None)
        if blind is not None:
            raise ObservationError(
                f"probe {blind.name!r} could not observe what it watches ({blind.unobservable}); "
                "its failed samples are not evidence of an outage, so no verdict is given: "
                "an infrastructure error"
            ) from blind.unobservable
        failed = [f for f in findings if not f.passed]
        if failed:
            lines = "\n  ".join(f.line() for f in failed)
            counted = f"({len(failed)} of {len(findings)} checks)"
            if stage == "precondition":
                raise PreconditionNotMet(
                    f"precondition not met {counted}, so the hypothesis was not judged:\n  {lines}",
                    evidence=[f.as_dict() for f in findings],
                )
            raise SteadyStateViolation(
                f"steady state violated {counted}:\n  {lines}", evidence=[f.as_dict() for f in findings]
            )
        return findings

    def _await_outstanding(self) -> None:
        """Let samples invoked before now answer (or pass their deadline, after which they
        count as failures) so a window is never judged on the requests that came back fast."""
        now = self.ctx.tl.now()
        probes = [p for p in self._probes if p.running or p.series.pending()]
        if not probes:
            return
        longest = max(p.deadline for p in probes)
        # past its deadline a sample is a failure: after the wait nothing is left unknown
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: not any(p.series.pending(before=now) for p in probes),
                timeout=longest,
                interval=0.01,
                what="outstanding probe samples",
                clock=self.ctx.clock,
            )

    def _settle(self, check: Check) -> Finding:
        """Evaluate ``check``; an eventual one (``recovers``, ``notices``) is waited for until
        it holds and is settled, or its deadline passes. A finding is returned settled: a
        sample it rests on that is still outstanding is waited for (up to its deadline)."""
        deadline_fn = check.measure.settle_until
        deadline = deadline_fn() if deadline_fn else None
        remaining = None if deadline is None else deadline - self.ctx.tl.now()
        if remaining is not None and remaining > 0:

            def passing() -> Finding | None:
                finding = check.evaluate()
                return finding if finding.passed and finding.settled else None

            try:
                return wait_until(
                    passing, timeout=remaining, what=check.measure.name, interval=0.05, clock=self.ctx.clock
                )
            except WaitTimeout:
                pass
        finding = check.evaluate()
        if finding.settled:
            return finding

        def settled() -> Finding | None:
            f = check.evaluate()
            return f if f.settled else None

        longest = max((p.deadline for p in self._probes), default=DEFAULT_DEADLINE)
        try:
            return wait_until(
                settled, timeout=longest, what=check.measure.name, interval=0.05, clock=self.ctx.clock
            )
        except WaitTimeout:
            return check.evaluate()

    def guard(self, *checks: Check) -> None:
        """Stop conditions: while a fault is in force, the first of ``checks`` to fail aborts
        the run — every fault reverted at once, load stopped, and the experiment fails with
        "aborted: guard breached: ...". E.g. ``steady.guard(entry.error_rate(over=2) <= 0.5)``."""
        if not checks:
            raise ConfigError("guard() needs at least one check, e.g. entry.error_rate(over=2) <= 0.5")
        for c in checks:
            if not isinstance(c, Check):
                raise ConfigError(
                    f"guard() takes checks such as `entry.error_rate(over=2) <= 0.5`, got {c!r}"
                )
            self.guards.add(c)

    # -- teardown -----------------------------------------------------------------------------
    def stop(self) -> None:
        self.guards.stop()
        for probe in self._probes:
            probe.stop()

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "findings": [f.as_dict() for f in self.findings],
            "faults": [
                {
                    "name": s.name,
                    "start": s.start,
                    "verified": s.verified,
                    "reverting": s.reverting,
                    "end": s.end,
                }
                for s in self.ctx.tl.spans("fault")
            ],
            "probes": {},
        }
        for w in self._watched:
            samples = w.series.samples()
            out["probes"][w.name] = {
                "samples": len(samples),
                "ok": sum(1 for s in samples if s.ok),
                "hz": w.series.hz,
            }
        for wr in self._writers:
            out["probes"][wr.series.name]["outcomes"] = wr.counts()
        for h in self.histories:
            ops = h.ops
            out.setdefault("histories", {})[h.name] = {
                "ops": len(ops),
                "outcomes": {t: sum(1 for o in ops if o.type == t) for t in ("ok", "fail", "info")},
            }
        return out
