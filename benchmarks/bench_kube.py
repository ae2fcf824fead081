"""Kube platform benchmark on the API emulator, over real HTTP with the official client.

    .venv/bin/python benchmarks/bench_kube.py [--runs 5]

1. target resolution: choosing 10 pods by label among 10,000 (5,000 matching), median time;
2. API requests per fault (from the emulator's request log): proportional to the targets,
   no polling loops beyond the reads that prove each effect;
3. part-2 faults (partition by NetworkPolicy with its probe pods, Chaos Mesh NetworkChaos and
   IOChaos, claim fill): median time from entering to verified and to reverted, and requests —
   the framework's own cost (the emulator answers at once; a real CNI and kubelet add theirs);
4. distributed Locust (master + 2 worker pods, run by the emulator as local processes) against
   the local engine: median time until the first users report, and the ratio.
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

from chaos import Journal, RunContext, degrade, fail_storage, partition
from chaos.kube import BlastRadius, KillPods, ScaleDeployment, connect, select_pods
from chaos.kube.locust import KubeLoad
from chaos.kube.platform import KubePlatform
from chaos.kube.topology import load_topology
from chaos.load import LOADTESTS_DIR, Load, LoadSpec
from tests.kube_dataplane import GlobalEntry
from tests.kube_emulator import Emulator

SHOP = BlastRadius(("shop",))
ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = """
services:
  gw: {cluster: east, namespace: shop, labels: app=gw, port: 8080}
  inv: {cluster: east, namespace: shop, labels: app=inv, port: 8080, claim: data}
"""


def part_two(runs: int) -> list[tuple[str, float, float, int]]:
    """(fault, inject-to-verified ms, revert ms, requests) medians on a fresh emulator."""
    emu = Emulator()
    emu.chaos_mesh = True
    emu.add_deployment("shop", "gw", 2, {"app": "gw"}, port=8080)
    emu.add_deployment("shop", "inv", 1, {"app": "inv"}, port=8080, claim="data")
    emu.add_claim("shop", "data")
    faults = {
        "partition (NetworkPolicy)": lambda p: partition(p, ["gw"], ["inv"]),
        "degrade (NetworkChaos)": lambda p: degrade(p, ["gw"], "inv", latency=0.1),
        "slow disk (IOChaos)": lambda p: fail_storage(p, "inv", "slow", latency=0.1),
        "claim full (fill pod)": lambda p: fail_storage(p, "inv", "full"),
    }
    out = []
    with tempfile.TemporaryDirectory() as d, emu.serving(Path(d)) as kubeconfig:
        (Path(d) / "t.yaml").write_text(TOPOLOGY)
        topology = load_topology(Path(d) / "t.yaml", {"east"}, [])
        ctx = RunContext(journal=Journal(Path(d) / "j.json"), rng=random.Random(0))
        plat = KubePlatform(ctx, {"east": connect("east", "emu-east", kubeconfig=kubeconfig)}, SHOP, topology)
        for name, make in faults.items():
            inject, revert, requests = [], [], []
            for _ in range(runs):
                emu.requests.clear()
                fault = make(plat)
                t0 = time.perf_counter()
                fault.__enter__()
                t1 = time.perf_counter()
                fault.__exit__(None, None, None)
                revert.append(time.perf_counter() - t1)
                inject.append(t1 - t0)
                requests.append(len(emu.requests))
            out.append(
                (name, statistics.median(inject) * 1000, statistics.median(revert) * 1000, max(requests))
            )
    return out


def load_start(runs: int) -> tuple[float, float]:
    """Median seconds until the first users report: distributed (pods), local (a subprocess)."""
    emu = Emulator()
    kube, local = [], []
    with (
        tempfile.TemporaryDirectory() as d,
        emu.serving(Path(d)) as kubeconfig,
        GlobalEntry(emu).serving() as entry,
    ):
        cluster = connect("east", "emu-east", kubeconfig=kubeconfig)
        spec = LoadSpec(LOADTESTS_DIR / "workload.py", entry, users=4, duration=5)
        for _ in range(runs):
            ctx = RunContext(journal=Journal(Path(d) / "j.json"), rng=random.Random(0))
            t0 = time.perf_counter()
            with KubeLoad(ctx, spec, cluster, SHOP, workers=2):
                kube.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with Load(ctx, spec):
                local.append(time.perf_counter() - t0)
    return statistics.median(kube), statistics.median(local)


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
    print(f"\n{'part-2 fault':28} {'verified ms':>12} {'reverted ms':>12} {'API requests':>13}")
    for name, inject, revert, n in part_two(args.runs):
        print(f"{name:28} {inject:12.0f} {revert:12.0f} {n:13d}")
    kube, local = load_start(min(args.runs, 3))
    print(f"\n{'load engine':28} {'first users s':>14}")
    print(f"{'distributed (3 pods)':28} {kube:14.2f}")
    print(f"{'local (one process)':28} {local:14.2f}")
    print(f"ratio distributed / local: {kube / local:.2f}")


if __name__ == "__main__":
    main()
