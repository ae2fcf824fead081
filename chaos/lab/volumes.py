"""Lab volumes: a loop-mounted ext4 image (the disk) served to its service through the lab's
storage daemon (``faultfs``, FUSE), so a full, failing or read-only disk is real kernel
behaviour and a slow or flaky one can be switched on while the service has files open.

    image  volumes/<name>.img    sparse, mkfs.ext4 -m 0 (no reserved blocks hide a full disk)
    disk   disk/<name>           the ext4 mount (loop device)
    mount  mnt/<name>            faultfs over the disk: what the service uses

Only images under the lab's own state directory are ever touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import PlatformError
from chaos.lab import procs
from chaos.wait import WaitTimeout, wait_until

FUSE_TYPE = "fuse.chaosfs"


@dataclass(frozen=True)
class Volume:
    name: str
    image: Path
    disk: Path
    mountpoint: Path
    control: Path
    status: Path

    @classmethod
    def under(cls, root: Path, name: str) -> Volume:
        return cls(
            name,
            root / "volumes" / f"{name}.img",
            root / "disk" / name,
            root / "mnt" / name,
            root / "run" / f"faultfs-{name}.json",
            root / "run" / f"faultfs-{name}.status.json",
        )


@dataclass(frozen=True)
class Served:
    """A volume's storage daemon, as recorded in the lab's state."""

    name: str
    pid: int = 0
    start: str = ""

    @property
    def proc(self) -> procs.Proc:
        return procs.Proc(self.pid, self.start)


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise PlatformError(f"{argv[0]} is not installed (apt-get install e2fsprogs mount fuse3)") from exc
    except subprocess.CalledProcessError as exc:
        raise PlatformError(f"{' '.join(argv)} failed: {exc.stderr.strip() or exc.returncode}") from exc
    return out.stdout


def mounts() -> dict[str, tuple[str, str]]:
    """Mount point -> (source, filesystem type), from the kernel's table."""
    out = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2:
            out[fields[1].replace("\\040", " ")] = (fields[0], fields[2])
    return out


def mounted_roots() -> set[Path]:
    """The state directory of every lab with a volume still mounted, found by the layout above
    in the kernel's mount table: a served view (``<root>/mnt/<name>``, the storage daemon's
    type) or a disk (``<root>/disk/<name>``, over ``<root>/volumes/<name>.img``). Finds a lab
    whose processes all died, which no process's environment names any more."""
    roots: set[Path] = set()
    for point, (_, fstype) in mounts().items():
        where = Path(point)
        root, kind = where.parent.parent, where.parent.name
        served = kind == "mnt" and fstype == FUSE_TYPE
        if served or (kind == "disk" and (root / "volumes" / f"{where.name}.img").is_file()):
            roots.add(root)
    return roots


def is_mounted(path: Path) -> bool:
    return str(path) in mounts()


def loops_for(image: Path) -> list[str]:
    """Loop devices backed by ``image`` (found by the kernel's record, not by our state)."""
    if not image.exists():
        return []
    out = _run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)])
    return [line.strip() for line in out.splitlines() if line.strip()]


def managed(vol: Volume) -> str | None:
    """Why ``vol`` is not a volume this lab made and serves, or None when it is: the disk is
    an ext4 mount of a loop device on the lab's image, and faultfs serves it."""
    table = mounts()
    disk = table.get(str(vol.disk))
    if disk is None or disk[1] != "ext4":
        return f"{vol.disk} is not an ext4 mount"
    if disk[0] not in loops_for(vol.image):
        return f"{vol.disk} is mounted from {disk[0]}, not from the lab's image {vol.image}"
    served = table.get(str(vol.mountpoint))
    if served is None or served[1] != FUSE_TYPE:
        return f"{vol.mountpoint} is not served by the lab's storage daemon"
    return None


def create_disk(vol: Volume, size_mb: int) -> None:
    """Make the image (once) and mount it on the disk path; idempotent."""
    vol.image.parent.mkdir(parents=True, exist_ok=True)
    vol.disk.mkdir(parents=True, exist_ok=True)
    if is_mounted(vol.disk):
        return
    if not vol.image.exists():
        with open(vol.image, "wb") as fh:
            fh.truncate(size_mb * 1024 * 1024)
        _run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", f"chaos-{vol.name}"[:16], str(vol.image)])
    _run(["mount", "-o", "loop", str(vol.image), str(vol.disk)])


def serve(vol: Volume, log: Path, netns: str | None, role: str = "") -> procs.Proc:
    """Start the storage daemon over the disk and wait until the mount is served. It runs in
    the node's network namespace so `lab down` finds it with the node's other processes."""
    vol.mountpoint.mkdir(parents=True, exist_ok=True)
    vol.control.parent.mkdir(parents=True, exist_ok=True)
    # a fresh daemon starts with no fault: rules left by a crashed run must not come back
    vol.control.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "chaos.lab.faultfs", "--name", vol.name]
    argv += ["--source", str(vol.disk), "--mountpoint", str(vol.mountpoint)]
    argv += ["--control", str(vol.control), "--status", str(vol.status)]
    proc = procs.spawn(argv, log, netns=netns, role=role)
    try:
        wait_until(
            lambda: mounts().get(str(vol.mountpoint), ("", ""))[1] == FUSE_TYPE,
            timeout=15,
            interval=0.02,
            what=f"the storage daemon to serve {vol.mountpoint}",
            abort=lambda: (
                None if proc.alive() else f"faultfs {vol.name} exited (is fuse3 installed?); see {log}"
            ),
        )
    except WaitTimeout:
        procs.kill(proc)
        raise
    return proc


def unserve(vol: Volume, daemon: procs.Proc | None) -> None:
    """Unmount the served view and stop its daemon; a daemon that died leaves a mount the
    kernel answers with ENOTCONN, which a lazy unmount removes."""
    if is_mounted(vol.mountpoint):
        try:
            _run(["umount", str(vol.mountpoint)])
        except PlatformError:
            _run(["umount", "--lazy", str(vol.mountpoint)])
    if daemon is not None:
        procs.kill(daemon)


def unmount_disk(vol: Volume) -> None:
    if is_mounted(vol.disk):
        _run(["umount", str(vol.disk)])
    for dev in loops_for(vol.image):
        _run(["losetup", "--detach", dev])


def destroy(vol: Volume, daemon: procs.Proc | None = None) -> None:
    """Unmount everything, detach every loop device on the image, delete it; idempotent."""
    unserve(vol, daemon)
    unmount_disk(vol)
    vol.image.unlink(missing_ok=True)
    for path in (vol.mountpoint, vol.disk, vol.control, vol.status):
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            os.unlink(path)
