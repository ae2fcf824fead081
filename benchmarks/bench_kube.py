"""Kube platform (part 1) benchmark on the API emulator, over real HTTP with the official client.

    .venv/bin/python benchmarks/bench_kube.py [--runs 5]

1. target resolution: choosing 10 pods by label among 10,000 (5,000 matching), median time;
2. API requests per fault (from the emulator's request log): proportional to the targets,
   no polling loops beyond the one read that proves each effect.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlab import parser

from chaos import Journal, RunContext
from chaos.kube import BlastRadius, KillPods, ScaleDeployment, connect, select_pods
from tests.kube_emulator import Emulator

SHOP = BlastRadius(("shop",))


def main() -> None:
    args = parser(__doc__, 5).parse_args()
    emu = Emulator()
    for i in range(10_000):
        emu.add_pod("shop", f"pod-{i:05d}", {"app": "gateway" if i % 2 else "batch"})
    emu.add_deployment("shop", "web", 3, {"app": "web"})
    with tempfile.TemporaryDirectory() as d, emu.serving(Path(d)) as kubeconfig:
        cluster = connect("east", "emu-east", kubeconfig=kubeconfig, timeout=60)
        times = []
        for seed in range(args.runs):
            t = time.perf_counter()
            chosen = select_pods(cluster, "shop", SHOP, random.Random(seed), labels="app=gateway", count=10)
            times.append(time.perf_counter() - t)
            assert len(chosen) == 10
        ctx = RunContext(journal=Journal(Path(d) / "j.json"), rng=random.Random(0))
        counts = []
        for n in (1, 3):
            emu.requests.clear()
            with KillPods(ctx, cluster, "shop", SHOP, labels="app=web", count=n):
                pass
            counts.append((f"kill {n} pod(s)", len(emu.requests)))
        emu.requests.clear()
        with ScaleDeployment(ctx, cluster, "shop", "web", SHOP):
            pass
        counts.append(("scale to 0 and back", len(emu.requests)))
    print(f"\ntarget resolution, 10 of 10,000 pods by label: {statistics.median(times) * 1000:.0f} ms median")
    print(f"(over {args.runs} runs; one list request, the rest is decoding 5,000 pods into client models)")
    print(f"\n{'fault':24} {'API requests':>13}")
    for name, n in counts:
        print(f"{name:24} {n:13d}")


if __name__ == "__main__":
    main()
