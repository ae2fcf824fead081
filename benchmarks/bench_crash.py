"""Crash trials: SIGKILL a run at a random (seeded) moment of one fault's life, run `chaos
recover`, and check the lab is exactly healthy again with nothing left. Then the harder cases
(`--hard` of each): the runner killed and no `chaos recover` at all (only the fault's TTL
saves the lab), `chaos recover` itself SIGKILLed half-way and run again, and two runners on
one machine killed together. Prints a table per fault kind and phase, the harder cases, the
slowest recovery, and a last line `trials: N, leftovers: L`.

    sudo .venv/bin/python benchmarks/bench_crash.py --trials 50 --seed 1
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlab import parser, resilient_lab

from chaos.testing.crash_trials import (
    FAULTS,
    PHASES,
    Trial,
    killed_recover_trial,
    run_trials,
    ttl_trial,
    two_runner_trial,
)


def show(t: Trial) -> None:
    state = "clean" if not t.leftovers else "LEFT: " + "; ".join(t.leftovers)
    print(
        f"  {t.kind:<18} killed {t.delay:4.2f} s after {t.moment:<9} (landed: {t.phase}); "
        f"recover {t.recover_s:.2f} s, "
        f"clean after {t.clean_s:.2f} s: {state}",
        flush=True,
    )


def main() -> None:
    ap = parser(__doc__, 1)
    ap.add_argument("--trials", type=int, default=3, help="trials per fault kind")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hard", type=int, default=2, help="trials of each harder case")
    ap.add_argument("--kinds", default=",".join(FAULTS), help="comma-separated: " + ", ".join(FAULTS))
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown:
        ap.error(f"unknown fault kinds {unknown}; choose from {', '.join(FAULTS)}")
    with resilient_lab() as (lab, scratch):
        trials = run_trials(lab, kinds, per_kind=args.trials, seed=args.seed, workdir=scratch, progress=show)
        hard: list[Trial] = []
        for i in range(args.hard):
            print(f"harder cases, round {i + 1}:", flush=True)
            kind = kinds[i % len(kinds)]
            for trial in (
                ttl_trial(lab, kind, scratch),
                killed_recover_trial(lab, "storage_io_error", scratch, delay=0.1 + 0.2 * i),
                two_runner_trial(lab, ("partition", kinds[(i + 4) % len(kinds)]), scratch),
            ):
                show(trial)
                hard.append(trial)
    phases = Counter((t.kind, t.phase) for t in trials)
    print(
        f"\n{'fault kind':<18} "
        + " ".join(f"{p[:12]:>12}" for p in PHASES)
        + "  leftovers  slowest clean (s)"
    )
    for kind in kinds:
        mine = [t for t in trials if t.kind == kind]
        if not mine:  # --trials 0: only the harder cases
            continue
        counts = " ".join(f"{phases[(kind, p)]:>12}" for p in PHASES)
        left = sum(1 for t in mine if t.leftovers)
        print(f"{kind:<18} {counts}  {left:>9}  {max(t.clean_s for t in mine):>17.2f}")
    for case in sorted({t.moment for t in hard}):
        mine = [t for t in hard if t.moment == case]
        left = sum(1 for t in mine if t.leftovers)
        slowest_case = max(t.clean_s for t in mine)
        print(f"{case:<36} trials {len(mine)}, leftovers {left}, slowest clean {slowest_case:.2f} s")
    everything = trials + hard
    leftovers = sum(1 for t in everything if t.leftovers)
    if trials:
        slowest = max(t.clean_s for t in trials)
        print(f"slowest recovery with chaos recover: {slowest:.2f} s (kill to a clean, healthy lab)")
    print(f"trials: {len(everything)}, leftovers: {leftovers}")


if __name__ == "__main__":
    main()
