"""Lab storage faults: a volume fills up, turns read-only, fails every I/O, slows down,
fails a share of operations, or loses its storage daemon.

``full`` fills the ext4 disk itself; ``io_error`` shuts it down (EXT4_IOC_SHUTDOWN, without
flushing the log: what was fsynced survives, what was not may not); ``lost`` SIGKILLs the
storage daemon; ``read_only``, ``slow`` and ``flaky`` are rules the storage daemon applies
to every operation, which works while the service keeps its files open (a remount read-only
is refused while any file is open for writing, as etcd's write-ahead log always is).

One undo serves every mode: clear the daemon's rules, delete this fault's fill file, mount
the disk afresh if it no longer answers (shut down, or its daemon gone), then start the
volume's owner again if the fault killed it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, PlatformError, UnsafeFaultRefused
from chaos.fault import not_in_effect
from chaos.journal import register_undo
from chaos.lab import procs, volumes
from chaos.lab.faultfs import Rules, write_json
from chaos.lab.lab import Lab, LabState
from chaos.lab.labfault import MIN_SAMPLED_RATE, LabFault, sample_budget
from chaos.platform import StorageFault, quorum
from chaos.wait import WaitTimeout, wait_until

RESTORE = "lab.volume.restore"
EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 2
CHUNK = 1 << 20


def _scratch(what: str, tag: str) -> str:
    return f".chaos-{what}-{tag}"


def set_rules(vol: volumes.Volume, rules: Rules, timeout: float = 3.0) -> None:
    """Hand the daemon new rules and wait until it says it applies them."""
    write_json(vol.control, asdict(rules))

    def applied() -> bool:
        try:
            return bool(json.loads(vol.status.read_text()).get("generation") == rules.generation)
        except (OSError, ValueError):
            return False

    wait_until(
        applied, timeout=timeout, interval=0.01, what=f"the storage daemon of {vol.name} to apply rules"
    )


def _next_generation() -> int:
    # a wall-clock generation stays unique across runner crashes and daemon restarts
    return time.time_ns() // 1000


def _fill_to_the_end(fd: int) -> None:
    """Append to ``fd`` until not one more block fits, then sync what fits.

    A 4 KiB write is refused while a few 1 KiB blocks are still free (small ext4 disks use
    1 KiB blocks), so the fill steps down to single blocks.
    """
    bsize = os.fstatvfs(fd).f_bsize
    offset = os.fstat(fd).st_size
    for size in (max(4096, bsize), bsize):
        offset = -(-offset // bsize) * bsize  # a fresh block each write: no partly used one
        block = b"\0" * size
        while True:
            try:
                offset += os.pwrite(fd, block, offset)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    break
                raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise


MAX_CRUMBS = 64


def _fill_crumbs(disk: Path, tag: str) -> int:
    """Take the blocks a growing file cannot: one small file per block, until none fits.

    Appending to a large file needs room for its extent tree besides the data, so ext4 refuses
    it with a block or two still free; a new small file (its extent in the inode) would then
    still be written, and the disk would not read as full. What CI once saw: 1 KiB free after
    three top-ups, and a store's next write succeeding. Returns how many crumbs were laid.
    """
    bsize = os.statvfs(disk).f_bsize
    laid = 0
    for i in range(MAX_CRUMBS):
        path = disk / f"{_scratch('fill', tag)}.{i}"
        if path.exists():
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                break
            raise
        try:
            os.write(fd, b"\0" * bsize)
            os.fsync(fd)
            laid += 1
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            break
        finally:
            os.close(fd)
    return laid


def _top_up(disk: Path, tag: str) -> None:
    fd = os.open(disk / _scratch("fill", tag), os.O_WRONLY)
    try:
        _fill_to_the_end(fd)
    finally:
        os.close(fd)
    _fill_crumbs(disk, tag)


def _fill_files(disk: Path, tag: str) -> list[Path]:
    return sorted(disk.glob(f"{_scratch('fill', tag)}*"))


def io_problem(path: Path) -> str | None:
    """Why a small write + fsync + read under ``path`` fails, or None when it works."""
    probe = path / ".chaos-check"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
            if os.pread(fd, 2, 0) != b"ok":
                return "read back something else"
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"{errno.errorcode.get(exc.errno or 0, exc.errno)}: {exc.strerror}"
    return None


def _remove_scratch(disk: Path, tag: str) -> None:
    for path in [*_fill_files(disk, tag), disk / _scratch("probe", tag)]:
        path.unlink(missing_ok=True)


@register_undo(RESTORE)
def _restore(undo: dict[str, Any]) -> None:
    lab = Lab(Path(undo["state_dir"]))
    st = lab.state()
    if st is None or st.daemon(undo["volume"]) is None:
        return  # the lab (or this volume) was taken down since: nothing left to restore
    name, tag = undo["volume"], undo["tag"]
    vol = lab.volume(name)
    served = st.daemon(name)
    if served and served.proc.alive():
        try:
            set_rules(vol, Rules(generation=_next_generation()))
        except WaitTimeout:
            # a daemon that no longer takes rules (2 of 512 crash trials: a run killed just as
            # it journaled a storage fault) is replaced by a fresh mount, as a dead one is
            lab.remount_volume(name)
    else:
        # its daemon is gone: killed by the fault (`lost`), or by a recovery itself killed
        # half-way, which may have left a new daemon serving that it never recorded (crash
        # trials, 1 of 4): a working mount would hide it, so always mount afresh
        lab.remount_volume(name)
    # a shut-down disk refuses even this; the fresh mount below cleans it up
    with contextlib.suppress(OSError):
        _remove_scratch(vol.disk, tag)
    if io_problem(vol.mountpoint) is not None:
        lab.remount_volume(name)
        _remove_scratch(vol.disk, tag)
        problem = io_problem(vol.mountpoint)
        if problem:
            raise PlatformError(f"volume {name} still fails after a fresh mount: {problem}")
    if not lab.owner_alive(name):
        lab.start_owner(name)


class FailStorage(LabFault):
    kind = "fail_storage"

    def __init__(
        self,
        ctx: RunContext,
        lab: Lab,
        names: list[str],
        fault: StorageFault,
        allow_below_quorum: bool = False,
    ) -> None:
        super().__init__(ctx, lab)
        self.names = list(names)
        self.fault = fault
        self.allow_below_quorum = allow_below_quorum
        self.measured: dict[str, dict[str, Any]] = {}
        self._probes: dict[str, int] = {}  # volume -> a probe file open on it (slow mode)

    def describe(self) -> str:
        return f"{self.fault.describe()} storage on {', '.join(self.names)}"

    def details(self) -> dict[str, Any]:
        return {"volumes": self.names, **asdict(self.fault), "measured": self.measured}

    # -- refuse before anything changes ------------------------------------------------------------
    def prepare(self) -> None:
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        known = [v.name for v in st.volumes]
        problems = list(self.fault.problems())
        if not self.names:
            problems.append(f"name at least one volume; volumes are: {', '.join(known)}")
        for name in self.names:
            if "/" in name or name not in known:
                problems.append(
                    f"{name!r} is not a lab volume; the lab only fails file systems it created: "
                    f"{', '.join(known)}"
                )
        if len(set(self.names)) != len(self.names):
            problems.append("a volume is named twice")
        if problems:
            raise ConfigError(problems)
        for name in self.names:
            vol = self.lab.volume(name)
            why = volumes.managed(vol)
            if why is not None:
                raise UnsafeFaultRefused(
                    f"volume {name}: {why}; refusing to touch it (`chaos recover` first?)"
                )
            served = st.daemon(name)
            if served is None or not served.proc.alive():
                raise UnsafeFaultRefused(f"volume {name} has no storage daemon running; run `chaos recover`")
        self._quorum_guard(st)

    def _quorum_guard(self, st: LabState) -> None:
        members = [m.name for m in st.members]
        hit = [n for n in self.names if n in members]
        if not hit:
            return
        healthy = [m.name for m in st.members if m.proc.alive()]
        left = len([n for n in healthy if n not in hit])
        need = quorum(len(members))
        if left < need and not self.allow_below_quorum:
            raise UnsafeFaultRefused(
                f"failing the storage of {', '.join(hit)} would leave {left} of {len(members)} masters "
                f"with working storage, below quorum ({need}): the cluster would stop accepting "
                "writes. Pass allow_below_quorum=True to do it anyway"
            )

    def revert(self) -> None:
        try:
            super().revert()
        finally:
            # closing is an operation too (a flush): once the rules are gone it is quick, and no
            # open file keeps the mount busy
            for fd in self._probes.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._probes.clear()

    # -- inject -----------------------------------------------------------------------------------
    def inject(self) -> None:
        for name in self.names:
            vol = self.lab.volume(name)
            self.journaled(
                RESTORE,
                {"state_dir": str(self.lab.root), "volume": name, "mode": self.fault.mode, "tag": self.tag},
                f"restore volume {name} ({self.fault.mode})",
            )
            getattr(self, f"_inject_{self.fault.mode}")(vol)

    def _inject_full(self, vol: volumes.Volume) -> None:
        before = os.statvfs(vol.disk)
        path = vol.disk / _scratch("fill", self.tag)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with_room = before.f_bavail * before.f_frsize
            try:
                os.posix_fallocate(fd, 0, with_room)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        finally:
            os.close(fd)
        # metadata takes a few blocks fallocate could not: write until the disk says no
        _top_up(vol.disk, self.tag)
        after = os.statvfs(vol.disk)
        added = sum(p.stat().st_blocks for p in _fill_files(vol.disk, self.tag)) * 512
        self.measured[vol.name] = {
            "free_before_mb": round(before.f_bavail * before.f_frsize / 2**20, 2),
            "added_mb": round(added / 2**20, 2),
            "free_after_mb": round(after.f_bavail * after.f_frsize / 2**20, 2),
        }

    def _rules(self, vol: volumes.Volume, mode: str) -> None:
        f = self.fault
        rules = Rules(
            generation=_next_generation(),
            mode=mode,
            latency=f.latency,
            rate=f.rate,
            errno=getattr(errno, f.errno),
            seed=self.ctx.rng.randrange(2**31),
        )
        set_rules(vol, rules)

    def _inject_read_only(self, vol: volumes.Volume) -> None:
        self._rules(vol, "read_only")

    def _inject_slow(self, vol: volumes.Volume) -> None:
        # a probe file opened through the served mount before the rules apply: verifying then
        # costs one read (one added latency), not the create, write, fsync, close and unlink
        # of a fresh file (five of them); the undo removes it from the disk itself
        (vol.disk / _scratch("probe", self.tag)).write_bytes(b"x")
        self._probes[vol.name] = os.open(vol.mountpoint / _scratch("probe", self.tag), os.O_RDONLY)
        self._rules(vol, "slow")

    def _inject_flaky(self, vol: volumes.Volume) -> None:
        self._rules(vol, "flaky")

    def _inject_io_error(self, vol: volumes.Volume) -> None:
        fd = os.open(vol.disk, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, EXT4_GOING_FLAGS_NOLOGFLUSH.to_bytes(4, "little"))
        finally:
            os.close(fd)

    def _inject_lost(self, vol: volumes.Volume) -> None:
        st = self.lab.state()
        assert st is not None
        served = st.daemon(vol.name)
        assert served is not None
        procs.kill(served.proc)

    # -- verify (through the served mount: what the service sees) -------------------------------
    def verify(self) -> None:
        for name in self.names:
            vol = self.lab.volume(name)
            getattr(self, f"_verify_{self.fault.mode}")(vol)

    def _expect_errno(self, vol: volumes.Volume, expected: int) -> None:
        problem = io_problem(vol.mountpoint)
        want = errno.errorcode[expected]
        if problem is None or not problem.startswith(want):
            raise not_in_effect(self, f"a write on {vol.name} gave {problem or 'no error'}, expected {want}")

    def _verify_full(self, vol: volumes.Volume) -> None:
        # the volume's owner may free blocks between the fill and this check (a store that
        # deletes a temp file on ENOSPC): a full disk stays full, as when something else fills
        # it, so top the fill up and look again. A fill that misses the disk never gets there
        for _ in range(3):
            problem = io_problem(vol.mountpoint)
            if problem is not None and problem.startswith("ENOSPC"):
                return
            _top_up(vol.disk, self.tag)
            self.measured[vol.name]["topped_up"] = self.measured[vol.name].get("topped_up", 0) + 1
        disk = os.statvfs(vol.disk)
        free = disk.f_bavail * disk.f_frsize
        served = "served" if volumes.is_mounted(vol.mountpoint) else "NOT MOUNTED"
        problem = io_problem(vol.mountpoint)
        raise not_in_effect(
            self,
            f"a write on {vol.name} gave {problem or 'no error'}, expected ENOSPC (disk {vol.disk}: "
            f"{free} bytes free after 3 top-ups; mount {vol.mountpoint}: {served})",
        )

    def _verify_read_only(self, vol: volumes.Volume) -> None:
        self._expect_errno(vol, errno.EROFS)

    def _verify_io_error(self, vol: volumes.Volume) -> None:
        self._expect_errno(vol, errno.EIO)

    def _verify_lost(self, vol: volumes.Volume) -> None:
        # a write, not a stat: the kernel answers a stat from its attribute cache for up to
        # a second after the daemon is gone
        self._expect_errno(vol, errno.ENOTCONN)

    def _verify_slow(self, vol: volumes.Volume) -> None:
        t0 = time.perf_counter()
        os.pread(self._probes[vol.name], 1, 0)  # files are served direct_io: the read reaches the daemon
        per_op = time.perf_counter() - t0
        self.measured[vol.name] = {"per_operation_ms": round(per_op * 1000, 1)}
        if per_op < 0.8 * self.fault.latency:
            raise not_in_effect(
                self,
                f"{vol.name}: {per_op * 1000:.1f} ms per operation, asked +{self.fault.latency * 1000:g} ms",
            )

    def _verify_flaky(self, vol: volumes.Volume) -> None:
        if self.fault.rate < MIN_SAMPLED_RATE:
            self.measured[vol.name] = {"sampled": 0, "note": "rate too low to sample; daemon acknowledged"}
            return
        path = vol.mountpoint / _scratch("probe", self.tag)
        want = getattr(errno, self.fault.errno)
        budget = sample_budget(self.fault.rate)
        failed = tried = 0
        fd = -1
        try:
            while tried < budget and failed == 0:
                tried += 1
                try:
                    if fd < 0:
                        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    os.pwrite(fd, b"x", 0)
                except OSError as exc:
                    if exc.errno != want:
                        why = f"{vol.name}: failed with {exc.strerror}, not {self.fault.errno}"
                        raise not_in_effect(self, why) from exc
                    failed += 1
        finally:
            if fd >= 0:
                os.close(fd)
        self.measured[vol.name] = {"sampled": tried, "first_failure_after": tried if failed else None}
        if not failed:
            raise not_in_effect(self, f"{vol.name}: {tried} operations and none failed")
