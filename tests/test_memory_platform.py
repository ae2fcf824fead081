"""The in-memory platform (chaos.testing): its masters behave as the Masters Protocol says, an
experiment runs on it in-process without the lab, and a slow election turns the HA check red."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos import Journal, RunContext, Steady, SteadyStateViolation, kill_master, partition
from chaos.durability import WriteTimeout
from chaos.errors import NotSupported, PlatformError
from chaos.testing import MemoryPlatform

ROOT = Path(__file__).resolve().parent.parent


def _platform(tmp_path: Path, **kw: float) -> MemoryPlatform:
    return MemoryPlatform(RunContext(journal=Journal(tmp_path / "journal.json")), **kw)  # type: ignore[arg-type]


def test_masters_elect_a_new_leader_and_refuse_writes_meanwhile(tmp_path):
    p = _platform(tmp_path, election_s=0.3)
    masters = p.masters
    old = masters.require_leader()
    masters.kv().put("k1", "v1", timeout=1)
    with kill_master(p, pick="leader"):
        assert masters.leader() is None
        with pytest.raises(WriteTimeout):
            masters.kv().put("k2", "v2", timeout=1)
        time.sleep(0.4)
        new = masters.leader()
        assert new is not None and new != old
        masters.kv().put("k3", "v3", timeout=1)
    assert masters.healthy() == sorted(masters.names())
    assert masters.kv().read_prefix("k", timeout=1) == {"k1": "v1", "k3": "v3"}
    assert p.ctx.journal.entries() == []  # the kill was journaled and undone


def test_a_read_back_waits_out_an_election_and_fails_only_without_a_quorum(tmp_path):
    """Like a store's linearizable read with a timeout: served once a leader is elected (a
    read-back right after a revert is not an outage), refused when no quorum can form."""
    p = _platform(tmp_path, election_s=0.3)
    masters = p.masters
    masters.kv().put("k1", "v1", timeout=1)
    with kill_master(p, pick="leader"):
        assert masters.leader() is None  # the election is pending
        t0 = time.monotonic()
        assert masters.kv().read_prefix("k", timeout=5) == {"k1": "v1"}
        assert time.monotonic() - t0 >= 0.2  # it waited for the new leader
        assert masters.kv().read_prefix("none-", timeout=1) == {}  # an empty answer is an answer
    with kill_master(p, pick="leader"), kill_master(p, pick="follower", allow_below_quorum=True):
        with pytest.raises(PlatformError, match="no quorum within 0.2 s"):
            masters.kv().read_prefix("k", timeout=0.2)


def test_a_cut_off_minority_member_acknowledges_nothing_and_catches_up_after(tmp_path):
    p = _platform(tmp_path, election_s=0.1)
    old = p.masters.require_leader()
    others = [m for m in p.masters.names() if m != old]
    with partition(p, [old], others):
        with pytest.raises(WriteTimeout):
            p.masters.only(old).kv().put("x", "1", timeout=1)
        with pytest.raises(PlatformError):
            p.masters.lag(old)
        time.sleep(0.2)
        assert p.masters.leader() in others
    assert p.masters.lag(old) == 0


def test_what_the_model_lacks_is_not_supported_saying_so(tmp_path):
    p = _platform(tmp_path)
    with pytest.raises(NotSupported, match="memory platform has no"):
        _ = p.entry_url
    with pytest.raises(NotSupported, match="capacity"):
        p.capacity()
    with pytest.raises(NotSupported, match="inventory"):
        p.inventory()
    with pytest.raises(NotSupported, match="minority"):
        p.partition([["m1"], ["east-gw1"]])  # nodes the model has not
    with pytest.raises(NotSupported, match="minority"):
        p.partition([["m1"], ["m2"], ["m3"]])  # three ways: no majority left


def test_an_election_slower_than_the_hypothesis_turns_the_check_red(tmp_path):
    """The negative control of the memory platform: the same check that passes with a 0.3 s
    election fails, naming itself, with a 1.5 s one."""
    p = _platform(tmp_path, election_s=1.5)
    steady = Steady(p.ctx, hz=20)
    leadership = steady.leadership(p.masters)
    steady.baseline(seconds=0.5)
    with pytest.raises(SteadyStateViolation) as failed, kill_master(p, pick="leader"):
        steady.expect(leadership.elected(within=0.5))
    assert [f.label for f in steady.findings if not f.passed] == ["leader new leader elected [during]"]
    assert "new leader elected" in str(failed.value)
    steady.stop()


def test_master_ha_experiments_pass_on_memory_without_the_lab(tmp_path):
    """`pytest experiments/test_master_ha.py --platform memory`, in a fresh interpreter: both
    experiments pass, the lab (pyroute2, the Lab class) is never imported, and nothing is
    written to the machine's state directory (which here cannot even be created)."""
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the state directory would go")
    code = (
        "import sys, pytest\n"
        f"rc = pytest.main(['{ROOT}/experiments/test_master_ha.py', '--platform', 'memory', '-q', "
        f"'-p', 'no:cacheprovider', '--chaos-reports', '{tmp_path}/reports', '--rootdir', '{ROOT}'])\n"
        "heavy = ('pyroute2', 'chaos.lab.lab', 'kubernetes')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "print('LOADED', loaded)\n"
        "sys.exit(rc)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "CHAOS_STATE_DIR": str(blocked / "state"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "LOADED []" in done.stdout
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    outcomes = {e["nodeid"].rsplit("::", 1)[-1]: e["outcome"] for e in summary["experiments"]}
    assert outcomes == {
        "test_leader_loss_keeps_writes": "passed",
        "test_follower_loss_keeps_writes": "passed",
    }
    assert summary["complete"] is True
    assert summary["environment"]["platform"] == "memory"


def test_register_clients_on_a_partitioned_leader_see_nothing_stale(tmp_path):
    p = _platform(tmp_path, election_s=0.2)
    steady = Steady(p.ctx, hz=20)
    old = p.masters.require_leader()
    others = [m for m in p.masters.names() if m != old]
    routes = [p.masters.registers(old), p.masters.registers(), p.masters.registers()]
    history = steady.registers(routes, hz=20)
    steady.baseline(seconds=0.5)
    with partition(p, [old], others):
        steady.hold(seconds=1)
    steady.hold(seconds=0.5)
    steady.expect(history.linearizable(), history.stale_reads() == 0, history.lost() == 0)
    steady.stop()
    ops = history.ops
    [cut] = steady.ctx.tl.spans("fault")  # from the partition verified until its revert began
    assert cut.verified is not None and cut.reverting is not None
    cut_off = [o for o in ops if o.member == old and cut.verified <= o.invoke and o.complete < cut.reverting]
    assert cut_off and all(o.type != "ok" for o in cut_off)  # the minority served nothing
    assert sum(1 for o in ops if o.type == "ok" and o.f != "read") > 10


def test_experiments_a_platform_cannot_host_skip_before_any_fault_saying_why(tmp_path):
    """The cold standby and the registry outage on a platform with neither (as on the lab for
    the registry): each skips, naming what the platform lacks, and nothing is journaled."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "experiments" / "test_cold_standby.py"),
            str(ROOT / "experiments" / "test_registry_outage.py"),
            "-p",
            "no:cacheprovider",
            "-rs",
            "--platform",
            "memory",
            "--chaos-reports",
            str(tmp_path / "reports"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    reasons = [line.strip() for line in out.stdout.splitlines() if line.strip().startswith("Skipped: ")]
    assert len(reasons) == 3, out.stdout[-3000:]
    assert all(r.startswith("Skipped: not on platform memory: ") for r in reasons)
    assert any("cannot hold a cluster cold" in r for r in reasons)
    assert sum("has no image registry to lose" in r for r in reasons) == 2
