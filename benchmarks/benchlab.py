"""What the lab benchmarks share: the resilient lab, left as it was found, and a scratch dir."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaos.lab import Lab


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
