"""False alarms: run the whole experiment suite N times on the resilient lab, where every
experiment should pass, and print each experiment's failures.

    .venv/bin/python benchmarks/bench_false_alarms.py --runs 20 [-k EXPR]

A check that fails on a healthy platform teaches people to ignore red; the goal is 0 failures
in 20 runs. The last line reads ``runs: N, experiments: E, false alarms: F``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(reports: Path, extra: list[str]) -> dict[str, object]:
    argv = [sys.executable, "-m", "pytest", "experiments", "-p", "no:cacheprovider", "-q"]
    argv += ["--chaos-reports", str(reports), *extra]
    subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    summary = reports / "summary.json"
    if not summary.exists():
        raise SystemExit(f"run wrote no summary in {reports}")
    doc: dict[str, object] = json.loads(summary.read_text())
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("-k", dest="keyword", default=None, help="only experiments matching (pytest -k)")
    ap.add_argument(
        "--explore-examples", type=int, default=5, help="schedules the exploring experiment tries (5)"
    )
    args = ap.parse_args()
    extra = ["-k", args.keyword] if args.keyword else []
    extra += ["--chaos-explore-examples", str(args.explore_examples)]
    ran: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    why: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="chaos-false-alarms-") as tmp:
        for i in range(1, args.runs + 1):
            t0 = time.monotonic()
            doc = one_run(Path(tmp) / f"run-{i}", extra)
            bad = 0
            for exp in doc["experiments"]:  # type: ignore[attr-defined]
                name = exp["nodeid"].split("::", 1)[1]
                ran[name] += 1
                if exp["outcome"] != "passed":
                    bad += 1
                    failed[name] += 1
                    what = ", ".join(exp.get("violated") or []) or (exp.get("message") or "")[:120]
                    why.setdefault(name, []).append(f"run {i}: {exp['category']}: {what}")
            print(
                f"run {i}/{args.runs}: {len(doc['experiments'])} experiments, {bad} failed "  # type: ignore[arg-type]
                f"({time.monotonic() - t0:.0f} s)",
                flush=True,
            )
    print()
    print("| experiment | runs | failures |\n|---|---|---|")
    for name in sorted(ran):
        print(f"| {name} | {ran[name]} | {failed[name]} |")
    for name, lines in sorted(why.items()):
        for line in lines:
            print(f"  {name}: {line}")
    print(f"runs: {args.runs}, experiments: {sum(ran.values())}, false alarms: {sum(failed.values())}")


if __name__ == "__main__":
    main()
