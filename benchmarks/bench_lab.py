"""Lab benchmarks for the foundation: medians over repeated runs, ratios against raw tools.

    .venv/bin/python benchmarks/bench_lab.py [--runs 5] [--cpu-seconds 10]

Measures: lab up / down, against its raw parts started bare (three etcd members on loopback
until they have a leader, with the lab's timings; one HAProxy until it listens); kill_master
inject-to-verified vs a raw SIGKILL; revert (restart and rejoin); the leader's recovery as the
probe sees it vs when etcd logged the election (the probe's measurement error); CPU of a
durability probe at 50 Hz. Needs root; leaves the lab down.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import datetime
from functools import partial
from pathlib import Path

from chaos import Journal, RunContext, Steady, kill_master
from chaos.lab import Lab, LabPlatform
from chaos.lab.binaries import find
from chaos.lab.procs import Proc
from chaos.lab.profiles import get_profile
from chaos.ports import free_port
from chaos.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def bench_up_down(runs: int) -> dict[str, list[float]]:
    """Lab up (everything serving), then the first PromQL user's wait for Prometheus to scrape
    every target (the old lab up included it), and down."""
    out: dict[str, list[float]] = {"up": [], "scraped": [], "down": []}
    lab = Lab()
    lab.down()
    for _ in range(runs):
        t = time.perf_counter()
        lab.up("resilient")
        out["up"].append(time.perf_counter() - t)
        lab.await_scrapes()
        out["scraped"].append(time.perf_counter() - t)
        t = time.perf_counter()
        lab.down()
        out["down"].append(time.perf_counter() - t)
    return out


def bench_topologies(runs: int) -> dict[str, list[float]]:
    """Lab up from the shipped topology files, against their programs started bare."""
    out: dict[str, list[float]] = {}
    lab = Lab()
    for name in ("etcd", "web", "failover", "autoscale"):
        path = ROOT / "examples" / name / "topology.yaml"
        for _ in range(runs):
            t = time.perf_counter()
            lab.up(topology=path)
            out.setdefault(name, []).append(time.perf_counter() - t)
            lab.down()
    return out


def _answers(url: str, want: bytes) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.2) as r:
            return want in r.read()
    except OSError:
        return False


def _all_healthy(client_ports: list[int]) -> bool:
    return all(_answers(f"http://127.0.0.1:{c}/health", b"true") for c in client_ports)


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _gone(proc: Proc) -> bool:
    return not proc.alive()


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:  # only the processes this benchmark started, by their handles
        proc.kill()
        proc.wait()


def bench_raw_parts(runs: int) -> dict[str, list[float]]:
    """The anchors the lab's start is set against: three etcd members on loopback (no
    namespaces, volumes or journal; the lab's heartbeat and election timeout) from the first
    spawn until each says it is healthy (etcd's /health needs a leader), and one HAProxy from
    spawn until its port accepts."""
    profile = get_profile("resilient")
    out: dict[str, list[float]] = {"etcd": [], "haproxy": []}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            ports = [(free_port(), free_port()) for _ in range(3)]
            cluster = ",".join(f"r{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
            procs: list[subprocess.Popen[bytes]] = []
            t = time.perf_counter()
            try:
                for i, (client, peer) in enumerate(ports):
                    argv = [find("etcd"), "--name", f"r{i}", "--data-dir", f"{tmp}/r{i}"]
                    argv += ["--listen-client-urls", f"http://127.0.0.1:{client}"]
                    argv += ["--advertise-client-urls", f"http://127.0.0.1:{client}"]
                    argv += ["--listen-peer-urls", f"http://127.0.0.1:{peer}"]
                    argv += ["--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}"]
                    argv += ["--initial-cluster", cluster, "--initial-cluster-state", "new"]
                    argv += ["--heartbeat-interval", str(profile.etcd_heartbeat_ms)]
                    argv += ["--election-timeout", str(profile.etcd_election_ms)]
                    procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                wait_until(
                    partial(_all_healthy, [c for c, _ in ports]),
                    timeout=30,
                    interval=0.01,
                    what="three raw etcd members to have a leader",
                )
                out["etcd"].append(time.perf_counter() - t)
            finally:
                _stop(procs)
            port = free_port()
            cfg = Path(tmp) / "haproxy.cfg"
            cfg.write_text(
                f"defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1s\n"
                f"  timeout server 1s\nlisten x\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:9\n"
            )
            t = time.perf_counter()
            proc = subprocess.Popen([find("haproxy"), "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL)
            try:
                wait_until(
                    partial(_listens, port),
                    timeout=10,
                    interval=0.002,
                    what="a raw HAProxy to listen",
                )
                out["haproxy"].append(time.perf_counter() - t)
            finally:
                _stop([proc])
    return out


def election_logged_after(lab: Lab, since_wall: float) -> float | None:
    """Seconds from ``since_wall`` to the first 'elected leader' line etcd logged after it."""
    first: float | None = None
    for log in lab.logs.glob("m*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "elected leader" not in line or not line.startswith("{"):
                continue
            ts = datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()
            if ts >= since_wall and (first is None or ts < first):
                first = ts
    return None if first is None else first - since_wall


def bench_kill(runs: int, journal_dir: Path) -> dict[str, list[float]]:
    lab = Lab()
    lab.up("resilient")
    keys = ("inject", "raw_kill", "revert", "probe", "etcd", "error")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(runs):
        ctx = RunContext(journal=Journal(journal_dir / "j.json"), rng=random.Random(i))
        p = LabPlatform(lab, ctx)
        steady = Steady(ctx, hz=100)
        leadership = steady.leadership(p.masters)
        steady.hold(1.0)
        t = time.perf_counter()
        fault = kill_master(p, pick="leader").__enter__()
        out["inject"].append(time.perf_counter() - t)
        probe_s: float | None = None
        try:
            steady.expect(leadership.elected(within=10))
            probe_s = leadership.recovery_time().value()
        finally:
            t = time.perf_counter()
            fault.__exit__(None, None, None)
            out["revert"].append(time.perf_counter() - t)
            steady.stop()
        # both measured from the same instant: the fault's start on the timeline
        assert fault.injected_at is not None
        etcd_s = election_logged_after(lab, ctx.tl.wall_origin + fault.injected_at)
        if probe_s is not None and etcd_s is not None:
            out["probe"].append(probe_s)
            out["etcd"].append(etcd_s)
            out["error"].append(probe_s - etcd_s)
        # raw: SIGKILL a follower and wait for the process to be gone; no journal, no checks
        st = lab.state()
        assert st is not None
        leader = lab.leader()
        victim = next(m for m in st.members if m.name != leader)
        proc = Proc(victim.pid, victim.start)
        t = time.perf_counter()
        os.kill(victim.pid, signal.SIGKILL)
        wait_until(partial(_gone, proc), timeout=5, interval=0.001, what="exit")
        out["raw_kill"].append(time.perf_counter() - t)
        lab.start_member(victim.name)
    return out


def bench_probe_cpu(seconds: float, journal_dir: Path) -> float:
    lab = Lab()
    lab.up("resilient")
    ctx = RunContext(journal=Journal(journal_dir / "j.json"))
    steady = Steady(ctx, hz=50)
    steady.durability(LabPlatform(lab, ctx).masters)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    steady.hold(seconds)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    steady.stop()
    return 100 * cpu / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpu-seconds", type=float, default=10.0)
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            parts = bench_raw_parts(args.runs)
            updown = bench_up_down(args.runs)
            topos = bench_topologies(args.runs)
            kill = bench_kill(args.runs, Path(tmp))
            cpu = bench_probe_cpu(args.cpu_seconds, Path(tmp))
    finally:
        Lab().down()
    rows = [
        ("lab up (masters, 2 clusters, all serving)", median(updown["up"]), median(parts["etcd"])),
        ("  raw: one HAProxy until it listens", median(parts["haproxy"]), None),
        ("  ... and Prometheus scraping every target", median(updown["scraped"]), None),
        ("lab down (nothing left)", median(updown["down"]), None),
        ("topology up: examples/etcd (3 members)", median(topos["etcd"]), None),
        ("topology up: examples/web (nginx x2, HAProxy)", median(topos["web"]), None),
        ("topology up: examples/failover (7 nodes)", median(topos["failover"]), None),
        ("topology up: examples/autoscale (6, scaler)", median(topos["autoscale"]), None),
        ("kill_master leader: inject -> verified", median(kill["inject"]), median(kill["raw_kill"])),
        ("kill_master: revert (restart + rejoin)", median(kill["revert"]), None),
        ("leader back, as the 100 Hz probe sees it", median(kill["probe"]), None),
        ("leader back, as etcd logged the election", median(kill["etcd"]), None),
        ("probe measurement error (probe - etcd)", median(kill["error"]), None),
    ]
    print(
        f"\nmedians over {args.runs} runs; raw: for lab up, three bare etcd members on loopback until"
        " they have a leader; for kill_master, a bare SIGKILL of a member + wait for its exit"
    )
    print(f"{'measure':44} {'median s':>10} {'raw s':>10} {'ratio':>7}")
    for name, value, raw in rows:
        raw_s = f"{raw:10.4f}" if raw is not None else " " * 10
        ratio = f"{value / raw:7.1f}" if raw else " " * 7
        print(f"{name:44} {value:10.4f} {raw_s} {ratio}")
    print(f"{'durability probe at 50 Hz (% of one core)':44} {cpu:9.1f}%")


if __name__ == "__main__":
    main()
