"""Linearizability checker: time and peak memory for histories of N operations (5 clients,
10 keys, a simulated real register, so every history is linearizable and the search must
go all the way through it).

    .venv/bin/python benchmarks/bench_history.py --ops 1000 10000 100000
    .venv/bin/python benchmarks/bench_history.py --lab 10     # the register workload's ops/s

``--lab S`` (root) runs 5 register clients in closed loops against the lab's masters for S
seconds (bringing the lab up if it is not, and down again if it did) and prints operations
per second by outcome.

Prints a table of medians over --repeat runs; the last line reads
``N ops checked in S s, peak M MB`` for the largest N. Each size runs in a fresh process, so
the peak (max resident set) is that size's own."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def one(ops: int, seed: int) -> dict[str, float]:
    from chaos.history import check
    from chaos.testing.histories import register_history

    history = register_history(seed, clients=5, keys=10, ops=ops)
    t0 = time.perf_counter()
    verdict = check(history)
    took = time.perf_counter() - t0
    if not verdict.ok:
        raise SystemExit(f"a real register's history was judged not linearizable (seed {seed})")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": took, "peak_mb": peak_mb}


def lab(seconds: float) -> None:
    import random
    import threading

    from chaos.context import RunContext
    from chaos.history import History
    from chaos.lab import Lab, LabPlatform
    from chaos.registers import RegisterClient

    bench_lab = Lab()
    _, started = bench_lab.up("resilient")
    try:
        masters = LabPlatform(bench_lab, RunContext()).masters
        history = History("registers")
        keys = [f"bench/k{i}" for i in range(10)]
        stop = threading.Event()

        def loop(i: int) -> None:
            client = RegisterClient(
                history, masters.registers(), i, keys=keys, rng=random.Random(i), timeout=1.0
            )
            while not stop.is_set():
                try:
                    client()
                except Exception:  # noqa: BLE001  a failed operation is recorded; keep going
                    continue

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        ops = history.ops
        t0 = time.perf_counter()
        verdict = history.check()
        took = time.perf_counter() - t0
    finally:
        if started:
            bench_lab.down()
    counts = {t: sum(1 for o in ops if o.type == t) for t in ("ok", "fail", "info")}
    print(f"{'clients':>8} {'seconds':>8} {'ops':>8} {'ops/s':>8} {'ok':>8} {'fail':>6} {'info':>6}")
    rate = len(ops) / seconds
    print(f"{5:>8} {seconds:>8g} {len(ops):>8} {rate:>8.0f} {counts['ok']:>8}", end=" ")
    print(f"{counts['fail']:>6} {counts['info']:>6}  (fail: refused, or a compare that did not hold)")
    print(f"{len(ops)} ops checked in {took:.2f} s, linearizable: {verdict.ok}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lab", type=float, metavar="SECONDS", help="the register workload on the lab")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size, one run
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.seed)))
        return
    if args.lab:
        lab(args.lab)
        return
    rows = []
    for n in args.ops:
        runs = []
        for seed in range(args.repeat):
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(n), "--seed", str(seed)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout))
        rows.append(
            (n, statistics.median(r["seconds"] for r in runs), statistics.median(r["peak_mb"] for r in runs))
        )
    print(f"{'ops':>8} {'check s (median)':>18} {'peak MB (median)':>18} {'ops/s':>10}")
    for n, s, mb in rows:
        print(f"{n:>8} {s:>18.3f} {mb:>18.1f} {n / s if s else 0:>10.0f}")
    n, s, mb = rows[-1]
    print(f"{n} ops checked in {s:.2f} s, peak {mb:.0f} MB")


if __name__ == "__main__":
    main()
