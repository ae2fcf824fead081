"""A small threaded HTTP/1.1 server whose responses leave in one send.

Writing headers and body separately lets Nagle's algorithm hold the body back until the
client's delayed ACK (40 ms stalls); we build the whole response and write it at once, with
TCP_NODELAY set as well.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

Response = tuple[int, bytes, str]  # status, body, content type
Route = Callable[[dict[str, str], bytes], Response]

_REASONS = {
    200: "OK",
    429: "Too Many Requests",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    400: "Bad Request",
}


def json_response(status: int, payload: dict[str, Any]) -> Response:
    return status, json.dumps(payload).encode(), "application/json"


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "workload_requests_total", "Requests served", ["service", "path", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "workload_request_seconds",
            "Request latency",
            ["service", "path"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.service = service

    def render(self) -> Response:
        return 200, generate_latest(self.registry), CONTENT_TYPE_LATEST


class App:
    """Routes by (method, path); every request is counted and timed."""

    def __init__(self, service: str) -> None:
        self.metrics = Metrics(service)
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/metrics"): lambda _q, _b: self.metrics.render(),
        }

    def route(self, method: str, path: str) -> Callable[[Route], Route]:
        def add(fn: Route) -> Route:
            self.routes[(method, path)] = fn
            return fn

        return add

    def handle(self, method: str, target: str, body: bytes) -> Response:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        fn = self.routes.get((method, url.path))
        t0 = time.perf_counter()
        if fn is None:
            known = any(p == url.path for _, p in self.routes)
            resp = json_response(405 if known else 404, {"error": f"no route {method} {url.path}"})
        else:
            try:
                resp = fn(query, body)
            except Exception as exc:  # noqa: BLE001  a bug in a handler is a 500, not a dead server
                resp = json_response(500, {"error": f"{type(exc).__name__}: {exc}"})
        if url.path != "/metrics":
            m = self.metrics
            m.requests.labels(m.service, url.path, str(resp[0])).inc()
            m.latency.labels(m.service, url.path).observe(time.perf_counter() - t0)
        return resp


def serve(app: App, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _dispatch(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, ctype = app.handle(method, self.path, body)
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
                "Connection: keep-alive\r\n\r\n"
            ).encode()
            self.wfile.write(head + payload)  # one send: no Nagle stall between head and body
            self.wfile.flush()

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # per-request logs would cost more than the requests; metrics carry the counts

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256

    return Server((host, port), Handler)
