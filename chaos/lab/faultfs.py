"""The lab's storage daemon: a passthrough FUSE filesystem over a volume's ext4 mount that can
be told, while files are open, to add latency, fail a share of operations, or refuse writes.

``python -m chaos.lab.faultfs --source DISK --mountpoint MNT --control FILE --status FILE``

Services keep their data under MNT, so every operation they make passes through here. The
daemon polls the control file (JSON ``{"generation", "mode", "latency", "rate", "errno",
"seed"}``) and acknowledges each generation it applies in the status file, with counts of
the operations it slowed or failed. Killing the daemon is the ``lost`` storage fault: the
kernel then answers every operation on MNT with ENOTCONN.

Files are opened with ``direct_io`` so the page cache cannot hide a read fault, except the
ones a service maps into memory (etcd's bbolt database ``db``, and ``*.db``): the kernel refuses a
shared mapping of a direct-I/O FUSE file unless libfuse negotiates FUSE_DIRECT_IO_ALLOW_MMAP,
which Debian 12's libfuse 3.14 does not.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# mfusepy looks for libfuse 2 first; the daemon is written against libfuse 3 (Debian's fuse3:
# libfuse3.so.3 on Debian 12, .so.4 on 13, same API)
os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
import mfusepy  # type: ignore[import-untyped]

MODES = ("none", "slow", "flaky", "read_only")
# operations a fault acts on; getattr/readdir/statfs/release stay untouched so a service can
# still see and close its files (a failing release would leak descriptors, not test anything)
_CHANGES = frozenset({"create", "write", "truncate", "fallocate", "unlink", "rename", "mkdir", "rmdir"})
FAULTED = _CHANGES | {"open", "read", "fsync"}
MUTATING = _CHANGES | {"chmod", "chown", "utimens", "link", "symlink"}
POLL_S = 0.02


@dataclass(frozen=True)
class Rules:
    generation: int = 0
    mode: str = "none"
    latency: float = 0.0
    rate: float = 0.0
    errno: int = errno.EIO
    seed: int = 0

    @classmethod
    def load(cls, path: Path) -> Rules:
        data = json.loads(path.read_text())
        return cls(**{k: data[k] for k in asdict(cls()) if k in data})


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: the other side never reads half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class Faults:
    """The rules in force, reloaded from the control file, and what they did."""

    def __init__(self, control: Path, status: Path) -> None:
        self.control, self.status = control, status
        self.rules = Rules()
        self.rng = random.Random(0)
        self.lock = threading.Lock()
        self.counts = {"ops": 0, "slowed": 0, "failed": 0}
        self._mtime = -1

    def reload(self) -> None:
        try:
            mtime = self.control.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            rules = Rules.load(self.control)
        except (ValueError, TypeError) as exc:
            print(f"faultfs: ignoring unreadable control file: {exc}", file=sys.stderr, flush=True)
            return
        with self.lock:
            if rules.generation != self.rules.generation:
                self.rules = rules
                self.rng = random.Random(rules.seed)
                self.counts = {"ops": 0, "slowed": 0, "failed": 0}
        self.report()

    def report(self) -> None:
        with self.lock:
            data = {**asdict(self.rules), **self.counts, "pid": os.getpid()}
        write_json(self.status, data)

    def watch(self) -> None:
        last_report = 0.0
        while True:
            self.reload()
            now = time.monotonic()
            if now - last_report > 0.5:  # counts for the evidence, twice a second
                self.report()
                last_report = now
            time.sleep(POLL_S)

    def check(self, op: str, *, writes: bool = False) -> None:
        """Apply the rules to one operation: sleep, or raise the configured error."""
        if op not in FAULTED and op not in MUTATING:
            return
        with self.lock:
            rules = self.rules
            self.counts["ops"] += 1
            fail = rules.mode == "flaky" and op in FAULTED and self.rng.random() < rules.rate
            if rules.mode == "read_only" and (op in MUTATING or writes):
                self.counts["failed"] += 1
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            if fail:
                self.counts["failed"] += 1
            elif rules.mode == "slow" and op in FAULTED:
                self.counts["slowed"] += 1
        if fail:
            raise OSError(rules.errno, os.strerror(rules.errno))
        if rules.mode == "slow" and op in FAULTED:
            time.sleep(rules.latency)


class FaultFS(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, source: Path, faults: Faults) -> None:
        self.source = str(source)
        self.faults = faults

    def _p(self, path: str) -> str:
        return self.source + path

    # -- metadata --------------------------------------------------------------------------------
    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        st = os.fstat(fh.fh) if fh is not None else os.lstat(self._p(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino", "st_blocks")
        out: dict[str, Any] = {k: getattr(st, k) for k in keys}
        out.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return out

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *os.listdir(self._p(path))]

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self._p(path))
        keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_namemax")
        return {k: getattr(sv, k) for k in keys}

    def readlink(self, path: str) -> str:
        return os.readlink(self._p(path))

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._p(path), amode):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self.faults.check("chmod")
        os.chmod(self._p(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self.faults.check("chown")
        os.chown(self._p(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self.faults.check("utimens")
        if times is None:
            os.utime(self._p(path))
        else:
            os.utime(self._p(path), ns=times)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self.faults.check("mkdir")
        os.mkdir(self._p(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        self.faults.check("rmdir")
        os.rmdir(self._p(path))
        return 0

    def unlink(self, path: str) -> int:
        self.faults.check("unlink")
        os.unlink(self._p(path))
        return 0

    def rename(self, old: str, new: str) -> int:
        self.faults.check("rename")
        os.rename(self._p(old), self._p(new))
        return 0

    def link(self, target: str, source: str) -> int:
        self.faults.check("link")
        os.link(self._p(source), self._p(target))
        return 0

    def symlink(self, target: str, source: str) -> int:
        self.faults.check("symlink")
        os.symlink(source, self._p(target))
        return 0

    # -- files -----------------------------------------------------------------------------------
    def _opened(self, fi: Any, fd: int, path: str) -> int:
        fi.fh = fd
        name = path.rsplit("/", 1)[-1]
        fi.direct_io = 0 if name == "db" or name.endswith(".db") else 1
        return 0

    def open(self, path: str, fi: Any) -> int:
        self.faults.check("open", writes=bool(fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC)))
        return self._opened(fi, os.open(self._p(path), fi.flags & ~os.O_DIRECT), path)

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        self.faults.check("create")
        fd = os.open(self._p(path), (fi.flags & ~os.O_DIRECT) | os.O_CREAT, mode)
        return self._opened(fi, fd, path)

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        self.faults.check("read")
        return os.pread(fh.fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
        self.faults.check("write")
        return os.pwrite(fh.fh, data, offset)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        self.faults.check("truncate")
        if fh is not None:
            os.ftruncate(fh.fh, length)
        else:
            os.truncate(self._p(path), length)
        return 0

    def fallocate(self, path: str, mode: int, offset: int, size: int, fh: Any) -> int:
        self.faults.check("fallocate")
        if mode != 0:
            # keep-size and hole punching have no portable Python call; callers fall back
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        os.posix_fallocate(fh.fh, offset, size)
        return 0

    def fsync(self, path: str, datasync: int, fh: Any) -> int:
        self.faults.check("fsync")
        (os.fdatasync if datasync else os.fsync)(fh.fh)
        return 0

    def flush(self, path: str, fh: Any) -> int:
        return 0

    def release(self, path: str, fh: Any) -> int:
        os.close(fh.fh)
        return 0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.faultfs")
    ap.add_argument("--source", required=True, type=Path, help="the volume's ext4 mount")
    ap.add_argument("--mountpoint", required=True, type=Path, help="where services see it")
    ap.add_argument("--control", required=True, type=Path)
    ap.add_argument("--status", required=True, type=Path)
    ap.add_argument("--name", default="volume")
    args = ap.parse_args(argv)
    faults = Faults(args.control, args.status)
    faults.reload()
    faults.report()
    threading.Thread(target=faults.watch, name="control", daemon=True).start()
    print(f"faultfs {args.name}: {args.source} on {args.mountpoint}", flush=True)
    mfusepy.FUSE(
        FaultFS(args.source, faults),
        str(args.mountpoint),
        raw_fi=True,
        foreground=True,
        # unlink at once, never rename to .fuse_hidden*: etcd removes files it still holds open
        # and then expects the directory empty (a hidden leftover failed a member's first start)
        hard_remove=True,
        fsname=f"chaos-{args.name}",
        subtype="chaosfs",
    )


if __name__ == "__main__":
    main()
