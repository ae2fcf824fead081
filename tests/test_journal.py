import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos import ChaosError, Journal, RollbackError, recover
from tests.helpers import UNDO_LOG, WORLD


@pytest.fixture(autouse=True)
def clean_world():
    WORLD.clear()
    UNDO_LOG.clear()
    yield
    WORLD.clear()
    UNDO_LOG.clear()


def test_entries_survive_a_new_journal_object(tmp_path):
    j = Journal(tmp_path / "journal.json")
    e = j.add("test.set", {"key": "a", "old": None}, "set a")
    again = Journal(tmp_path / "journal.json").entries()
    assert [x.id for x in again] == [e.id]
    assert again[0].undo == {"key": "a", "old": None}
    assert again[0].owner_pid == os.getpid()


def test_unknown_kind_is_refused_before_anything_is_written(tmp_path):
    j = Journal(tmp_path / "journal.json")
    with pytest.raises(ChaosError, match="no undo registered for fault kind 'nope'"):
        j.add("nope", {}, "x")
    assert not j.path.exists()


def test_undo_data_must_be_json(tmp_path):
    j = Journal(tmp_path / "journal.json")
    with pytest.raises(TypeError):
        j.add("test.set", {"key": object()}, "x")
    assert j.entries() == []


def test_a_stray_temp_file_does_not_corrupt_the_journal(tmp_path):
    j = Journal(tmp_path / "journal.json")
    j.add("test.set", {"key": "a", "old": None}, "set a")
    (tmp_path / ".journal.json.999.tmp").write_text('{"version": 1, "entr')  # a torn write
    assert len(j.entries()) == 1


def test_unreadable_journal_says_what_to_do(tmp_path):
    (tmp_path / "journal.json").write_text("not json")
    with pytest.raises(ChaosError, match="unreadable.*undo its faults by hand"):
        Journal(tmp_path / "journal.json").entries()


def test_recover_undoes_newest_first_and_is_idempotent(tmp_path):
    j = Journal(tmp_path / "journal.json")
    WORLD.update(a=2, b=3)
    j.add("test.set", {"key": "a", "old": 1}, "a")
    j.add("test.set", {"key": "b", "old": None}, "b")
    report = recover(j)
    assert [e.description for e in report.undone] == ["b", "a"]
    assert UNDO_LOG == ["b", "a"]
    assert WORLD == {"a": 1}
    assert j.entries() == []
    assert recover(j).undone == []


def test_recover_runs_every_undo_and_keeps_the_failed_ones(tmp_path):
    j = Journal(tmp_path / "journal.json")
    j.add("test.set", {"key": "a", "old": None}, "a")
    j.add("test.set", {"key": "bad1", "old": None, "fail": True}, "bad1")
    j.add("test.set", {"key": "bad2", "old": None, "fail": True}, "bad2")
    with pytest.raises(RollbackError, match="2 of 3 undo steps failed") as info:
        recover(j)
    group = info.value.__cause__
    assert isinstance(group, ExceptionGroup)
    assert len(group.exceptions) == 2
    assert UNDO_LOG == ["bad2", "bad1", "a"]
    assert sorted(e.description for e in j.entries()) == ["bad1", "bad2"]


def test_recover_leaves_faults_of_a_live_run_alone_unless_forced(tmp_path):
    path = tmp_path / "journal.json"
    # another live process writes an entry: its faults are its own business
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]);"
        "import tests.helpers; from chaos import Journal;"
        "Journal(sys.argv[1]).add('test.set', {'key': 'x', 'old': None}, 'live');"
        "print('ready', flush=True); time.sleep(30)"
    )
    root = os.path.dirname(os.path.dirname(__file__))
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), root], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        j = Journal(path)
        report = recover(j)
        assert [e.description for e in report.skipped_live] == ["live"]
        assert len(j.entries()) == 1
        assert [e.description for e in recover(j, include_live=True).undone] == ["live"]
    finally:
        proc.kill()
        proc.wait()


def test_an_expired_fault_is_undone_even_if_its_owner_lives(tmp_path):
    j = Journal(tmp_path / "journal.json")
    e = j.add("test.set", {"key": "a", "old": None}, "a", ttl=60)
    doc = json.loads(j.path.read_text())
    doc["entries"][0]["owner_pid"] = 1  # init: alive, and not us
    doc["entries"][0]["owner_start"] = open("/proc/1/stat").read().rsplit(")", 1)[1].split()[19]
    doc["entries"][0]["created"] -= 120
    j.path.write_text(json.dumps(doc))
    assert [x.id for x in recover(j).undone] == [e.id]


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.booleans()), max_size=12))
def test_recover_restores_the_world_whatever_was_injected(tmp_path_factory, steps):
    """Property: inject any sequence of journaled changes, 'crash', recover: the world is
    back to where it started and the journal is empty."""
    j = Journal(tmp_path_factory.mktemp("j") / "journal.json")
    WORLD.clear()
    WORLD.update(a=0, c=0)
    before = dict(WORLD)
    for key, _ in steps:
        j.add("test.set", {"key": key, "old": WORLD.get(key)}, f"set {key}")
        WORLD[key] = WORLD.get(key, 0) + 1
    recover(j)
    assert WORLD == before
    assert j.entries() == []
    assert recover(j).undone == []


@pytest.mark.parametrize("kinds", [8, 10])
def test_crash_trials_aim_each_kind_at_every_moment(kinds):
    """Five trials of a kind meet the five moments a run can be killed at, however many kinds
    are interleaved (with 10 kinds, every trial of a kind once aimed at the same moment)."""
    from collections import Counter

    from chaos.testing.crash_trials import MOMENTS, plan_trials

    names = [f"k{i}" for i in range(kinds)]
    plan = plan_trials(names, per_kind=len(MOMENTS), seed=1)
    met = Counter((kind, moment) for kind, moment, _ in plan)
    assert set(met) == {(k, m) for k in names for m in MOMENTS} and set(met.values()) == {1}
