"""Plain-HTTP requests over kept-alive connections, for probes that sample at up to 100 Hz.

httpx costs about 0.4 ms of CPU per request here; the standard library's `http.client` on a
reused connection about 0.15 ms, which at 50 Hz is the difference between a probe that takes a
noticeable share of a core and one that does not (`benchmarks/bench_probes.py`). Only what
the lab's own endpoints need: http:// URLs, a body in, status and body out.

The two ways a request can fail are kept apart, because a durability verdict depends on it:
`NotSent` — no connection could be made, so the request certainly never arrived; `NoAnswer`
— it was (or may have been) sent and no complete answer came back, so it may have been applied.
"""

from __future__ import annotations

import http.client
import json
import select
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chaos.errors import PlatformError


class NotSent(PlatformError):
    """No connection could be made: the request never left."""


class NoAnswer(PlatformError):
    """The request was (or may have been) sent and no complete answer came back."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class KeepAlive:
    """A pool of idle connections per host; safe to share between threads (each request
    takes a connection of its own, and gives it back when the server keeps it open)."""

    def __init__(self, connect_timeout: float = 0.25) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float,
    ) -> Response:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise PlatformError(f"{url}: only plain http:// URLs are served by this client")
        where = (parts.hostname, parts.port or 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._take(where, timeout)
        try:
            assert conn.sock is not None
            conn.sock.settimeout(timeout)
            conn.request(method, path, body, headers or {})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise NoAnswer(f"{url}: {type(exc).__name__}: {exc}") from exc
        if resp.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.setdefault(where, []).append(conn)
        return Response(resp.status, data)

    def post_json(self, url: str, payload: Any, *, timeout: float) -> Response:
        body = json.dumps(payload).encode()
        return self.request(
            "POST", url, body=body, headers={"Content-Type": "application/json"}, timeout=timeout
        )

    def _take(self, where: tuple[str, int], timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                idle = self._idle.get(where)
                conn = idle.pop() if idle else None
            if conn is None:
                break
            if not _dropped(conn):
                return conn
            conn.close()
        conn = http.client.HTTPConnection(*where, timeout=min(self.connect_timeout, timeout))
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise NotSent(f"http://{where[0]}:{where[1]}: {type(exc).__name__}: {exc}") from exc
        return conn  # http.client has set TCP_NODELAY: a request goes out in one segment

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle connection the server has closed (or sent something unasked on) is readable:
    sending a request on it would only turn a live member's answer into an unknown outcome."""
    if conn.sock is None:
        return True
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
