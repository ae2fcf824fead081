"""CPU a probe costs the runner, per kind and rate, on the resilient lab.

    sudo .venv/bin/python benchmarks/bench_probes.py [--seconds 5] [--runs 3]

Each probe runs alone for ``--seconds`` at 20, 50 and 100 Hz; the figure is the runner's CPU
time over wall time (% of one core), the median of ``--runs``. Baselines in the same run: a
probe whose sampler does nothing (the floor: ticks, threads, series), and the HTTP, durability
and PromQL probes' old transport (an httpx client, as before 0.8.0) over the same endpoints.
Then the CPU of one etcd write in a tight loop, per transport: ours, `http.client` (0.8.0)
and httpx (before), with ratios to ours. Leaves the lab down.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from chaos import Journal, RunContext, Steady
from chaos.lab import Lab, LabPlatform

RATES = (20, 50, 100)


def cpu_share(start: Callable[[Steady], Any], seconds: float, journal: Path) -> float:
    steady = Steady(RunContext(journal=Journal(journal)))
    start(steady)
    time.sleep(0.5)  # connections made, first samples taken: measure the steady cost
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    steady.stop()
    return 100 * cpu / wall


def httpx_get(url: str) -> Callable[[], Any]:
    client = httpx.Client(timeout=1.0)
    return lambda: client.get(url).json()


def httpx_put(url: str) -> Callable[[], Any]:
    client = httpx.Client(timeout=httpx.Timeout(1.0, connect=0.25))
    seq = itertools.count()

    def put() -> Any:
        key = base64.b64encode(f"/chaos/bench/{next(seq)}".encode()).decode()
        return client.post(f"{url}/v3/kv/put", json={"key": key, "value": "MQ=="}).json()

    return put


def http_client_put(url: str) -> Callable[[], Any]:
    """The 0.8.0 transport: the standard library's client on one kept-alive connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=1.0)
    seq = itertools.count()

    def put() -> Any:
        key = base64.b64encode(f"/chaos/bench/{next(seq)}".encode()).decode()
        body = json.dumps({"key": key, "value": "MQ=="}).encode()
        conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())

    return put


def tight_loop_us(call: Callable[[], Any], count: int) -> float:
    """CPU per call, in µs, of ``count`` calls one after another (after 20 to warm up)."""
    for _ in range(20):
        call()
    cpu0 = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - cpu0) / count * 1e6


def print_tight_loop(plat: LabPlatform, member: str, runs: int) -> None:
    kv = plat.masters.kv()
    seq = itertools.count()
    clients: list[tuple[str, Callable[[], Any]]] = [
        ("chaos.keepalive (since 0.9.0)", lambda: kv.put(f"/chaos/bench/{next(seq)}", "1", 1.0)),
        ("http.client (0.8.0)", http_client_put(member)),
        ("httpx (before 0.8.0)", httpx_put(member)),
    ]
    cells = {name: statistics.median(tight_loop_us(call, 500) for _ in range(runs)) for name, call in clients}
    ours = cells[clients[0][0]]
    print(f"\n{'one etcd write, CPU per request':32} {'µs':>7} {'ratio':>7}")
    for name, us in cells.items():
        print(f"{name:32} {us:7.0f} {us / ours:7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tight-only", action="store_true", help="only the tight-loop CPU per etcd write")
    ap.add_argument(
        "--probes",
        default="",
        metavar="WORD",
        help="only the probes whose row starts with WORD (e.g. durability), with their baseline rows",
    )
    args = ap.parse_args()
    lab = Lab()
    lab.up("resilient")
    try:
        plat = LabPlatform(lab, RunContext())
        entry = f"{plat.entry_url}/healthz"
        member = lab.state().members[0].client_url  # type: ignore[union-attr]
        query = f"{plat.prometheus_url}/api/v1/query?query=sum(up)"
        lab.await_scrapes()
        kinds: list[tuple[str, Callable[[Steady, float], Any]]] = [
            ("no-op sampler (the floor)", lambda s, hz: s.watch("noop", lambda: 1, hz=hz)),
            ("HTTP, entry URL", lambda s, hz: s.http("entry", entry, hz=hz)),
            ("  baseline: httpx", lambda s, hz: s.watch("entry", httpx_get(entry), hz=hz)),
            ("durability (etcd writes)", lambda s, hz: s.durability(plat.masters, hz=hz)),
            ("  baseline: httpx", lambda s, hz: s.watch("writes", httpx_put(member), hz=hz)),
            ("leadership (3 members asked)", lambda s, hz: s.leadership(plat.masters, hz=hz)),
            ("PromQL", lambda s, hz: s.promql("up", "sum(up)", plat.prometheus_url, hz=hz)),
            ("  baseline: httpx", lambda s, hz: s.watch("up", httpx_get(query), hz=hz)),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            if args.tight_only:
                kinds = []
            elif args.probes:
                # a probe's baseline rows follow it and start with a space
                keep, picked = False, []
                for name, start in kinds:
                    keep = name.startswith(args.probes) or (keep and name.startswith(" "))
                    if keep or name.startswith("no-op"):
                        picked.append((name, start))
                kinds = picked
            print(f"{'probe':32} " + " ".join(f"{hz:>7} Hz" for hz in RATES) + "   (% of one core)")
            for i, (name, start) in enumerate(kinds):
                cells = []
                for hz in RATES:
                    runs = [
                        cpu_share(
                            lambda s, hz=hz, start=start: start(s, hz),
                            args.seconds,
                            Path(tmp) / f"j{i}-{hz}-{r}.json",
                        )
                        for r in range(args.runs)
                    ]
                    cells.append(statistics.median(runs))
                print(f"{name:32} " + " ".join(f"{c:9.1f}%" for c in cells), flush=True)
        print_tight_loop(plat, member, args.runs)
    finally:
        lab.down()


if __name__ == "__main__":
    main()
