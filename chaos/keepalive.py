"""Plain-HTTP requests over kept-alive connections, for probes that sample at up to 100 Hz.

httpx costs about 0.4 ms of CPU per request here and the standard library's `http.client` on a
reused connection about 0.3 ms, most of it parsing headers through the `email` package; at
50 Hz that is the difference between a probe that takes a noticeable share of a core and one
that does not (`benchmarks/bench_probes.py`). So this is a small HTTP/1.1 client of its own,
for what the lab's endpoints need: http:// URLs, a body in, status and body out (a length, a
chunked body, or one that ends with the connection). A request goes out in one send.

The two ways a request can fail are kept apart, because a durability verdict depends on it:
`NotSent` — no connection could be made, so the request certainly never arrived; `NoAnswer`
— it was (or may have been) sent and no complete answer came back, so it may have been applied.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chaos.errors import PlatformError

MAX_HEAD = 64 * 1024  # a status line and headers longer than this are not an answer we read


class NotSent(PlatformError):
    """No connection could be made: the request never left."""


class NoAnswer(PlatformError):
    """The request was (or may have been) sent and no complete answer came back."""


class _Malformed(Exception):
    """What came back is not an HTTP/1.x answer (reported as `NoAnswer`)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Connection:
    """One kept-alive connection and the bytes read from it but not yet used."""

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock = sock
        self.host = host
        self.buf = bytearray()

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _until(self, marker: bytes, limit: int) -> bytes:
        start = 0
        while (end := self.buf.find(marker, start)) < 0:
            if len(self.buf) > limit:
                raise _Malformed(f"no {marker!r} in the first {limit} bytes")
            start = max(0, len(self.buf) - len(marker) + 1)
            if not self._fill():
                raise _Malformed("the connection closed mid-answer")
        taken = bytes(self.buf[:end])
        del self.buf[: end + len(marker)]
        return taken

    def _exactly(self, count: int) -> bytes:
        while len(self.buf) < count:
            if not self._fill():
                raise _Malformed("the connection closed mid-answer")
        taken = bytes(self.buf[:count])
        del self.buf[:count]
        return taken

    def _to_close(self) -> bytes:
        while self._fill():
            pass
        taken = bytes(self.buf)
        self.buf.clear()
        return taken

    def _chunked(self) -> bytes:
        parts = []
        while size := int(self._until(b"\r\n", MAX_HEAD).split(b";", 1)[0], 16):
            parts.append(self._exactly(size))
            self._exactly(2)
        while self._until(b"\r\n", MAX_HEAD):  # trailers, up to the empty line
            pass
        return b"".join(parts)

    def exchange(self, request: bytes, method: str) -> tuple[Response, bool]:
        """Send ``request`` and read its answer; returns it and whether the connection stays open."""
        self.sock.sendall(request)
        while True:
            head = self._until(b"\r\n\r\n", MAX_HEAD).split(b"\r\n")
            version, _, rest = head[0].partition(b" ")
            if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
                raise _Malformed(f"not an HTTP/1.x status line: {head[0][:80]!r}")
            status = int(rest[:3])
            if not 100 <= status < 200:  # an interim answer (100 Continue) precedes the real one
                break
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        told = headers.get(b"connection", b"").lower()
        keep = b"keep-alive" in told if version == b"HTTP/1.0" else b"close" not in told
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = self._chunked()
        elif (length := headers.get(b"content-length")) is not None:
            if not length.isdigit():
                raise _Malformed(f"Content-Length {length[:40]!r}")
            body = self._exactly(int(length))
        else:
            body, keep = self._to_close(), False
        return Response(status, body), keep and not self.buf

    def close(self) -> None:
        self.sock.close()


class KeepAlive:
    """A pool of idle connections per host; safe to share between threads (each request
    takes a connection of its own, and gives it back when the server keeps it open)."""

    def __init__(self, connect_timeout: float = 0.25) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
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
        lines = [f"{method} {path} HTTP/1.1", f"Host: {conn.host}", "Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        except UnicodeEncodeError as exc:
            conn.close()
            raise PlatformError(f"{url}: a request line or header is not ASCII; quote the URL") from exc
        request = head + (body or b"")
        try:
            conn.sock.settimeout(timeout)
            answer, keep = conn.exchange(request, method)
        except (OSError, _Malformed, ValueError) as exc:
            conn.close()
            raise NoAnswer(f"{url}: {type(exc).__name__}: {exc}") from exc
        if keep:
            with self._lock:
                self._idle.setdefault(where, []).append(conn)
        else:
            conn.close()
        return answer

    def post_json(self, url: str, payload: Any, *, timeout: float) -> Response:
        body = json.dumps(payload).encode()
        return self.request(
            "POST", url, body=body, headers={"Content-Type": "application/json"}, timeout=timeout
        )

    def _take(self, where: tuple[str, int], timeout: float) -> _Connection:
        while True:
            with self._lock:
                idle = self._idle.get(where)
                conn = idle.pop() if idle else None
            if conn is None:
                break
            if not _dropped(conn.sock):
                return conn
            conn.close()
        try:
            sock = socket.create_connection(where, timeout=min(self.connect_timeout, timeout))
        except OSError as exc:
            raise NotSent(f"http://{where[0]}:{where[1]}: {type(exc).__name__}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # an answer's wait, not Nagle's
        name = f"[{where[0]}]" if ":" in where[0] else where[0]  # an IPv6 address is bracketed
        return _Connection(sock, name if where[1] == 80 else f"{name}:{where[1]}")

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _dropped(sock: socket.socket) -> bool:
    """An idle connection the server has closed (or sent something unasked on) is readable:
    sending a request on it would only turn a live member's answer into an unknown outcome."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
