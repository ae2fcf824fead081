"""Generated fault schedules on the in-memory platform: what is drawn stays above quorum, a
schedule runs on time and reverts everything, exploration of a resilient system finds
nothing, the compound weakness (two overlapping faults) is found and shrunk to its two-step
core, and the recorded schedule replays the failure exactly."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings

from chaos import (
    ConfigError,
    EnvironmentNotReady,
    Journal,
    NotSupported,
    PlatformError,
    RunContext,
    SteadyStateViolation,
)
from chaos.explore import Explorer, write_record
from chaos.schedules import Schedule, Step, run_schedule, schedules
from chaos.testing import MemoryPlatform

FAST = {"span": 0.2, "durations": (0.1, 0.2), "grain": 0.05}
ELECTION_S = 0.05


def _platform(tmp_path, **kw):
    return MemoryPlatform(RunContext(journal=Journal(tmp_path / "journal.json")), election_s=ELECTION_S, **kw)


def _explorer(platform, tmp_path, **kw):
    defaults = {"hz": 100, "seed_": 1, "examples": 40, "budget_s": 120, "database": None}
    return Explorer(platform, **{**defaults, **kw})


@pytest.fixture
def fsync_free_dir(tmp_path):
    """Where a journal's fsync costs nothing (tmpfs), if the machine has one. A fault is
    journaled before it is injected, so a slow fsync makes it land late: beside a disk writer
    a journal write here took up to 116 ms (median 0.4 ms, 0.02 ms on tmpfs). In CI, beside the
    lab's disk traffic, a kill late by more than the 50 ms election once made a cut scheduled
    after it fail too, a failure its replay need not repeat."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    where = Path(tempfile.mkdtemp(prefix="chaos-test-", dir=shm))
    try:
        yield where
    finally:
        shutil.rmtree(where)


def _writes_survive(platform):
    def trial(steady, run):
        writes = steady.durability(platform.masters, hz=100)
        steady.baseline(seconds=0.05)
        run()
        steady.hold(seconds=0.05, phase="recovery")
        steady.expect(writes.lost() == 0)

    return trial


def test_drawn_schedules_never_go_below_quorum(tmp_path):
    p = _platform(tmp_path, members=5)

    drawn = []

    @settings(max_examples=200, deadline=None)
    @given(schedules(p, max_steps=5, services=["east-gw1", "west-gw1"], **FAST))
    def check(schedule):
        drawn.extend(schedule.steps)
        assert 1 <= len(schedule.steps) <= 5
        assert schedule.most_down_at_once(p.masters.names()) <= 2  # five masters tolerate two down
        for a in schedule.steps:
            overlapping = [
                b for b in schedule.steps if b.target == a.target and b.start < a.end and a.start < b.end
            ]
            assert overlapping == [a]

    check()
    # services are drawn too, and do not count against the masters' quorum
    killed = {s.target for s in drawn if s.kind == "kill_service"}
    assert killed == {"east-gw1", "west-gw1"}
    assert {s.kind for s in drawn} == {"kill_master", "partition", "kill_service"}


def test_bad_schedule_settings_are_refused_saying_why(tmp_path):
    p = _platform(tmp_path)
    with pytest.raises(ConfigError, match="use some of"):
        schedules(p, kinds=["meteor"])
    with pytest.raises(ConfigError, match="at least one step"):
        schedules(p, max_steps=0)
    with pytest.raises(ConfigError, match="tolerate 1 down"):
        schedules(p, max_at_once=2)
    with pytest.raises(NotSupported, match="none of fail_storage"):
        schedules(p, kinds=["fail_storage"])  # the memory platform has no volumes
    with pytest.raises(ConfigError, match="api is not a service's volume here; volumes: none"):
        schedules(p, volumes=["api"])
    with pytest.raises(NotSupported, match="none of kill_service"):
        schedules(p, kinds=["kill_service"])  # no services named
    with pytest.raises(ConfigError, match="each step needs kind"):
        Schedule.from_json([{"kind": "partition"}])


def test_a_schedule_runs_on_time_and_leaves_nothing_in_force(tmp_path):
    p = _platform(tmp_path, members=5)
    schedule = Schedule((Step("partition", "m1", 0.0, 0.2), Step("kill_master", "m2", 0.1, 0.2)))
    t0 = p.ctx.tl.now()
    run_schedule(p, schedule)
    took = p.ctx.tl.now() - t0
    assert 0.3 <= took < 1.0
    starts = {e.name: e.t - t0 for e in p.ctx.tl.events if e.kind == "fault.start"}
    assert sorted(starts) == ["partition m1 from the rest: m1 | the rest", "stop master m2"]
    assert starts["stop master m2"] >= 0.1
    assert p.ctx.journal.entries() == [] and sorted(p.masters.healthy()) == p.masters.names()


def test_a_role_that_resolves_to_a_member_already_held_is_skipped_not_an_error(tmp_path):
    p = _platform(tmp_path, members=5)
    leader = p.masters.require_leader()
    schedule = Schedule((Step("kill_master", "leader", 0.0, 0.1), Step("kill_master", leader, 0.0, 0.1)))
    run_schedule(p, schedule)
    notes = [e.name for e in p.ctx.tl.events if e.kind == "note"]
    assert notes == [f"schedule step 2 skipped: {leader} is already held"]
    assert [e.name for e in p.ctx.tl.events if e.kind == "fault.start"] == [f"stop master {leader}"]
    assert p.ctx.journal.entries() == []


def test_a_role_no_member_holds_mid_schedule_is_skipped_and_before_it_is_not_ready(tmp_path):
    """An election the first kill started is still running when the second kill of "leader"
    begins: that step is skipped with a note (the schedule made the state, the leader is out
    as it wants). Before any step a missing leader is a set-up that is not ready."""
    p = MemoryPlatform(RunContext(journal=Journal(tmp_path / "journal.json")), members=5, election_s=1.0)
    first = p.masters.require_leader()
    schedule = Schedule((Step("kill_master", "leader", 0.0, 0.1), Step("kill_master", "leader", 0.1, 0.1)))
    run_schedule(p, schedule)
    notes = [e.name for e in p.ctx.tl.events if e.kind == "note"]
    assert len(notes) == 1 and notes[0].startswith("schedule step 2 skipped: no etcd leader"), notes
    assert [e.name for e in p.ctx.tl.events if e.kind == "fault.start"] == [f"stop master {first}"]
    assert p.ctx.journal.entries() == []
    # now no leader before the schedule starts (the election after that kill is still due)
    assert p.masters.leader() is None
    with pytest.raises(EnvironmentNotReady, match="must have one before the fault"):
        run_schedule(p, Schedule((Step("kill_master", "leader", 0.0, 0.1),)))
    assert p.ctx.journal.entries() == []


def test_exploring_a_resilient_system_finds_nothing(tmp_path):
    p = _platform(tmp_path, members=5)
    result = _explorer(p, tmp_path, examples=6)(schedules(p, max_steps=3, **FAST), _writes_survive(p))
    assert result.tried == 6 and result.failures == 0 and result.minimal is None
    assert result.faults >= 6


def test_the_compound_weakness_is_found_shrunk_to_two_steps_and_replayed(tmp_path, fsync_free_dir):
    p = _platform(fsync_free_dir, members=5, compound=True)
    explorer = _explorer(p, tmp_path)
    with pytest.raises(SteadyStateViolation, match="lost"):
        explorer(schedules(p, max_steps=3, **FAST), _writes_survive(p))
    result = explorer.result
    assert result.minimal is not None and result.failures >= 1
    kinds = sorted(s.kind for s in result.minimal.steps)
    assert kinds == ["kill_master", "partition"], result.minimal.table()
    kill, cut = sorted(result.minimal.steps, key=lambda s: s.kind)
    # the kill takes the leader; the cut, a member other than the one killed: by role
    # ("follower"), or by name when the timing on a slow machine made hypothesis's shrinking
    # settle there (niced beside the lab it once ended at "m1", a follower then)
    assert kill.target == "leader", result.minimal.table()
    assert cut.target == "follower" or cut.target in p.masters.names(), result.minimal.table()
    # the cut begins while the election that follows the kill is pending: the windows overlap,
    # or touch when the kill itself landed late (it is journaled, with an fsync, before the
    # member stops; see fsync_free_dir): CI once shrank to a cut scheduled at the very instant
    # the kill ended, which can fail only if it still fell inside the election
    assert kill.start < cut.end and cut.start < kill.end + ELECTION_S, result.minimal.table()
    assert result.summary()["every step needed (checked)"] is True  # neither step can go
    # recorded, then replayed exactly: the same two steps, the same failure
    write_record(tmp_path / "schedule.json", "t::x", {"seed": 1}, result)
    recorded = Schedule.load(tmp_path / "schedule.json")
    assert recorded == result.minimal
    assert json.loads((tmp_path / "schedule.json").read_text())["error"].startswith("SteadyStateViolation")
    replay = _explorer(p, tmp_path, replay=recorded)
    with pytest.raises(SteadyStateViolation, match="lost"):
        replay(schedules(p, **FAST), _writes_survive(p))
    assert replay.result.tried == 1


EXPLORING = """
from chaos import experiment
from chaos.schedules import schedules

@experiment(verifies="HA", hypothesis="there is always a leader")
def test_leadership_stays(platform, explore):
    def trial(steady, run):
        leadership = steady.leadership(platform.masters, hz=50)
        steady.baseline(seconds=0.05)
        run()
        steady.expect(leadership.availability("during") >= 1)

    explore(schedules(platform, max_steps=2, span=0.2, durations=(0.1, 0.2), grain=0.05), trial)
"""


def test_a_shrunk_schedule_is_in_the_summary_and_replays_from_its_file(pytester):
    pytester.makepyfile(EXPLORING)
    first = pytester.runpytest_subprocess(
        "--platform", "memory", "--chaos-reports", "out", "--chaos-seed", "3"
    )
    first.assert_outcomes(failed=1)
    [record] = json.loads((pytester.path / "out" / "summary.json").read_text())["experiments"]
    assert record["category"] == "steady state violated"
    assert record["violated"] == ["leader availability [during]"]
    assert record["schedule"] == [
        {"kind": "kill_master", "target": "leader", "start": 0.0, "duration": 0.1, "params": {}}
    ]
    # hypothesis draws the simplest schedule first, and a lone leader kill is already minimal:
    # one schedule may be all it tries (its explain phase, which ran more, is off)
    exploration = record["evidence"]["exploration"]
    assert exploration["tried"] >= 1 and exploration["failing schedules"] >= 1
    [saved] = (pytester.path / "out" / "schedules").glob("*.json")
    assert json.loads(saved.read_text())["schedule"] == record["schedule"]
    again = pytester.runpytest_subprocess(
        "--platform", "memory", "--chaos-reports", "again", "--chaos-replay", str(saved)
    )
    again.assert_outcomes(failed=1)
    [replayed] = json.loads((pytester.path / "again" / "summary.json").read_text())["experiments"]
    assert replayed["schedule"] == record["schedule"] and replayed["violated"] == record["violated"]
    assert replayed["evidence"]["exploration"]["tried"] == 1
    # `chaos replay FILE` runs the same: experiment, platform and seed from the record
    chaos = Path(sys.executable).parent / "chaos"
    cli = subprocess.run(
        [chaos, "replay", saved], cwd=pytester.path, capture_output=True, text=True, check=False
    )
    assert cli.returncode == 1, cli.stdout[-2000:] + cli.stderr[-2000:]
    assert "--chaos-replay" in cli.stdout and "--platform memory" in cli.stdout
    assert "leader availability (during" in cli.stdout


def test_a_bad_replay_file_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(): pass")
    bad = pytester.path / "bad.json"
    bad.write_text('{"schedule": [{"kind": "meteor", "target": "m1", "start": 0, "duration": 1}]}')
    result = pytester.runpytest_subprocess("--chaos-replay", str(bad), "--chaos-explore-budget", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--chaos-explore-budget*not a duration*", "*unknown fault kind(s)*: meteor*"]
    )


def test_what_the_platform_cannot_host_stops_exploring_at_once(tmp_path):
    p = _platform(tmp_path)

    def trial(steady, run):
        p.capacity()  # the memory platform reports none: NotSupported

    explorer = _explorer(p, tmp_path)
    with pytest.raises(NotSupported, match="capacity"):
        explorer(schedules(p, **FAST), trial)
    assert explorer.result.tried == 1 and explorer.result.minimal is None


def test_a_dry_run_explores_nothing_and_skips_with_the_plan(pytester):
    pytester.makepyfile(EXPLORING)
    result = pytester.runpytest_subprocess(
        "--platform", "memory", "--chaos-reports", "out", "--dry-run", "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*dry run*stop master*"])


@pytest.mark.parametrize("lone_cut_fails", [False, True])
def test_the_minimal_schedule_is_reported_with_its_own_failure_and_evidence(tmp_path, lone_cut_fails):
    """Two different failures in one search: the schedule reported, the error raised and the
    evidence shown belong together (the schedule hypothesis replays last need not be the one
    run last). A lone fault is survived; or (lone_cut_fails) a lone partition fails too, which
    is already minimal, and the runs after it (hypothesis's explain phase, once) must not
    lend it their evidence."""
    p = _platform(tmp_path, members=5)
    met = set()

    def trial(steady, run):
        run()
        started = [e.name for e in p.ctx.tl.events if e.kind == "fault.start"]
        cut = any(name.startswith("partition") for name in started)
        if len(started) < 2 and not (lone_cut_fails and cut):
            return
        met.add("cut" if cut else "kills")
        if cut:
            raise SteadyStateViolation("a partition was in the schedule")
        raise PlatformError("only kills were in the schedule")

    explorer = _explorer(p, tmp_path, examples=10)
    with pytest.raises((SteadyStateViolation, PlatformError)) as info:
        explorer(schedules(p, max_steps=2, span=0.1, durations=(0.05, 0.1), grain=0.05), trial)
    result = explorer.result
    if not lone_cut_fails:
        assert met == {"cut", "kills"}  # both failures were met, or this proves nothing
    assert result.minimal is not None and result.error is info.value
    has_cut = any(s.kind == "partition" for s in result.minimal.steps)
    assert isinstance(info.value, SteadyStateViolation) == has_cut, (type(info.value), result.minimal.table())
    # and the evidence shown with them is that schedule's run: its faults on its timeline
    started = [e.name for e in result.steady.ctx.tl.events if e.kind == "fault.start"]
    assert len(started) == len(result.minimal.steps), (started, result.minimal.table())
    assert any(name.startswith("partition") for name in started) == has_cut, started
