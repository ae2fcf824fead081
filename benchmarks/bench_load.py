"""Load-engine and workload benchmarks: medians over repeated runs in one session.

    .venv/bin/python benchmarks/bench_load.py [--runs 3] [--seconds 8]

1. requests/s of chaos.load.Load vs raw `locust --headless` (same locustfile, shape, target);
2. the engine with 1 vs 2 worker processes;
3. workload p50/p99 through the global traffic manager vs direct to one gateway replica.
Needs root (it brings the lab up, and leaves it as it found it).
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchlab import parser, resilient_lab

from chaos import Journal, RunContext
from chaos.lab.platform import LabPlatform
from chaos.load import LOADTESTS_DIR, SHAPES_DIR, Load, LoadSpec

BROWSE = LOADTESTS_DIR / "browse.py"
ORDERS = LOADTESTS_DIR / "workload.py"


def engine(spec: LoadSpec, tmp: Path) -> dict[str, float]:
    ctx = RunContext(journal=Journal(tmp / "j.json"))
    with Load(ctx, spec) as run:
        run.wait()
    return {"rps": run.rps().value() or 0.0, "p50": _f(run.final.get("50%")), "p99": _f(run.final.get("99%"))}


def raw_locust(spec: LoadSpec, tmp: Path) -> dict[str, float]:
    prefix = tmp / "raw"
    env = {
        **os.environ,
        "CHAOS_LOAD_USERS": str(spec.users),
        "CHAOS_LOAD_DURATION": str(spec.duration),
        "CHAOS_LOAD_USER_RPS": str(spec.user_rps),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{spec.locustfile},{SHAPES_DIR / 'steady.py'}",
            "--headless",
            "--host",
            spec.host,
            "--run-time",
            f"{int(spec.duration)}s",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--exit-code-on-error",
            "0",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=spec.duration + 60,
    )
    with open(f"{prefix}_stats.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return {"rps": float(row["Requests/s"]), "p50": _f(row["50%"]), "p99": _f(row["99%"])}


def _f(x: str | None) -> float:
    try:
        return float(x or "nan")
    except ValueError:
        return float("nan")


def med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = parser(__doc__, 3)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    with resilient_lab() as (lab, tmp):
        plat = LabPlatform(lab, RunContext(journal=Journal(tmp / "j.json")))
        entry = plat.entry_url
        direct = plat.service_urls("gateway", "east")[0]
        saturating = dict(users=200, user_rps=50.0, duration=args.seconds)  # asks 10000 req/s: saturates
        results: dict[str, list[dict[str, float]]] = {"raw": [], "engine": [], "engine2": []}
        for _ in range(args.runs):  # interleaved, so drift hits every variant alike
            results["raw"].append(raw_locust(LoadSpec(BROWSE, entry, **saturating), tmp))  # type: ignore[arg-type]
            results["engine"].append(engine(LoadSpec(BROWSE, entry, **saturating), tmp))  # type: ignore[arg-type]
            results["engine2"].append(engine(LoadSpec(BROWSE, entry, workers=2, **saturating), tmp))  # type: ignore[arg-type]
        moderate = dict(users=20, user_rps=5.0, duration=args.seconds)  # 100 orders+reads/s
        lat: dict[str, list[dict[str, float]]] = {"gtm": [], "direct": []}
        for _ in range(args.runs):
            lat["gtm"].append(engine(LoadSpec(ORDERS, entry, **moderate), tmp))  # type: ignore[arg-type]
            lat["direct"].append(engine(LoadSpec(ORDERS, direct, **moderate), tmp))  # type: ignore[arg-type]
    raw = med(results["raw"], "rps")
    print(
        f"\nmedians over {args.runs} runs of {args.seconds:g} s (GET / through the traffic manager, "
        "200 users asking 50 req/s each, more than this machine serves)"
    )
    print(f"{'load engine':34} {'req/s':>9} {'ratio to raw':>13}")
    for key, label in (
        ("raw", "raw locust --headless"),
        ("engine", "chaos.load, 1 process"),
        ("engine2", "chaos.load, 2 processes"),
    ):
        v = med(results[key], "rps")
        print(f"{label:34} {v:9.1f} {v / raw:13.2f}")
    print(f"\nworkload latency, orders + reads at 100 req/s, medians over {args.runs} runs")
    print(f"{'path':34} {'p50 ms':>9} {'p99 ms':>9}")
    for key, label in (("gtm", "via traffic manager + router"), ("direct", "direct to gateway east-gw1")):
        print(f"{label:34} {med(lat[key], 'p50'):9.1f} {med(lat[key], 'p99'):9.1f}")


if __name__ == "__main__":
    main()
