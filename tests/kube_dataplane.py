"""The data plane the API emulator does not have, standing in on loopback.

``GlobalEntry``: a global traffic manager, an HTTP server answering every request with the
cluster it routes to. Like a real GTM it health-checks east's ingress (the router pods, as
reachable from outside the cluster in the emulator's CNI model) every ``interval`` and sends
traffic to west while east fails. ``fragile=True`` is a GTM without health checks (always
east): the failover experiment's negative control.

``RequestRateAutoscaler``: an HPA on the requests per second the entry serves, scaling the
gateway deployment in the emulator (``target`` requests/s per replica, between ``lo`` and
``hi``) and giving back placeholder pods as it scales out into the reserve, as preemption does;
it scales in after ``calm`` seconds below target.

``cluster_ingress``: one cluster's own ingress past the traffic manager, answering while a ready
gateway pod is there to take the request."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.kube_emulator import Emulator

HEALTH_CHECK_IP = "192.0.2.53"  # the traffic manager's health checker, outside the clusters (data only)


def answer(handler: BaseHTTPRequestHandler, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class GlobalEntry:
    def __init__(
        self,
        emu: Emulator,
        *,
        west: Emulator | None = None,
        router: str = "router",
        west_router: str = "router-west",
        ns: str = "chaos",
        fragile: bool = False,
    ) -> None:
        """Sends the entry's traffic to east while east's routers pass its health check, else
        to west while west's do (``west``: the west cluster's own API server; without it west
        is taken to serve), else answers 503. ``fragile``: no health checks, east always."""
        self.emu, self.west, self.router, self.west_router = emu, west, router, west_router
        self.ns, self.fragile = ns, fragile
        self.east_healthy = True
        self.west_healthy = True
        self.checks = 0
        self.served: deque[float] = deque()  # when each request was answered (monotonic)
        self._stop = threading.Event()

    def rate(self, window: float = 1.0) -> float:
        """Requests per second over the last ``window`` seconds."""
        cutoff = time.monotonic() - window
        while self.served and self.served[0] < cutoff:
            self.served.popleft()
        return len(self.served) / window

    def _check(self, emu: Emulator, router: str) -> bool:
        """A health check from outside, as the traffic manager sends it: through the cluster's
        CNI judging its source address, to a router the Service would route to (ready, not
        Terminating: endpoints drop a pod as soon as its deletion starts)."""
        with emu.lock:
            pods = [
                p
                for p in emu.active()
                if p["metadata"]["namespace"] == self.ns
                and p["metadata"].get("labels", {}).get("app") == router
            ]
            return any(emu.reachable_from_outside(p, src_ip=HEALTH_CHECK_IP) for p in pods)

    def _health_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.checks += 1
            self.east_healthy = True if self.fragile else self._check(self.emu, self.router)
            if self.west is not None:
                self.west_healthy = self._check(self.west, self.west_router)

    @contextmanager
    def serving(self, interval: float = 0.25) -> Iterator[str]:
        entry = self

        class Handler(BaseHTTPRequestHandler):
            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                cluster = "east" if entry.east_healthy else "west" if entry.west_healthy else ""
                if cluster:
                    entry.served.append(time.monotonic())
                answer(
                    self,
                    200 if cluster else 503,
                    {"cluster": cluster} if cluster else {"error": "no healthy cluster"},
                )

            do_GET = do_POST = _do
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threads = [
            threading.Thread(target=server.serve_forever, daemon=True),
            threading.Thread(target=self._health_loop, args=(interval,), daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            self._stop.set()
            server.shutdown()
            server.server_close()


class RequestRateAutoscaler:
    def __init__(
        self,
        emu: Emulator,
        entry: GlobalEntry,
        *,
        target: float,
        lo: int,
        hi: int,
        calm: float = 3.0,
        deployment: str = "gateway",
        reserve: str = "reserve",
        ns: str = "chaos",
    ) -> None:
        self.emu, self.entry, self.target, self.lo, self.hi, self.calm = emu, entry, target, lo, hi, calm
        self.deployment, self.reserve, self.ns = deployment, reserve, ns
        self.replicas = lo
        self.reserve_at_rest = emu.deployments[(ns, reserve)]["spec"]["replicas"]
        self._low_since: float | None = None
        self.history: list[tuple[float, float, int]] = []  # (when, requests/s, replicas wanted)
        self._stop = threading.Event()

    def _step(self) -> None:
        rate = self.entry.rate()
        want = min(self.hi, max(self.lo, math.ceil(rate / self.target)))
        self.history.append((time.monotonic(), rate, want))
        now = time.monotonic()
        if want >= self.replicas:
            self._low_since = None
        elif self._low_since is None:
            self._low_since = now
        if want > self.replicas or (self._low_since is not None and now - self._low_since >= self.calm):
            self.replicas = want
            self._low_since = None
            self.emu.scale(self.ns, self.deployment, want)
            # the placeholder pods make room: one preempted for each replica above rest
            self.emu.scale(self.ns, self.reserve, max(0, self.reserve_at_rest - (want - self.lo)))
        hpa = self.emu.hpas.get((self.ns, self.deployment))
        if hpa is not None:
            hpa["status"] = {"currentReplicas": self.replicas, "desiredReplicas": want}

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._step()

    def __enter__(self) -> RequestRateAutoscaler:
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


@contextmanager
def cluster_ingress(emu: Emulator, app: str = "gateway", ns: str = "chaos") -> Iterator[str]:
    """One cluster's own ingress, past the traffic manager: 200 while a ready pod of ``app``
    (on a node, not Terminating) is there to take the request, as a Service's endpoints route
    it; else 503. Yields its URL."""

    def ready() -> bool:
        with emu.lock:
            return any(
                p["metadata"]["namespace"] == ns
                and p["metadata"].get("labels", {}).get("app") == app
                and p["spec"].get("nodeName")
                and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])
                )
                for p in emu.active()
            )

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ok = ready()
            answer(self, 200 if ok else 503, {"served": ok})

        do_GET = do_POST = _do
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
