"""What the lab benchmarks share: the resilient lab, left as it was found, and a scratch dir."""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chaos import Journal, RunContext
from chaos.fault import Fault
from chaos.lab import Lab, LabPlatform


def parser(doc: str | None, runs: int) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=runs)
    return ap


@contextmanager
def resilient_lab() -> Iterator[tuple[Lab, Path]]:
    lab = Lab()
    was_up = lab.state() is not None
    lab.up("resilient")
    try:
        with tempfile.TemporaryDirectory() as d:
            yield lab, Path(d)
    finally:
        if not was_up:
            lab.down()


def time_fault(make: Callable[[], Fault], runs: int) -> tuple[float, float]:
    """Median seconds from entering ``make()`` until it is verified, and to revert it."""
    ins, outs = [], []
    for _ in range(runs):
        f = make()
        t = time.perf_counter()
        f.__enter__()
        ins.append(time.perf_counter() - t)
        t = time.perf_counter()
        f.__exit__(None, None, None)
        outs.append(time.perf_counter() - t)
    return statistics.median(ins), statistics.median(outs)


def healthy_platform(lab: Lab, tmp: Path, seed: int = 0) -> LabPlatform:
    """A platform on ``lab`` with a journal of its own in ``tmp``, once the lab is healthy."""
    p = LabPlatform(lab, RunContext(journal=Journal(tmp / "j.json"), rng=random.Random(seed)))
    p.wait_healthy()
    return p
