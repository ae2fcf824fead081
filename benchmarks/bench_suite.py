"""Where the experiment suite's time goes, experiment by experiment.

    sudo .venv/bin/python benchmarks/bench_suite.py [--summary reports/summary.json] [-- PYTEST ARGS]

Without ``--summary`` it runs the suite as ``./run experiments`` does (``pytest experiments``,
reports into a temporary directory; arguments after ``--`` go to pytest) and times it; with it,
it reads a run already made. Per experiment, from its evidence: pytest's time for it, the part
before its first fault (set-up and the baseline it must observe), the part with a fault in force
(the holds its hypothesis asks for: the floor no tuning of the framework removes), and the part
after the last fault ends (recovery, read-backs and checks). The last line sets the suite's wall
time against the sum of the experiments' own (the rest: collection, lab up and down, reports).
Leaves the lab down.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def in_force(faults: list[dict[str, Any]]) -> float:
    """Seconds with at least one fault in force (overlapping faults counted once)."""
    spans = sorted((f["start"], f.get("end") or f["start"]) for f in faults if f.get("start") is not None)
    total, reach = 0.0, float("-inf")
    for start, end in spans:
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def breakdown(experiment: dict[str, Any]) -> tuple[float, float, float, float]:
    """(total, before the first fault, with a fault in force, after the last) in seconds."""
    total = float(experiment.get("duration_s") or 0.0)
    faults = experiment.get("evidence", {}).get("faults", [])
    if not faults:  # load alone, or a search whose schedules keep their own records
        return total, total, 0.0, 0.0
    first = min(f["start"] for f in faults)
    held = in_force(faults)
    # the gaps between faults count as after: recovery from one before the next begins
    return total, first, held, max(0.0, total - first - held)


def table(summary: dict[str, Any], wall: float | None) -> str:
    rows = [
        (e["nodeid"].split("::", 1)[1], *breakdown(e))
        for e in summary["experiments"]
        if e["outcome"] != "skipped"
    ]
    rows.sort(key=lambda r: -r[1])
    width = max(len(r[0]) for r in rows)
    out = [f"{'experiment':{width}} {'total':>8} {'before':>8} {'faults':>8} {'after':>8}   (seconds)"]
    out += [f"{n:{width}} {t:8.1f} {b:8.1f} {f:8.1f} {a:8.1f}" for n, t, b, f, a in rows]
    sums = [sum(r[i] for r in rows) for i in range(1, 5)]
    out.append(
        f"{'sum of ' + str(len(rows)) + ' experiments':{width}} " + " ".join(f"{s:8.1f}" for s in sums)
    )
    if sums[0]:
        out.append(f"{'share':{width}} {'':8} " + " ".join(f"{100 * s / sums[0]:7.0f}%" for s in sums[1:]))
    if wall is not None:
        out.append(f"suite wall time {wall:.1f} s; outside the experiments {wall - sums[0]:.1f} s")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--summary", type=Path, help="read this summary.json instead of running the suite")
    ap.add_argument("pytest_args", nargs="*", help="after --: further arguments for pytest")
    args = ap.parse_args()
    if args.summary is not None:
        if not args.summary.is_file():
            sys.exit(f"bench_suite: no file {args.summary}: pass the summary.json of a run (reports/)")
        print(table(json.loads(args.summary.read_text()), None))
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "experiments", "-q", "-p", "no:cacheprovider"),
                *("--chaos-reports", tmp, *args.pytest_args),
            ],
            cwd=ROOT,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        summary = Path(tmp) / "summary.json"
        if not summary.is_file():
            sys.exit(f"bench_suite: the suite wrote no summary (pytest exited {run.returncode})")
        print(table(json.loads(summary.read_text()), wall))
        if run.returncode:
            print(f"(the suite was red: pytest exited {run.returncode}; the times are of a red run)")


if __name__ == "__main__":
    main()
