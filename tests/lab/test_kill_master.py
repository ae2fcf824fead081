import random

import pytest

from chaos import (
    ConfigError,
    DryRunPlan,
    Journal,
    RunContext,
    Steady,
    SteadyStateViolation,
    UnsafeFaultRefused,
    kill_master,
)
from chaos.lab import LabPlatform

pytestmark = pytest.mark.lab


def platform_for(lab, tmp_path, *, seed=0, dry_run=False):
    ctx = RunContext(journal=Journal(tmp_path / "journal.json"), rng=random.Random(seed), dry_run=dry_run)
    return LabPlatform(lab, ctx)


def running(lab):
    return {m.name: m.proc.alive() for m in lab.state().members}


def test_killing_the_leader_elects_another_and_revert_rejoins(resilient_lab, tmp_path):
    p = platform_for(resilient_lab, tmp_path)
    old = p.masters.leader()
    with kill_master(p, pick="leader") as fault:
        assert fault.details()["target"] == old and fault.details()["was_leader"]
        assert not running(resilient_lab)[old]
        assert [e.undo["member"] for e in p.ctx.journal.entries()] == [old]
    assert running(resilient_lab) == {"m1": True, "m2": True, "m3": True}
    assert sorted(p.masters.healthy()) == ["m1", "m2", "m3"]
    assert p.masters.leader() is not None
    assert p.ctx.journal.entries() == []


def test_follower_choice_is_seeded_and_reproducible(resilient_lab, tmp_path):
    plans = set()
    for _ in range(3):
        p = platform_for(resilient_lab, tmp_path, seed=7, dry_run=True)
        with pytest.raises(DryRunPlan) as info, kill_master(p, pick="follower"):
            pass
        plans.add(str(info.value))
    assert len(plans) == 1
    assert "SIGKILL etcd member" in plans.pop()
    assert all(running(resilient_lab).values())  # a dry run kills nothing


def test_an_unknown_pick_names_the_choices_and_changes_nothing(resilient_lab, tmp_path):
    p = platform_for(resilient_lab, tmp_path)
    with pytest.raises(ConfigError, match=r"use 'leader', 'follower' or a master name \(m1, m2, m3\)"):
        with kill_master(p, pick="m9"):
            pass
    assert all(running(resilient_lab).values())


def test_killing_a_second_member_is_refused_below_quorum(resilient_lab, tmp_path):
    p = platform_for(resilient_lab, tmp_path)
    with kill_master(p, pick="follower") as first:
        with pytest.raises(UnsafeFaultRefused, match="would leave 1 of 3 members running, below quorum"):
            with kill_master(p, pick="leader"):
                pass
        assert sum(running(resilient_lab).values()) == 2
        assert len(p.ctx.journal.entries()) == 1
    assert first.reverted_at is not None
    assert all(running(resilient_lab).values())


def test_on_fragile_the_only_master_is_protected(fragile_lab, tmp_path):
    p = platform_for(fragile_lab, tmp_path)
    with pytest.raises(UnsafeFaultRefused, match="would leave 0 of 1 members running, below quorum"):
        with kill_master(p, pick="leader"):
            pass
    assert running(fragile_lab) == {"m1": True}
    assert p.ctx.journal.entries() == []


def test_on_fragile_losing_the_master_stops_writes_and_the_verdict_says_so(fragile_lab, tmp_path):
    """Negative control for the HA verdicts: with no member to spare, writes do not recover
    while the fault is in force, and the experiment's own checks go red."""
    p = platform_for(fragile_lab, tmp_path)
    steady = Steady(p.ctx)
    writes = steady.durability(p.masters)
    try:
        steady.baseline(seconds=1)
        with pytest.raises(SteadyStateViolation) as info:
            with kill_master(p, pick="leader", allow_below_quorum=True):
                steady.expect(writes.recovers(within=1.0))
        assert "writes time to recover" in str(info.value) and "no value" in str(info.value)
        with pytest.raises(SteadyStateViolation, match=r"writes availability \(during"):
            steady.expect(writes.availability("during") >= 0.8)
        steady.expect(writes.lost() == 0)  # unavailable, but nothing acknowledged was lost
    finally:
        steady.stop()
    assert running(fragile_lab) == {"m1": True}
