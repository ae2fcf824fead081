"""Storage fault benchmarks: medians over repeated runs.

    .venv/bin/python benchmarks/bench_storage.py [--runs 5]

1. inject (verified) and revert time per storage mode, on the inventory's volume (east-inv)
   and on a master's (m3; its etcd keeps running or is restarted by the revert);
2. the storage daemon (faultfs, FUSE, no fault) against the raw ext4 volume under it:
   sequential write and read of 64 MiB in 1 MiB blocks (O_DIRECT on the raw disk, direct_io
   through faultfs, so neither is served from the page cache), and 4 KiB write + fsync
   operations per second (the shape of a write-ahead log or the inventory's ledger).
Needs root; leaves the lab as it found it.
"""

from __future__ import annotations

import mmap
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchlab import healthy_platform, parser, resilient_lab, time_fault

from chaos import fail_storage
from chaos.fault import Fault
from chaos.platform import STORAGE_EXAMPLES, STORAGE_MODES

MIB = 1 << 20
SIZE = 64 * MIB


def _aligned(size: int) -> mmap.mmap:
    buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(size))
    return buf


def seq_write(path: Path, direct: bool) -> float:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0)
    block = _aligned(MIB)
    fd = os.open(path, flags, 0o600)
    try:
        t = time.perf_counter()
        for _ in range(SIZE // MIB):
            os.write(fd, block)
        os.fsync(fd)
        return SIZE / (time.perf_counter() - t) / 1e6
    finally:
        os.close(fd)


def seq_read(path: Path, direct: bool) -> float:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
    block = _aligned(MIB)
    try:
        t = time.perf_counter()
        while os.readv(fd, [block]):
            pass
        return SIZE / (time.perf_counter() - t) / 1e6
    finally:
        os.close(fd)


def synced_ops(path: Path, n: int = 500) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    payload = os.urandom(4096)
    try:
        t = time.perf_counter()
        for _ in range(n):
            os.write(fd, payload)
            os.fsync(fd)
        return n / (time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)


def bench_daemon(raw: Path, served: Path, runs: int) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("write", "read", "ops")}
    for _ in range(runs):
        for i, (base, direct) in enumerate(((raw, True), (served, False))):
            path = base / ".chaos-bench"
            out["write"][i].append(seq_write(path, direct))
            out["read"][i].append(seq_read(path, direct))
            os.unlink(path)
            out["ops"][i].append(synced_ops(path))
    return {k: (statistics.median(a), statistics.median(b)) for k, (a, b) in out.items()}


def main() -> None:
    args = parser(__doc__, 5).parse_args()
    with resilient_lab() as (lab, tmp):
        p = healthy_platform(lab, tmp)
        times: list[tuple[str, str, float, float]] = []
        for volume in ("east-inv", "m3"):
            for mode in STORAGE_MODES:

                def make(volume: str = volume, mode: str = mode) -> Fault:
                    return fail_storage(p, volume, STORAGE_EXAMPLES[mode])

                make_fault: Callable[[], Fault] = make
                times.append((volume, mode, *time_fault(make_fault, args.runs)))
        vol = lab.volume("east-inv")
        daemon = bench_daemon(vol.disk, vol.mountpoint, args.runs)
    print(f"\nstorage fault inject (until verified) and revert, medians over {args.runs} runs")
    print(f"{'volume':10} {'mode':10} {'inject ms':>10} {'revert ms':>10}")
    for volume, mode, i, o in times:
        print(f"{volume:10} {mode:10} {i * 1000:10.1f} {o * 1000:10.1f}")
    print(f"\nstorage daemon (no fault) vs the raw ext4 volume, medians over {args.runs} runs")
    print(f"{'':28} {'raw':>10} {'faultfs':>10} {'ratio':>7}")
    for key, label in (
        ("write", "seq write 64 MiB, MB/s"),
        ("read", "seq read 64 MiB, MB/s"),
        ("ops", "4 KiB write+fsync, ops/s"),
    ):
        raw, served = daemon[key]
        print(f"{label:28} {raw:10.0f} {served:10.0f} {served / raw:7.2f}")


if __name__ == "__main__":
    main()
