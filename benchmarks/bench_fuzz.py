"""Fuzzing beyond CI's fixed sample: the fuzz tests of every surface a user types into (pytest
options, `chaos` command lines) with thousands of fresh random cases.

    .venv/bin/python benchmarks/bench_fuzz.py --examples 5000

Its last line reads ``examples: N per test, tests: T, failed: F``; a failure prints the smallest
case Hypothesis found."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_option_fuzz.py"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=2000, help="random cases per test (default 2000)")
    args = ap.parse_args()
    if args.examples < 1:
        ap.error("--examples: at least 1")
    env = {**os.environ, "CHAOS_FUZZ_EXAMPLES": str(args.examples)}
    argv = [sys.executable, "-m", "pytest", *TESTS, "-p", "no:cacheprovider", "-q", "-rf"]
    t0 = time.monotonic()
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - t0
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAILED ")]
    if failed or out.returncode not in (0, 1):
        print(out.stdout[-6000:] + out.stderr[-2000:])
    tests = _count(out.stdout, "passed") + len(failed)
    print(f"{took:.0f} s")
    print(f"examples: {args.examples} per test, tests: {tests}, failed: {len(failed)}")
    sys.exit(1 if failed or out.returncode != 0 else 0)


def _count(text: str, what: str) -> int:
    for line in text.splitlines()[::-1]:
        words = line.replace(",", " ").split()
        if what in words:
            return int(words[words.index(what) - 1])
    return 0


if __name__ == "__main__":
    main()
