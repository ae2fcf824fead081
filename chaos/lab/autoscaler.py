"""The lab's autoscaler: scales a cluster's gateway replicas on request rate, through
HAProxy's runtime API, between a minimum and the cluster's slot capacity.

    python -m chaos.lab.autoscaler --socket SOCK --servers a,b,c --min 2 --max 5 \
        --target-rps 10 --state FILE [--hosts a=h1,b=h2,c=h1] [--backend gateways]

Every slot runs a warm gateway; a replica "in rotation" is a server HAProxy sends traffic to.
Scale-out is immediate (desired = ceil(rate / target)); scale-in waits for a stabilisation
window; a rate within 10 % of what the current count serves changes nothing (all three as the
Kubernetes HPA does). A replica its router marks down is replaced at once, on another host than
its own where a slot is free. State and scale events are written to ``--state``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BACKEND = "gateways"


def state_path(root: Path, cluster: str) -> Path:
    """Where the autoscaler of ``cluster`` writes its state and scale events."""
    return root / "run" / f"autoscaler-{cluster}.json"


def command(
    socket: str,
    servers: Sequence[str],
    state: Path,
    *,
    min_replicas: int,
    target_rps: float,
    scale_out_after: float,
    scale_in_after: float,
    hosts: Mapping[str, str],
    backend: str = BACKEND,
) -> list[str]:
    """The command line that starts an autoscaler over ``servers`` (every one a slot: the
    maximum), as ``main`` reads it."""
    return [
        sys.executable,
        "-m",
        "chaos.lab.autoscaler",
        "--socket",
        socket,
        "--backend",
        backend,
        "--servers",
        ",".join(servers),
        "--min",
        str(min_replicas),
        "--max",
        str(len(servers)),
        "--target-rps",
        str(target_rps),
        "--state",
        str(state),
        "--scale-out-after",
        str(scale_out_after),
        "--scale-in-after",
        str(scale_in_after),
        "--hosts",
        ",".join(f"{slot}={host}" for slot, host in hosts.items()),
    ]


def admin(sock_path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect(sock_path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


def stats(sock_path: str, backend: str = BACKEND) -> dict[str, dict[str, str]]:
    """HAProxy's stats of ``backend``'s servers (and the BACKEND row), by server name."""
    lines = admin(sock_path, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {r["svname"]: r for r in rows if r.get("pxname") == backend}


class SetupError(Exception):
    """What the autoscaler was told to scale is not what the balancer has."""


@dataclass
class Scaler:
    sock: str
    servers: list[str]
    min_replicas: int
    max_replicas: int
    target_rps: float
    state_path: Path
    scale_in_after: float = 5.0
    scale_out_after: float = 0.0  # load must stay high this long first (0: at once)
    events: list[dict[str, float | int]] = field(default_factory=list)
    backend: str = BACKEND  # the HAProxy backend whose servers are the slots
    window: float = 2.0  # the request rate is averaged over this long: one burst is not load
    hosts: dict[str, str] = field(default_factory=dict)  # slot -> the host it runs on
    # the HPA's default tolerance: without it a load on a multiple of the target flaps between
    # two counts (at node loss's 30/s, 15/s a replica, the count wanted went 2, 3, 2, 3 within
    # two seconds in the state file)
    tolerance: float = 0.1
    _count: int | None = None  # the count last decided (the HPA's, not what serves right now)
    _seen: list[tuple[float, int]] = field(default_factory=list)  # (time, requests so far)
    _low_since: float | None = None
    _high_since: float | None = None

    def in_rotation(self, st: dict[str, dict[str, str]]) -> list[str]:
        return [
            s
            for s in self.servers
            if st.get(s, {}).get("status", "").startswith(("UP", "DOWN"))
            and "MAINT" not in st[s]["status"]
            and "DRAIN" not in st[s]["status"]
        ]

    def step(self) -> None:
        st = stats(self.sock, self.backend)
        missing = [s for s in ("BACKEND", *self.servers) if s not in st]
        if missing:
            # a misnamed backend or server is a set-up mistake, never a load of 0
            raise SetupError(
                f"backend {self.backend!r} on {self.sock} "
                + ("does not exist" if "BACKEND" in missing else f"has no server {', '.join(missing)}")
                + ": the servers are named as the replicas' nodes"
            )
        now = time.monotonic()
        total = int(st["BACKEND"]["req_tot"] or 0)
        # the rate since the latest reading at least a window old (or the oldest there is)
        older = [p for p in self._seen if now - p[0] >= self.window]
        self._seen = older[-1:] + [p for p in self._seen if now - p[0] < self.window] + [(now, total)]
        t0, n0 = self._seen[0]
        rate = (total - n0) / (now - t0) if now > t0 else 0.0
        active = self.in_rotation(st)
        # the decision is about replicas that serve: one in rotation that its router has marked
        # down (its host lost, say) is replaced at once from the slots out of rotation, like a
        # ReplicaSet replaces a lost pod. It stays in rotation and serves again when it comes
        # back; scale-in then trims the surplus after its window, never taking a serving one
        # out while a down one stays
        down = [s for s in active if st[s]["status"].startswith("DOWN")]
        serving = [s for s in active if s not in down]
        desired = self.wanted(rate, self._count or len(serving))
        target = len(serving)
        if desired > len(serving):
            self._low_since = None
            self._high_since = self._high_since or now
            # a replacement at once; a scale-out at once by default too (the reserve is warm)
            if down or now - self._high_since >= self.scale_out_after:
                target, self._high_since = desired, None
        elif desired < len(serving):
            self._low_since, self._high_since = self._low_since or now, None
            if now - self._low_since >= self.scale_in_after:
                target, self._low_since = desired, None
        else:
            self._low_since = self._high_since = None
        if target == desired:
            self._count = desired  # decided; a scale pending its window keeps the last count
        if target != len(serving):
            added = self.apply(active, serving, target, down)
            event = {"t": time.time(), "from": len(active), "to": len(active) + added, "rate": round(rate, 1)}
            if down:
                event["replacing"] = len(down)
            self.events.append(event)
        self.write(
            {
                "t": time.time(),
                "rate": round(rate, 2),
                "desired": desired,
                "in_rotation": len(active),
                "ready": len([s for s in serving if st[s]["status"] == "UP"]),
                "slots": len(self.servers),
                "events": self.events[-50:],
            }
        )

    def wanted(self, rate: float, count: int) -> int:
        """The replicas ``rate`` needs, from ``count`` now: ceil(rate / target) between the
        minimum and the capacity, or ``count`` itself while the rate is within the tolerance of
        what ``count`` serves."""
        if count > 0 and abs(rate / (count * self.target_rps) - 1) <= self.tolerance:
            return min(self.max_replicas, max(self.min_replicas, count))
        return min(self.max_replicas, max(self.min_replicas, math.ceil(rate / self.target_rps)))

    def apply(self, active: list[str], serving: list[str], target: int, down: Sequence[str]) -> int:
        """Bring the serving replicas to ``target``: slots out of rotation go in, or serving
        replicas (the last first) go out. Returns how many went in (negative: out)."""
        if target > len(serving):
            # slots on a host with a replica down last, as a scheduler avoids a node that is not
            # ready: a lost host's free slot is as dead as its replicas, and taking it first
            # only delays the replacement by another round of health checks
            troubled = {self.hosts.get(s) for s in down} - {None}
            free = [s for s in self.servers if s not in active]
            free.sort(key=lambda s: self.hosts.get(s) in troubled)
            joining = free[: target - len(serving)]
            for name in joining:
                admin(self.sock, f"set server {self.backend}/{name} state ready")
            return len(joining)
        leaving = serving[target:]
        for name in leaving:
            admin(self.sock, f"set server {self.backend}/{name} state maint")
        return -len(leaving)

    def write(self, doc: dict[str, object]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.state_path)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.autoscaler")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--min", type=int, required=True)
    ap.add_argument("--max", type=int, required=True)
    ap.add_argument("--target-rps", type=float, required=True)
    ap.add_argument("--state", required=True, type=Path)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--scale-in-after", type=float, default=5.0)
    ap.add_argument("--scale-out-after", type=float, default=0.0)
    ap.add_argument("--window", type=float, default=2.0, help="seconds the request rate is averaged over")
    ap.add_argument("--hosts", default="", help="slot=host,...: where each slot runs")
    ap.add_argument("--backend", default=BACKEND, help="the HAProxy backend whose servers are the slots")
    args = ap.parse_args()
    scaler = Scaler(
        args.socket,
        args.servers.split(","),
        args.min,
        args.max,
        args.target_rps,
        args.state,
        scale_in_after=args.scale_in_after,
        scale_out_after=args.scale_out_after,
        window=args.window,
        backend=args.backend,
        hosts=dict(pair.split("=", 1) for pair in args.hosts.split(",") if pair),
    )
    while True:
        try:
            scaler.step()
        except OSError as exc:  # the router restarting: try again next tick
            print(f"autoscaler: {exc}", flush=True)
        except SetupError as exc:
            raise SystemExit(f"autoscaler: {exc}") from None
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
