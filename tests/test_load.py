"""The load engine: real Locust subprocesses against the real workload on loopback."""

import os
import signal
import time

import pytest

from chaos import ConfigError, Journal, RunContext
from chaos.load import LOADTESTS_DIR, Load, LoadError, LoadSpec

LOCUSTFILE = LOADTESTS_DIR / "workload.py"


@pytest.fixture
def ctx(tmp_path):
    return RunContext(journal=Journal(tmp_path / "j.json"))


@pytest.fixture
def target(workload):
    workload.start_inventory()
    return workload.start_gateway()


def group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_steady_load_runs_its_duration_and_stops_by_itself(ctx, target):
    spec = LoadSpec(LOCUSTFILE, target, users=4, duration=3, user_rps=5)
    with Load(ctx, spec) as run:
        run.wait()
    assert run.returncode == 0
    assert run.requests() > 10
    assert run.failures() == 0
    assert run.points and run.points[-1].users == 4
    assert run.availability().value() == 1.0
    assert run.latency(95).value() > 0
    kinds = [e.kind for e in ctx.tl.events]
    assert kinds.count("load.start") == 1 and kinds.count("load.end") == 1
    assert "t,users,rps" in run.stats_csv()
    assert group_gone(run.pid)


@pytest.mark.parametrize("boom", [RuntimeError("experiment failed"), KeyboardInterrupt()])
def test_leaving_the_block_always_stops_the_load(ctx, target, boom):
    spec = LoadSpec(LOCUSTFILE, target, users=2, duration=120, user_rps=2)
    run = Load(ctx, spec)
    with pytest.raises(type(boom)), run:
        assert run.running
        raise boom
    assert not run.running
    assert group_gone(run.pid)


def test_two_worker_processes(ctx, target):
    spec = LoadSpec(LOCUSTFILE, target, users=4, duration=3, user_rps=5, workers=2)
    with Load(ctx, spec) as run:
        run.wait()
    assert run.requests() > 10
    assert group_gone(run.pid)


def test_two_multi_process_loads_on_one_machine_do_not_share_a_master_port(ctx, target):
    """Locust's master listens on 5557 on every interface unless told; CI runs the lab suite
    beside the unit tests, and a second master on the same port died at start."""
    spec = LoadSpec(LOCUSTFILE, target, users=2, duration=3, user_rps=5, workers=2)
    with Load(ctx, spec) as first, Load(ctx, spec) as second:
        first.wait()
        second.wait()
    assert first.requests() > 5 and second.requests() > 5


def test_a_locust_that_dies_is_reported_with_its_file(ctx, target):
    spec = LoadSpec(LOCUSTFILE, target, users=2, duration=60)
    with pytest.raises(LoadError, match=r"locust \(locustfile .*workload.py\) died with code -9"):
        with Load(ctx, spec) as run:
            os.kill(run.pid, signal.SIGKILL)
            time.sleep(0.2)
    assert group_gone(run.pid)


def test_a_locustfile_that_fails_at_import_names_the_file(ctx, tmp_path):
    bad = tmp_path / "bad_locustfile.py"
    bad.write_text("import no_such_module_here\n")
    with pytest.raises(LoadError, match=r"bad_locustfile.py.*No module named 'no_such_module_here'"):
        with Load(ctx, LoadSpec(bad, "http://127.0.0.1:9", users=1, duration=5)):
            pass


def test_a_locustfile_that_does_not_parse_is_refused_before_starting(ctx, tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("from locust import task\ndef oops(:\n")
    with pytest.raises(ConfigError, match=r"locustfile .*broken.py does not parse: line 2"):
        Load(ctx, LoadSpec(bad, "http://127.0.0.1:9")).__enter__()
    assert ctx.tl.events == []


def test_every_bad_setting_is_reported_at_once(ctx, tmp_path):
    spec = LoadSpec(tmp_path / "missing.py", "198.18.0.20", users=0, duration=-1, shape="wave", workers=99)
    with pytest.raises(ConfigError) as info:
        Load(ctx, spec).__enter__()
    text = str(info.value)
    for part in (
        "missing.py does not exist",
        "unknown load shape 'wave'",
        "users=0",
        "duration=-1",
        "workers=99",
        "host='198.18.0.20'",
    ):
        assert part in text
    assert ctx.tl.events == []


def test_load_is_bounded(ctx):
    with pytest.raises(ConfigError, match="users=10000"):
        LoadSpec(LOCUSTFILE, "http://x", users=10_000).validate()
    with pytest.raises(ConfigError, match="duration=3600"):
        LoadSpec(LOCUSTFILE, "http://x", duration=3600).validate()


@pytest.mark.parametrize("shape", ["step", "spike"])
def test_shapes_drive_the_user_count(ctx, target, shape):
    spec = LoadSpec(
        LOCUSTFILE,
        target,
        users=6,
        duration=4,
        user_rps=2,
        shape=shape,
        shape_env={"CHAOS_LOAD_SPIKE_AT": "1", "CHAOS_LOAD_SPIKE_FOR": "2", "CHAOS_LOAD_BASE_USERS": "2"},
    )
    with Load(ctx, spec) as run:
        run.wait()
    users = [p.users for p in run.points]
    assert max(users) == 6
    assert min(u for u in users if u) < 6


def test_a_dry_run_load_sends_no_traffic(tmp_path):
    ctx = RunContext(journal=None, dry_run=True)  # type: ignore[arg-type]
    spec = LoadSpec(locustfile=LOADTESTS_DIR / "workload.py", host="http://198.18.0.20", users=5, duration=5)
    with Load(ctx, spec) as run:
        assert not run.running and run.pid is None  # no locust process exists
        run.wait()
    assert run.requests() == 0
    [note] = [e for e in ctx.tl.events if e.name == "dry-run"]
    assert "would run Locust (5 users x 2 req/s, steady, 5 s) against http://198.18.0.20" in note.data["load"]
