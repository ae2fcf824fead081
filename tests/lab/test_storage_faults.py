"""Storage faults on real lab volumes: refused before anything changes when the request is
wrong; each mode verified, reverted, and recovered by `chaos recover` after a killed run,
with the volume mounted, writable and its fsynced data intact."""

import json
import os

import pytest

from chaos import (
    ConfigError,
    Journal,
    RunContext,
    Steady,
    SteadyStateViolation,
    UnsafeFaultRefused,
    fail_storage,
    kill_service,
)
from chaos.context import default_journal
from chaos.lab import LabPlatform, procs, volumes
from chaos.lab.storage import io_problem
from chaos.lab.volumes import Volume, managed
from tests.lab.conftest import chaos_cli, kill_a_run_when_ready

pytestmark = pytest.mark.lab


def platform_of(lab):
    return LabPlatform(lab, RunContext())


def faults_in_force(lab):
    return {v["name"]: v["fault"] for v in lab.status().volumes}


@pytest.mark.parametrize(
    ("volume", "mode", "params", "message"),
    [
        ("m9", "full", {}, "'m9' is not a lab volume; the lab only fails file systems it created: m1, m2"),
        ("/var/lib", "full", {}, "'/var/lib' is not a lab volume"),
        ("m1", "melted", {}, "unknown storage mode 'melted'; modes are: full, read_only, io_error, slow"),
        ("m1", "slow", {}, "latency=0.0 s: use more than 0 and at most 5 s"),
        ("m1", "slow", {"latency": 60}, "latency=60 s: use more than 0 and at most 5 s"),
        ("m1", "flaky", {"rate": 1.5}, "rate=1.5: a share of operations above 0 and at most 1"),
        ("m1", "flaky", {"rate": 0.5, "errno": "EPERM"}, "errno='EPERM': use one of EIO, ENOSPC"),
        ("m1", "full", {"rate": 0.5}, "rate= and errno= apply to mode 'flaky' only, not 'full'"),
    ],
)
def test_bad_input_is_refused_before_anything_changes(resilient_lab, volume, mode, params, message):
    with pytest.raises(ConfigError) as err, fail_storage(platform_of(resilient_lab), volume, mode, **params):
        pass
    assert message in str(err.value)
    assert default_journal().entries() == []
    assert set(faults_in_force(resilient_lab).values()) == {"none"}


def test_failing_a_majority_of_masters_needs_an_explicit_override(resilient_lab):
    with (
        pytest.raises(UnsafeFaultRefused, match="below quorum"),
        fail_storage(platform_of(resilient_lab), ["m1", "m2"], "read_only"),
    ):
        pass
    assert default_journal().entries() == []
    assert set(faults_in_force(resilient_lab).values()) == {"none"}


def test_a_file_system_the_lab_did_not_create_is_never_managed(tmp_path):
    (tmp_path / "data").mkdir()
    vol = Volume.under(tmp_path, "data")
    assert managed(vol) == f"{vol.disk} is not an ext4 mount"


EXPECTED = {
    "full": "ENOSPC",
    "read_only": "EROFS",
    "io_error": "EIO",
    "flaky": "EIO",
    "lost": "ENOTCONN",
}


@pytest.mark.parametrize("mode", ["full", "read_only", "io_error", "slow", "flaky", "lost"])
def test_each_mode_is_in_effect_while_in_force_and_gone_after(resilient_lab, mode):
    mount = resilient_lab.volume("east-inv").mountpoint
    params = {"latency": 0.05} if mode == "slow" else {"rate": 1.0} if mode == "flaky" else {}
    with fail_storage(platform_of(resilient_lab), "east-inv", mode, **params) as fault:
        problem = io_problem(mount)
        if mode == "slow":
            assert problem is None
            assert fault.details()["measured"]["east-inv"]["per_operation_ms"] >= 40
        else:
            assert problem is not None and problem.startswith(EXPECTED[mode])
    assert io_problem(mount) is None
    assert default_journal().entries() == []
    assert resilient_lab.status().problems == []


def test_a_file_removed_while_open_is_gone_at_once(resilient_lab):
    # the storage daemon must not hide it as .fuse_hidden*: etcd removes files it holds open and
    # then expects their directory empty
    d = resilient_lab.volume("east-inv").mountpoint / "chaos-open-unlink"
    d.mkdir()
    try:
        fd = os.open(d / "f", os.O_WRONLY | os.O_CREAT, 0o644)
        os.unlink(d / "f")
        assert os.listdir(d) == []
        os.close(fd)
    finally:
        for leftover in os.listdir(d):
            os.unlink(d / leftover)
        d.rmdir()


def _write_synced(path, payload):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


KILLED_RUN = """
    import pathlib, time
    from chaos import fail_storage

    def test_hangs_with_storage_failing(platform):
        with fail_storage(platform, "east-inv", {mode!r}{params}):
            pathlib.Path({ready!r}).write_text("failing")
            time.sleep(120)
"""


@pytest.mark.parametrize("mode", ["full", "read_only", "io_error", "slow", "flaky", "lost"])
def test_chaos_recover_restores_a_volume_after_a_killed_run(resilient_lab, tmp_path, mode):
    mount = resilient_lab.volume("east-inv").mountpoint
    precious = os.urandom(4096)
    _write_synced(mount / "precious.bin", precious)
    params = {"slow": ", latency=0.05", "flaky": ", rate=1.0"}.get(mode, "")
    source = KILLED_RUN.replace("{mode!r}", repr(mode)).replace("{params}", params)
    kill_a_run_when_ready(tmp_path, source)
    [entry] = default_journal().entries()
    assert entry.kind == "lab.volume.restore" and entry.undo["mode"] == mode
    if mode != "slow":
        assert io_problem(mount) is not None  # the killed run left the volume failing
    out = chaos_cli("recover")
    assert out.returncode == 0, out.stderr
    assert f"undone: restore volume east-inv ({mode})" in out.stdout
    assert io_problem(mount) is None  # mounted and writable
    assert (mount / "precious.bin").read_bytes() == precious  # fsynced data intact
    assert not [p for p in os.listdir(resilient_lab.volume("east-inv").disk) if p.startswith(".chaos-")]
    status = json.loads(chaos_cli("lab", "status", "--json").stdout)
    assert status["problems"] == []
    assert {v["name"]: v["fault"] for v in status["volumes"]}["east-inv"] == "none"
    assert default_journal().entries() == []
    os.unlink(mount / "precious.bin")


def test_lost_writes_are_caught_on_the_write_behind_inventory(fragile_lab, tmp_path):
    """The negative control of `writes.lost() == 0`: the fragile inventory acknowledges
    writes its read-only volume refused; after a restart they are gone, and the check says so."""
    p = LabPlatform(fragile_lab, RunContext(journal=Journal(tmp_path / "journal.json")))
    steady = Steady(p.ctx)
    writes = steady.durability(p.inventory("east"), name="reservations")
    try:
        steady.baseline(seconds=1)
        with fail_storage(p, "east-inv", "read_only"):
            steady.hold(seconds=1, phase="during")
        steady.expect(writes.failures("during") == 0)  # not one was refused while the disk was
        with kill_service(p, "east-inv"):
            pass
        with pytest.raises(SteadyStateViolation, match=r"reservations lost \(acknowledged\)") as info:
            steady.expect(writes.lost() == 0)
        lost = info.value.evidence[0]["measured"]
        assert lost >= 5  # ~20 writes a second for a second, all acknowledged, none on disk
    finally:
        steady.stop()


def test_a_full_disk_stays_full_when_its_owner_frees_a_few_blocks(resilient_lab):
    """What CI caught: a store freed a few KiB after the fill (a temp file deleted on ENOSPC);
    the top-up wrote 4 KiB at a time, got ENOSPC with 1 KiB blocks still free, and the next
    small write succeeded. The fill must take every last block, whatever is freed."""
    vol = resilient_lab.volume("east-inv")
    spare = vol.mountpoint / "chaos-spare"
    for size in (1024, 2048, 3072):
        _write_synced(spare, os.urandom(size))
        with fail_storage(platform_of(resilient_lab), "east-inv", "full") as fault:
            os.unlink(spare)  # behind the fault's back: up to 3 blocks free, under 4 KiB
            os.sync()  # ext4 reuses freed blocks once the journal commits them
            fault.verify()
            assert io_problem(vol.mountpoint).startswith("ENOSPC")
    assert io_problem(vol.mountpoint) is None
    assert default_journal().entries() == []


def test_a_storage_daemon_started_but_never_recorded_is_replaced_when_the_fault_reverts(resilient_lab):
    """`chaos recover` killed half-way through restoring a volume (crash trials: 1 of 4) left
    the recorded daemon gone and a new one serving that it never recorded. The mount worked, so
    the next restore saw nothing to do and the lab kept a daemon it did not know. A restore now
    remounts whenever the recorded daemon is gone, stopping any daemon of that volume first."""
    lab, name = resilient_lab, "m3"
    with fail_storage(LabPlatform(lab, RunContext()), name, "io_error"):
        st, vol = lab.state(), lab.volume(name)
        procs.kill(st.member(name).proc)
        volumes.unserve(vol, st.daemon(name).proc)
        volumes.unmount_disk(vol)
        volumes.create_disk(vol, 0)  # the image exists: mounted afresh, as the recovery did
        role = procs.role_of(lab.root, name, "storage")
        stray = volumes.serve(vol, lab.logs / "faultfs-stray.log", f"chaos-{name}", role)
    assert not stray.alive()
    assert lab.state().daemon(name).proc.alive()
    assert lab.status().problems == []
    assert default_journal().entries() == []
