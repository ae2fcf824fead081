"""A global traffic manager standing in for the data plane the API emulator does not have: an
HTTP server on loopback that answers every request with the cluster it routes to. Like a real
GTM it health-checks east's ingress (the router pods, as reachable from outside the cluster in
the emulator's CNI model) every ``interval`` and sends traffic to west while east fails.
``fragile=True`` is a GTM without health checks (always east): the failover experiment's
negative control."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.kube_emulator import Emulator


class GlobalEntry:
    def __init__(
        self, emu: Emulator, *, router: str = "router", ns: str = "chaos", fragile: bool = False
    ) -> None:
        self.emu, self.router, self.ns, self.fragile = emu, router, ns, fragile
        self.east_healthy = True
        self.checks = 0
        self._stop = threading.Event()

    def _check(self) -> bool:
        with self.emu.lock:
            pods = [
                p
                for (pns, _), p in self.emu.pods.items()
                if pns == self.ns and p["metadata"].get("labels", {}).get("app") == self.router
            ]
            return any(self.emu.reachable_from_outside(p) for p in pods)

    def _health_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.checks += 1
            self.east_healthy = True if self.fragile else self._check()

    @contextmanager
    def serving(self, interval: float = 0.25) -> Iterator[str]:
        entry = self

        class Handler(BaseHTTPRequestHandler):
            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = json.dumps({"cluster": "east" if entry.east_healthy else "west"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
