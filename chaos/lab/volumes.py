"""Lab volumes: loop-mounted ext4 images, so a full or failing disk is real kernel behaviour.

Images are made with ``-m 0`` so root's reserved blocks never hide a full filesystem.
Only images under the lab's own volume directory are ever touched.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import PlatformError


@dataclass(frozen=True)
class Volume:
    name: str
    image: Path
    mountpoint: Path


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise PlatformError(f"{argv[0]} is not installed (apt-get install e2fsprogs mount)") from exc
    except subprocess.CalledProcessError as exc:
        raise PlatformError(f"{' '.join(argv)} failed: {exc.stderr.strip() or exc.returncode}") from exc
    return out.stdout


def is_mounted(path: Path) -> bool:
    target = str(path.resolve()) if path.exists() else str(path)
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[1] == target:
            return True
    return False


def loops_for(image: Path) -> list[str]:
    """Loop devices backed by ``image`` (found by the kernel's record, not by our state)."""
    if not image.exists():
        return []
    out = _run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(image)])
    return [line.strip() for line in out.splitlines() if line.strip()]


def create(vol: Volume, size_mb: int = 64) -> None:
    vol.image.parent.mkdir(parents=True, exist_ok=True)
    vol.mountpoint.mkdir(parents=True, exist_ok=True)
    if is_mounted(vol.mountpoint):
        return
    if not vol.image.exists():
        with open(vol.image, "wb") as fh:
            fh.truncate(size_mb * 1024 * 1024)
        _run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", f"chaos-{vol.name}"[:16], str(vol.image)])
    _run(["mount", "-o", "loop", str(vol.image), str(vol.mountpoint)])


def destroy(vol: Volume) -> None:
    """Unmount, detach every loop device on the image, delete it; idempotent."""
    if is_mounted(vol.mountpoint):
        _run(["umount", str(vol.mountpoint)])
    for dev in loops_for(vol.image):
        _run(["losetup", "--detach", dev])
    vol.image.unlink(missing_ok=True)
    if vol.mountpoint.exists():
        vol.mountpoint.rmdir()
