"""Fault-schedule exploration: schedules tried per minute, and the schedule runner's overhead
against injecting the same faults by hand.

    .venv/bin/python benchmarks/bench_explore.py [--seconds 30] [--repeat 5] [--lab]
    .venv/bin/python benchmarks/bench_explore.py --find compound [--seconds 120] [--seed 0]

On the in-memory platform by default (no root; it measures the framework, not a cluster); with
``--lab`` (root) on the lab's real masters, the lab brought up if it is not. Prints a table of
medians; the last line reads ``S schedules/min, runner overhead R x``.

``--find WEAKNESS`` (root) searches the lab with that weakness from random schedules of kills
and storage failures of the masters and the masters' API disk, as CI did before it replayed
the compound weakness's core instead: the last line reads ``found at schedule F of T,
shrunk to N steps`` (or ``not found in T schedules``)."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos import Journal, RunContext, Steady, SteadyStateViolation
from chaos.explore import Explorer
from chaos.inject import fail_storage, kill_master, partition
from chaos.platform import Platform
from chaos.schedules import Schedule, Step, run_schedule, schedules

KILL_S, CUT_AT = 0.4, 0.2  # the fixed schedule: kill the leader; from CUT_AT, a second fault too


def _platform(lab: bool) -> tuple[Platform, Callable[[], None]]:
    journal = Journal(Path(tempfile.mkdtemp()) / "journal.json")
    if not lab:
        from chaos.testing import MemoryPlatform

        return MemoryPlatform(RunContext(journal=journal), members=5, election_s=0.05), lambda: None
    from chaos.lab import Lab, LabPlatform

    bench_lab = Lab()
    _, started = bench_lab.up("resilient")
    return LabPlatform(bench_lab, RunContext(journal=journal)), (bench_lab.down if started else lambda: None)


def _second(p: Platform, lab: bool) -> Step:
    """The fixed schedule's second fault, overlapping the leader's kill: a follower cut off on
    the memory platform's five masters; on the lab's three (which tolerate one member down) a
    workload disk failing instead."""
    if lab:
        return Step("fail_storage", "east-inv", CUT_AT, KILL_S - CUT_AT, {"mode": "io_error"})
    return Step("partition", "follower", CUT_AT, KILL_S - CUT_AT)


def by_hand(p: Platform, lab: bool) -> float:
    t0 = time.perf_counter()
    with kill_master(p, pick="leader"):
        time.sleep(CUT_AT)
        if lab:
            second = fail_storage(p, "east-inv", "io_error")
        else:
            follower = next(m for m in sorted(p.masters.healthy()) if m != p.masters.leader())
            second = partition(p, [follower], [m for m in p.masters.names() if m != follower])
        with second:
            time.sleep(KILL_S - CUT_AT)
        # both end together, as in the runner's schedule below
    return time.perf_counter() - t0


def by_runner(p: Platform, lab: bool) -> float:
    schedule = Schedule((Step("kill_master", "leader", 0.0, KILL_S), _second(p, lab)))
    t0 = time.perf_counter()
    run_schedule(p, schedule)
    return time.perf_counter() - t0


def per_minute(p: Platform, seconds: float) -> dict[str, Any]:
    def trial(steady: Steady, run: Callable[[], None]) -> None:
        writes = steady.durability(p.masters, hz=50)
        steady.baseline(seconds=0.1)
        run()
        steady.expect(writes.lost() == 0)

    explorer = Explorer(p, hz=50, seed_=0, examples=10_000, budget_s=seconds, database=None)
    t0 = time.perf_counter()
    explorer(schedules(p, max_steps=3, span=0.4, durations=(0.1, 0.3), grain=0.05), trial)
    took = time.perf_counter() - t0
    return {"tried": explorer.result.tried, "faults": explorer.result.faults, "seconds": took}


def find(weakness: str, seconds: float, seed: int) -> None:
    from chaos.lab import Lab, LabPlatform

    lab = Lab()
    lab.down()
    lab.up("resilient", weaknesses=(weakness,))
    try:
        p = LabPlatform(lab, RunContext(journal=Journal(Path(tempfile.mkdtemp()) / "journal.json")))
        p.wait_healthy()

        def trial(steady: Steady, run: Callable[[], None]) -> None:
            writes = steady.durability(p.masters)
            steady.baseline(seconds=1)
            run()
            steady.expect(writes.recovers(after="end", within=10.0), writes.lost() == 0)

        explorer = Explorer(p, hz=20, seed_=seed, examples=40, budget_s=seconds, database=None)
        t0 = time.perf_counter()
        kinds = ("kill_master", "fail_storage")
        drawn = schedules(p, kinds=kinds, volumes=["api"], max_steps=5, span=1.5, durations=(2.0, 3.0))
        # found: the exploration raises its smallest failure, and its result says which
        with contextlib.suppress(SteadyStateViolation):
            explorer(drawn, trial)
        result = explorer.result
        took = time.perf_counter() - t0
    finally:
        lab.down()
    print(f"weakness {weakness}, budget {seconds:g} s, seed {seed}: {took:.0f} s, {result.tried} schedules")
    if result.minimal is None:
        print(f"not found in {result.tried} schedules")
        return
    print(result.minimal.table())
    steps = len(result.minimal.steps)
    print(f"found at schedule {result.found_at} of {result.tried}, shrunk to {steps} steps")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="how long to explore")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the fixed schedule, each way")
    ap.add_argument("--lab", action="store_true", help="on the lab's real masters (root)")
    ap.add_argument("--find", metavar="WEAKNESS", help="search the lab with this weakness (root)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.find:
        find(args.find, args.seconds if args.seconds != 30.0 else 120.0, args.seed)
        return
    p, done = _platform(args.lab)
    try:
        hand, runner = [], []
        for _ in range(args.repeat):
            p.wait_healthy()
            hand.append(by_hand(p, args.lab))
            p.wait_healthy()
            runner.append(by_runner(p, args.lab))
        p.wait_healthy()
        explored = per_minute(p, args.seconds)
    finally:
        done()
    h, r = statistics.median(hand), statistics.median(runner)
    rate = explored["tried"] / explored["seconds"] * 60
    where = "lab" if args.lab else "memory"
    print(f"{'platform':>8} {'by hand s':>10} {'runner s':>10} {'ratio':>6}", end=" ")
    print(f"{'schedules/min':>14} {'faults/min':>11}")
    faults_rate = explored["faults"] / explored["seconds"] * 60
    print(f"{where:>8} {h:>10.3f} {r:>10.3f} {r / h:>6.2f} {rate:>14.0f} {faults_rate:>11.0f}")
    print(f"{rate:.0f} schedules/min, runner overhead {r / h:.2f} x")


if __name__ == "__main__":
    main()
