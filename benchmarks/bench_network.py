"""Network fault benchmarks: medians over repeated runs.

    .venv/bin/python benchmarks/bench_network.py [--runs 5] [--proxy-only]

1. inject (verified) and revert time per fault kind on the lab;
2. the fault proxy with no fault (its splice path, and its delay line with zero delay as the baseline) vs a
   direct connection on loopback, interleaved: throughput (64 MiB through an echo server) and
   added round-trip latency (p50 of 2000 one-byte ping-pongs);
3. failover and failback time through the traffic manager when east is cut off, over runs.
Needs root; leaves the lab as it found it.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchlab import healthy_platform, parser, resilient_lab, time_fault

from chaos import Journal, RunContext, Steady, cut_cluster, degrade, isolate, kill_service, partition
from chaos.fault import Fault
from chaos.lab import LabPlatform
from chaos.lab.iptables import add_all, delete_tagged
from chaos.lab.netfaults import Partition
from chaos.ports import free_port
from chaos.wait import wait_until


def echo_server() -> tuple[socket.socket, int]:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1 << 18):
            conn.sendall(data)


def throughput(port: int, size: int = 64 << 20) -> float:
    block = b"x" * (1 << 18)
    with socket.create_connection(("127.0.0.1", port)) as s:
        t = time.perf_counter()

        def send() -> None:
            for _ in range(size // len(block)):
                s.sendall(block)
            s.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        got = 0
        while chunk := s.recv(1 << 20):
            got += len(chunk)
        sender.join()
        return got / (time.perf_counter() - t) / 1e6


def rtt_p50(port: int, n: int = 2000) -> float:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            s.sendall(b"x")
            s.recv(1)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def bench_proxy(runs: int) -> dict[str, float]:
    """A direct connection, the proxy's splice path and its delay line at zero delay (the one a latency
    fault uses; asyncio before 0.9.0, and the only path before 0.8.0), interleaved in one run."""
    srv, port = echo_server()
    ports = {"splice": free_port(), "delay line": free_port()}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "chaos.lab.faultproxy", "--listen", f"127.0.0.1:{p}"]
            + ["--upstream", f"127.0.0.1:{port}"]
            + (["--no-splice"] if name == "delay line" else [])
        )
        for name, p in ports.items()
    }
    paths = {"direct": port, **ports}
    mb_s: dict[str, list[float]] = {name: [] for name in paths}
    us: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for p in ports.values():
            wait_until(lambda p=p: _listening(p), timeout=10, interval=0.05, what="proxy")
        for _ in range(runs):
            for name, p in paths.items():
                mb_s[name].append(throughput(p))
                us[name].append(rtt_p50(p))
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
        srv.close()
    key = {"direct": "direct", "splice": "splice", "delay line": "delay"}
    out = {f"{key[name]}_mb_s": statistics.median(v) for name, v in mb_s.items()}
    out.update({f"{key[name]}_us": statistics.median(v) for name, v in us.items()})
    return out


def print_proxy(proxy: dict[str, float], runs: int) -> None:
    print(
        f"\nfault proxy, no fault, vs a direct connection on loopback (medians over {runs} runs, interleaved)"
    )
    print(
        f"{'':22} {'direct':>10} {'splice':>10} {'delay line':>10} {'splice/direct':>14} {'delay/direct':>15}"
    )
    print(
        f"{'throughput MB/s':22} {proxy['direct_mb_s']:10.0f} {proxy['splice_mb_s']:10.0f} "
        f"{proxy['delay_mb_s']:10.0f} {proxy['splice_mb_s'] / proxy['direct_mb_s']:14.2f} "
        f"{proxy['delay_mb_s'] / proxy['direct_mb_s']:15.2f}"
    )
    print(
        f"{'round trip p50 µs':22} {proxy['direct_us']:10.1f} {proxy['splice_us']:10.1f} "
        f"{proxy['delay_us']:10.1f} {proxy['splice_us'] - proxy['direct_us']:+14.1f} "
        f"{proxy['delay_us'] - proxy['direct_us']:+15.1f}"
    )


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def bench_failover(plat: LabPlatform, runs: int, tmp: Path) -> tuple[list[float], list[float]]:
    over, back = [], []
    for _ in range(runs):
        ctx = RunContext(journal=Journal(tmp / "j.json"))
        p = LabPlatform(plat.lab, ctx)
        p.wait_healthy()
        steady = Steady(ctx, hz=50)
        entry = steady.http("entry", p.entry_url + "/", hz=50)
        steady.hold(0.5)
        with cut_cluster(p, "east"):
            steady.expect(entry.recovers(within=10, where=lambda v: v.get("cluster") == "west"))
            over.append(
                entry.recovery_time(where=lambda v: v.get("cluster") == "west").value() or float("nan")
            )
        steady.expect(entry.recovers(within=20, after="end", where=lambda v: v.get("cluster") == "east"))
        back.append(
            entry.recovery_time(after="end", where=lambda v: v.get("cluster") == "east").value()
            or float("nan")
        )
        steady.stop()
    return over, back


def bench_raw_rules(plat: LabPlatform, runs: int) -> tuple[float, int]:
    """The anchor a partition's inject is set against: the rules isolating m1 loaded alone (one
    iptables-restore in m1's namespace; no journal, no check) and removed; (median s, rules)."""
    fault = isolate(plat, "m1")
    assert isinstance(fault, Partition)
    fault.prepare()  # works the rules out; changes nothing
    took = []
    for _ in range(runs):
        t = time.perf_counter()
        add_all(fault.rules)
        took.append(time.perf_counter() - t)
        delete_tagged(sorted({r.netns for r in fault.rules}), fault.tag)
    return statistics.median(took), len(fault.rules)


def main() -> None:
    ap = parser(__doc__, 5)
    ap.add_argument("--proxy-only", action="store_true", help="only 2. (no lab needed)")
    args = ap.parse_args()
    if args.proxy_only:
        print_proxy(bench_proxy(args.runs), args.runs)
        return
    with resilient_lab() as (lab, tmp):
        p = healthy_platform(lab, tmp)
        gws = ["east-gw1", "east-gw2"]
        kinds: list[tuple[str, Callable[[], Fault]]] = [
            ("isolate one node (m1)", lambda: isolate(p, "m1")),
            ("minority from majority", lambda: partition(p, ["m1"], ["m2", "m3"])),
            ("cluster east from the traffic manager", lambda: cut_cluster(p, "east")),
            ("degrade: +100 ms latency (fault proxy)", lambda: degrade(p, gws, "east-inv", latency=0.1)),
            ("degrade: 30% loss", lambda: degrade(p, gws, "east-inv", loss=0.3)),
            ("degrade: 100% resets", lambda: degrade(p, gws, "east-inv", reset=1.0)),
            ("degrade: 1 Mbit/s bandwidth", lambda: degrade(p, gws, "east-inv", bandwidth_kbit=1000)),
            ("kill service east-router", lambda: kill_service(p, "east-router")),
        ]
        times = [(name, *time_fault(make, args.runs)) for name, make in kinds]
        raw_rules, count = bench_raw_rules(p, args.runs)
        over, back = bench_failover(p, args.runs, tmp)
    proxy = bench_proxy(args.runs)
    print(f"\nfault inject (until verified) and revert, medians over {args.runs} runs")
    print(f"{'fault':42} {'inject ms':>10} {'revert ms':>10}")
    for name, i, o in times:
        print(f"{name:42} {i * 1000:10.1f} {o * 1000:10.1f}")
    print(f"{f'raw: the {count} rules isolating m1, loaded':42} {raw_rules * 1000:10.1f}")
    print_proxy(proxy, args.runs)
    print(f"\nfailover when east is cut off (50 Hz probe), {args.runs} runs: seconds")
    print(f"{'':10} {'min':>7} {'median':>7} {'max':>7}")
    for name, xs in (("failover", over), ("failback", back)):
        print(f"{name:10} {min(xs):7.3f} {statistics.median(xs):7.3f} {max(xs):7.3f}")


if __name__ == "__main__":
    main()
