"""Reserved-capacity scale-out time over repeated runs: from the start of a 3x load spike
until the autoscaler has more replicas ready (4 Hz capacity probe), and back in after it.

    .venv/bin/python benchmarks/bench_scale.py [--runs 5]

Needs root; leaves the lab as it found it. (Load engine 1 vs 2 workers vs raw Locust:
benchmarks/bench_load.py.)
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchlab import parser, resilient_lab

from chaos import Journal, RunContext, Steady
from chaos.lab import Lab, LabPlatform
from chaos.load import LOADTESTS_DIR, Load, LoadSpec, Spike

ORDERS = LOADTESTS_DIR / "workload.py"


def one_run(lab: Lab, tmp: Path) -> tuple[float, float, int]:
    ctx = RunContext(journal=Journal(tmp / "j.json"))
    p = LabPlatform(lab, ctx)
    p.wait_healthy()
    steady = Steady(ctx)
    replicas = steady.watch("replicas", lambda: p.capacity("east")["ready"], hz=4)
    with Load(ctx, LoadSpec(ORDERS, p.entry_url, users=5, user_rps=2, duration=40)):
        steady.hold(4)
        rest = p.capacity("east")["ready"]
        with Spike(Load(ctx, LoadSpec(ORDERS, p.entry_url, users=10, user_rps=2, duration=8))):
            steady.expect(replicas.recovers(within=10, where=lambda n: n > rest))
            out = replicas.recovery_time(where=lambda n: n > rest).value()
            steady.hold(3)
        steady.expect(replicas.recovers(within=30, after="end", where=lambda n: n <= rest))
        back = replicas.recovery_time(after="end", where=lambda n: n <= rest).value()
        peak = int(replicas.value("max", "during").value() or 0)
    steady.stop()
    return out or float("nan"), back or float("nan"), peak


def main() -> None:
    args = parser(__doc__, 5).parse_args()
    with resilient_lab() as (lab, tmp):
        runs = [one_run(lab, tmp) for _ in range(args.runs)]
    outs, backs, peaks = zip(*runs, strict=True)
    print(f"\nscale-out on a 3x spike, {args.runs} runs (seconds; 4 Hz capacity probe)")
    print(f"{'':22} {'min':>7} {'median':>7} {'max':>7}")
    print(f"{'scale-out (ready)':22} {min(outs):7.2f} {statistics.median(outs):7.2f} {max(outs):7.2f}")
    print(f"{'scale-in after spike':22} {min(backs):7.2f} {statistics.median(backs):7.2f} {max(backs):7.2f}")
    print(f"peak replicas: {sorted(set(peaks))}")


if __name__ == "__main__":
    main()
