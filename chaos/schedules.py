"""Generated fault schedules: hypothesis draws combinations of faults on the masters (and on
volumes and services beside them), runs each as the experiment's "during" phase, and shrinks a
failing one to the smallest schedule that still breaks an invariant; a recorded schedule
replays exactly.

A ``Schedule`` is a list of steps, each a fault kind, its target (a member, a role, a volume or
a service), its parameters, its start offset and its duration (they may overlap).
``schedules(platform, ...)`` is the strategy; ``run_schedule`` injects and reverts each step
on time (journaled, verified, self-expiring, as every fault is); ``Explorer`` (the ``explore``
fixture) runs a property over many schedules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.errors import ConfigError, EnvironmentNotReady, NotSupported
from chaos.fault import Fault
from chaos.inject import fail_storage, kill_master, kill_service, partition
from chaos.platform import STORAGE_MODES, Platform

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

KINDS = ("kill_master", "partition", "fail_storage", "kill_service")
ROLES = ("leader", "follower")
# storage modes a schedule draws: each takes the member's disk away; slow and flaky are
# left out (their effect depends on load, so a shrunk schedule would not replay exactly)
SCHEDULE_STORAGE = ("io_error", "full", "read_only")


@dataclass(frozen=True)
class Step:
    kind: str
    target: str
    start: float  # seconds from the start of the schedule
    duration: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.start + self.duration

    def describe(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.kind} {self.target}{extra} at {self.start:g} s for {self.duration:g} s"


@dataclass(frozen=True)
class Schedule:
    steps: tuple[Step, ...]

    @property
    def length(self) -> float:
        return max((s.end for s in self.steps), default=0.0)

    def table(self) -> str:
        """The schedule as a table a person reads (the report shows it)."""
        rows = ["| # | fault | target | parameters | start (s) | duration (s) |", "|---|---|---|---|---|---|"]
        for i, s in enumerate(self.steps, 1):
            params = ", ".join(f"{k}={v}" for k, v in sorted(s.params.items())) or "-"
            rows.append(f"| {i} | {s.kind} | {s.target} | {params} | {s.start:g} | {s.duration:g} |")
        return "\n".join(rows)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.steps]

    @classmethod
    def from_json(cls, data: Sequence[dict[str, Any]]) -> Schedule:
        try:
            steps = tuple(
                Step(
                    str(d["kind"]),
                    str(d["target"]),
                    float(d["start"]),
                    float(d["duration"]),
                    dict(d.get("params", {})),
                )
                for d in data
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"not a fault schedule: {exc}; each step needs kind, target, start, duration"
            ) from exc
        bad = [s.kind for s in steps if s.kind not in KINDS]
        if bad:
            raise ConfigError(
                f"unknown fault kind(s) in the schedule: {', '.join(bad)}; kinds are {', '.join(KINDS)}"
            )
        return cls(steps)

    @classmethod
    def load(cls, path: Path) -> Schedule:
        from chaos.userfiles import read_user_file

        text = read_user_file(path, "schedule")
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: not JSON: {exc}") from exc
        return cls.from_json(doc["schedule"] if isinstance(doc, dict) else doc)

    def most_down_at_once(self, members: Sequence[str]) -> int:
        """The most masters a fault holds at one instant (``members`` and roles count; a
        service's volume or a service does not)."""
        held = [s for s in self.steps if s.target in members or s.target in ROLES]
        points = sorted({s.start for s in held})
        return max((len({s.target for s in held if s.start <= t < s.end}) for t in points), default=0)


def schedules(
    platform: Platform,
    *,
    kinds: Sequence[str] = KINDS,
    volumes: Sequence[str] = (),
    services: Sequence[str] = (),
    max_steps: int = 3,
    max_at_once: int | None = None,
    span: float = 6.0,
    durations: tuple[float, float] = (1.0, 3.0),
    grain: float = 0.5,
) -> SearchStrategy[Schedule]:
    """Schedules of up to ``max_steps`` faults, starting within ``span`` seconds, each lasting
    ``durations`` (seconds, min and max), times in whole ``grain`` seconds so a shrunk schedule
    reads well. A kill targets a member or "leader" (whoever leads then); partitions and storage
    faults a member or "follower". ``volumes`` are further volumes a storage fault may take (a
    service's, e.g. the masters' API front's spool ``"api"``), ``services`` the services a
    ``kill_service`` step may kill; neither counts against the masters' quorum.
    Never below quorum: at most ``max_at_once`` members are held at one instant (by default as
    many as the masters tolerate), and a target is held by one fault at a time. ``kinds``
    limits what is drawn (e.g. ``("partition", "fail_storage")``)."""
    from hypothesis import strategies as st  # only where schedules are drawn: it is heavy

    if max_steps < 1:
        raise ConfigError(f"schedules(max_steps={max_steps!r}): a schedule has at least one step")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"schedules(kinds=...): use some of {', '.join(KINDS)}, not {unknown or 'none'}")
    members = platform.masters.names()
    tolerance = len(members) - platform.masters.quorum()
    at_once = tolerance if max_at_once is None else max_at_once
    if not 1 <= at_once <= tolerance:
        raise ConfigError(
            f"schedules(max_at_once={max_at_once!r}): {len(members)} masters tolerate {tolerance} "
            "down at once"
        )
    known = platform.volumes() if volumes else []
    strange = [v for v in volumes if v not in known or v in members]
    if strange:
        raise ConfigError(
            f"schedules(volumes=...): {', '.join(strange)} is not a service's volume here; "
            f"volumes: {', '.join(v for v in known if v not in members) or 'none'}"
        )
    master_storage = _supported(platform, "fail_storage", members[0])
    usable = [
        k
        for k in kinds
        if (k == "kill_service" and services)
        or (k == "fail_storage" and (master_storage or volumes))
        or (k in ("kill_master", "partition") and _supported(platform, k, members[0]))
    ]
    if not usable:
        raise NotSupported(f"this platform can hold none of {', '.join(kinds)} on these targets")
    lo, hi = durations
    if not (0 < grain <= lo <= hi and span >= 0):
        raise ConfigError(
            f"schedules(durations={durations!r}, grain={grain!r}): need 0 < grain <= min <= max"
        )
    offset = st.integers(0, round(span / grain)).map(lambda n: round(n * grain, 6))
    length = st.integers(round(lo / grain), round(hi / grain)).map(lambda n: round(n * grain, 6))

    def step(kind: str) -> SearchStrategy[Step]:
        params = (
            st.sampled_from(SCHEDULE_STORAGE).map(lambda m: {"mode": m})
            if kind == "fail_storage"
            else st.just({})
        )
        # half the time a role, resolved when the step starts ("leader" for a kill, "follower"
        # otherwise): what matters is usually the role, and a shrunk schedule that names the
        # role replays against whoever holds it then
        role = st.just("leader" if kind == "kill_master" else "follower")
        masters = st.one_of(role, st.sampled_from(members))
        target = masters
        if kind == "kill_service":
            target = st.sampled_from(list(services))
        elif kind == "fail_storage" and volumes:
            target = (
                st.one_of(masters, st.sampled_from(list(volumes)))
                if master_storage
                else st.sampled_from(list(volumes))
            )
        return st.builds(Step, st.just(kind), target, offset, length, params)

    steps = st.sampled_from(usable).flatmap(step)
    # a step and max_steps - 1 slots, each holding a step or nothing: long schedules are as
    # common as short ones (a list strategy favours short lists), and shrinking empties one
    # slot at a time, which is cheap when every try is a real run of seconds
    slots = st.lists(st.one_of(st.none(), steps), min_size=max_steps - 1, max_size=max_steps - 1)
    drawn = st.tuples(steps, slots).map(lambda t: [t[0], *(x for x in t[1] if x is not None)])
    return drawn.map(lambda xs: _keep_safe(xs, at_once, members))


def _keep_safe(steps: Sequence[Step], at_once: int, members: Sequence[str]) -> Schedule:
    """The steps in time order, each kept only if it holds a target no other kept step holds
    then and keeps the masters within ``at_once`` down (rather than a filter, which would
    throw most long schedules away)."""
    kept: list[Step] = []
    for s in sorted(steps, key=lambda s: (s.start, s.kind, s.target)):
        if any(k.target == s.target and k.start < s.end and s.start < k.end for k in kept):
            continue  # one fault at a time on a target
        if Schedule((*kept, s)).most_down_at_once(members) <= at_once:
            kept.append(s)
    return Schedule(tuple(kept))


@dataclass(frozen=True)
class ExploreOptions:
    """How much to explore (--chaos-explore-examples, --chaos-explore-budget), or a recorded
    schedule to replay instead (--chaos-replay)."""

    examples: int = 20
    budget_s: float = 600.0
    replay: Schedule | None = None

    @classmethod
    def build(cls, examples: int, budget: str, replay: str | None) -> ExploreOptions:
        from chaos.config import parse_duration

        problems: list[str] = []
        if examples < 1:
            problems.append(f"--chaos-explore-examples {examples!r}: at least 1 schedule")
        budget_s = 0.0
        try:
            budget_s = parse_duration(budget, what="--chaos-explore-budget")
        except ConfigError as exc:
            problems += exc.problems
        schedule = None
        if replay:
            try:
                schedule = Schedule.load(Path(replay))
            except ConfigError as exc:
                problems += [f"--chaos-replay: {p}" for p in exc.problems]
        if problems:
            raise ConfigError(problems)
        return cls(examples, budget_s, schedule)


def _supported(platform: Platform, kind: str, member: str) -> bool:
    """Whether the platform can hold ``kind`` on a master: building the fault (which changes
    nothing until it is entered) says so, before any schedule is drawn."""
    try:
        if kind == "fail_storage" and member not in platform.volumes():
            return False
        params = {"mode": "io_error"} if kind == "fail_storage" else {}
        fault_of(platform, Step(kind, member, 0.0, 1.0, params), member)
    except NotSupported:
        return False
    return True


def service_volumes(platform: Platform) -> list[str]:
    """The platform's volumes other than the masters' that a storage fault can take (the
    lab's workload disks, a masters' API front's spool): ``schedules(volumes=...)``."""
    try:
        every = platform.volumes()
    except NotSupported:
        return []
    members = platform.masters.names()
    out = []
    for name in every:
        if name in members:
            continue
        try:
            fault_of(platform, Step("fail_storage", name, 0.0, 1.0, {"mode": "io_error"}))
        except NotSupported:
            continue
        out.append(name)
    return out


def fault_of(platform: Platform, step: Step, target: str | None = None) -> Fault:
    """The fault a step names on ``target`` (by default its own, resolved now: "leader",
    "follower" or a member)."""
    target = target or resolve(platform, step.target)
    if step.kind == "kill_master":
        return kill_master(platform, pick=target)
    if step.kind == "kill_service":
        return kill_service(platform, target)
    if step.kind == "partition":
        others = [m for m in platform.masters.names() if m != target]
        return partition(platform, [target], others, label=f"{target} from the rest")
    mode = str(step.params.get("mode", "io_error"))
    if mode not in STORAGE_MODES:
        raise ConfigError(f"fail_storage mode {mode!r}: use one of {', '.join(STORAGE_MODES)}")
    return fail_storage(platform, target, mode)


def resolve(platform: Platform, target: str, held: Sequence[str] = ()) -> str:
    """The member a role names now ("leader", or a healthy "follower" not in ``held``);
    any other target as it is."""
    if target == "leader":
        return platform.masters.require_leader()
    if target == "follower":
        leader = platform.masters.leader()
        followers = sorted(m for m in platform.masters.healthy() if m != leader and m not in held)
        if not followers:
            raise EnvironmentNotReady("no healthy follower to hold: the masters have none to spare")
        return platform.ctx.rng.choice(followers)
    return target


def run_schedule(platform: Platform, schedule: Schedule) -> None:
    """Inject and revert each step on time (ends before starts at the same instant, so a
    member freed is free for the next fault). A role no member holds once steps have begun
    ("leader" during an election, "follower" when none is spare) skips its step with a note on
    the timeline; before any step it is an EnvironmentNotReady. On any error every fault still
    in force is reverted, newest first, and the error raised."""
    clock = platform.ctx.clock
    steps = schedule.steps
    events = sorted(
        [(s.start, 1, i) for i, s in enumerate(steps)] + [(s.end, 0, i) for i, s in enumerate(steps)]
    )
    t0 = clock.now()
    held: dict[int, ExitStack] = {}
    targets: dict[int, str] = {}  # what each step in force holds, resolved
    began = False  # whether any step has begun: from then on the masters are the schedule's doing
    with ExitStack() as in_force:
        # whatever happens, what is still held is released newest first
        def release_all() -> None:
            for i in sorted(held, reverse=True):
                held.pop(i).close()

        in_force.callback(release_all)
        for at, begins, i in events:
            wait = t0 + at - clock.now()
            if wait > 0:
                clock.sleep(wait)
            if begins:
                try:
                    target = resolve(platform, steps[i].target, list(targets.values()))
                except EnvironmentNotReady as exc:
                    if not began:
                        raise  # before any fault: a precondition that does not hold
                    # the steps before this one left no member in that role (no leader while an
                    # election runs, no follower to spare): a state the schedule made, not a
                    # broken set-up, and the role's member is already out, as this step wants
                    platform.ctx.tl.note(f"schedule step {i + 1} skipped: {exc}")
                    continue
                began = True
                if target in targets.values():
                    # a role resolved to a member another step holds (a kill of "leader" and
                    # of m1 when m1 leads): that member is already down, as this step wants
                    platform.ctx.tl.note(f"schedule step {i + 1} skipped: {target} is already held")
                    continue
                one = ExitStack()
                held[i], targets[i] = one, target
                one.enter_context(fault_of(platform, steps[i], target))
            elif i in held:
                targets.pop(i)
                held.pop(i).close()
