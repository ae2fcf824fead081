"""Stop-condition benchmark: how fast a breached guard gets every fault reverted.

    .venv/bin/python benchmarks/bench_abort.py [--runs 5]

A guard on the entry point's error rate (over the last 0.5 s, at most 20 %, 50 Hz probe)
watches while the traffic manager is SIGKILLed; the abort reverts the fault (restarts it).
Also: `chaos abort` (the operator's abort file) while a partition is in force. Medians of:
fault injected → breach noticed, breach → every fault reverted. Goal: revert under 1 s.
Needs root; leaves the lab as it found it.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

from benchlab import healthy_platform, parser, resilient_lab

from chaos import Aborted, Steady, kill_service, partition
from chaos.abort import request_abort
from chaos.context import state_dir
from chaos.lab import Lab


def guard_breach(lab: Lab, tmp: Path) -> tuple[float, float]:
    p = healthy_platform(lab, tmp)
    steady = Steady(p.ctx, hz=50)
    entry = steady.http("entry", p.entry_url + "/healthz", hz=50)
    steady.guard(entry.error_rate(over=0.5) <= 0.2)
    steady.hold(0.6)
    fault = kill_service(p, "gtm")
    try:
        with fault:
            steady.hold(10)
        raise RuntimeError("the guard never fired")
    except Aborted:
        ev = p.ctx.abort.evidence()
    finally:
        steady.stop()
    assert fault.injected_at is not None
    return ev["at"] - fault.injected_at, ev["reverted_after_s"]


def operator_abort(lab: Lab, tmp: Path) -> tuple[float, float]:
    p = healthy_platform(lab, tmp)
    steady = Steady(p.ctx, hz=50)
    steady.guards.watch_abort_file(state_dir())
    fault = partition(p, ["m1"], ["m2", "m3"])
    asked: list[float] = []

    def ask() -> None:
        time.sleep(0.5)
        asked.append(p.ctx.tl.now())
        request_abort(state_dir(), "benchmark")

    try:
        with fault:
            threading.Thread(target=ask, daemon=True).start()
            steady.hold(10)
        raise RuntimeError("the abort never came")
    except Aborted:
        ev = p.ctx.abort.evidence()
    finally:
        steady.stop()
    return ev["at"] - asked[0], ev["reverted_after_s"]


def main() -> None:
    args = parser(__doc__, 5).parse_args()
    with resilient_lab() as (lab, tmp):
        guard = [guard_breach(lab, tmp) for _ in range(args.runs)]
        operator = [operator_abort(lab, tmp) for _ in range(args.runs)]
    print(f"\nabort, medians over {args.runs} runs (ms)")
    print(f"{'trigger':44} {'noticed after':>14} {'reverted after':>15}")
    for name, xs in (
        ("guard: entry error rate, gtm SIGKILLed", guard),
        ("operator: chaos abort, partition in force", operator),
    ):
        noticed = statistics.median(x[0] for x in xs) * 1000
        reverted = statistics.median(x[1] for x in xs) * 1000
        print(f"{name:44} {noticed:14.0f} {reverted:15.0f}")
    print("(noticed: after injection for the guard, after `chaos abort` for the operator)")


if __name__ == "__main__":
    main()
