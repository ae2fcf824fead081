"""A userspace TCP fault proxy for links where the kernel has no netem: it delays the
client-to-server direction of every connection by a latency (with jitter) without ever
reordering, dropping or altering a byte.

    python -m chaos.lab.faultproxy --listen ADDR:PORT --upstream ADDR:PORT --latency S [--jitter S]

Threads and blocking sockets, no asyncio: importing asyncio alone took 27 ms
(`python -X importtime`), and the proxy's start is on the critical path of every latency fault (the
redirect may only go in once it listens). Each connection gets a thread per direction; the
delayed direction also a delay line, whose writer sends each read no earlier than its due
time (and never before an earlier one: no reordering). Bytes going back, and both directions
when there is nothing to delay, move between the sockets through a pipe with splice(2), never
copied into Python (`benchmarks/bench_network.py` compares both with a direct connection).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable

PIPE_SIZE = 1 << 20
MAX_QUEUED = 4 << 20  # bytes held in a delay line before reading pauses (back-pressure)


class DelayLine:
    """Bytes due at their arrival time plus ``delay()``, released in order by ``drain``."""

    def __init__(
        self, delay: Callable[[], float], clock: Callable[[], float] = time.monotonic, limit: int = MAX_QUEUED
    ) -> None:
        self.delay, self.clock, self.limit = delay, clock, limit
        self._cond = threading.Condition()
        self._line: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self._queued = 0
        self._last_due = 0.0
        self.aborted = False

    def put(self, data: bytes | None) -> None:
        """Queue ``data`` (None: the end of the stream, after everything before it); waits
        while the line holds more than ``limit`` bytes."""
        with self._cond:
            while self._queued > self.limit and not self.aborted:
                self._cond.wait()
            # release times never go backwards: jitter delays, it does not reorder
            self._last_due = max(self.clock() + self.delay(), self._last_due)
            self._line.append((self._last_due, data))
            self._queued += len(data or b"")
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self.aborted = True
            self._cond.notify_all()

    def _next(self) -> tuple[float, bytes | None] | None:
        """The next item once it is due; None once aborted."""
        with self._cond:
            while not self.aborted:
                if self._line and (wait := self._line[0][0] - self.clock()) <= 0:
                    item = self._line.popleft()
                    self._queued -= len(item[1] or b"")
                    self._cond.notify_all()
                    return item
                # the condition is the delay line's clock: woken early by a put or an abort
                self._cond.wait(wait if self._line else None)
            return None

    def drain(self, dst: socket.socket, src: socket.socket) -> None:
        """Send what is due to ``dst`` until the end of the stream (then end ``dst``'s writing
        half) or an error (then end both sockets, as a reset does)."""
        while (item := self._next()) is not None:
            try:
                if item[1] is None:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(item[1])
            except OSError:
                self.abort()
                _end(src, dst)
                return


def serve(listen: tuple[str, int], upstream: tuple[str, int], delay: Callable[[], float] | None) -> None:
    """Accept connections for ever; each is forwarded on threads of its own."""
    server = socket.create_server(listen, backlog=512)  # SO_REUSEADDR set
    while True:
        client, _ = server.accept()
        threading.Thread(target=_proxied, args=(client, upstream, delay), daemon=True).start()


def _proxied(client: socket.socket, upstream: tuple[str, int], delay: Callable[[], float] | None) -> None:
    with client:
        try:
            server = socket.create_connection(upstream)
        except OSError:
            return  # the client sees its connection closed
        with server:
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            back = threading.Thread(target=_pump, args=(server, client), daemon=True)
            back.start()
            if delay is None:
                _pump(client, server)
            else:
                _delayed(client, server, DelayLine(delay))
            back.join()


def _delayed(src: socket.socket, dst: socket.socket, line: DelayLine) -> None:
    writer = threading.Thread(target=line.drain, args=(dst, src), daemon=True)
    writer.start()
    try:
        while data := src.recv(65536):
            line.put(data)
            if line.aborted:
                break
        line.put(None)
    except OSError:
        line.abort()
        _end(src, dst)
    writer.join()


def _end(*socks: socket.socket) -> None:
    """End both directions of every socket (a reset or a closed peer is how connections end)."""
    for s in socks:
        with contextlib.suppress(OSError):  # already shut down
            s.shutdown(socket.SHUT_RDWR)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Move bytes from ``src`` to ``dst`` until ``src`` ends, then end ``dst``'s writing half
    (the peer's answer may still be coming). A reset on either side ends both directions."""
    r, w = os.pipe()
    with contextlib.suppress(OSError):  # above the unprivileged limit: the default 64 KiB will do
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    try:
        while n := os.splice(src.fileno(), w, PIPE_SIZE):
            while n:
                n -= os.splice(r, dst.fileno(), n)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        _end(src, dst)  # and wake the other direction too
    finally:
        os.close(r)
        os.close(w)


USAGE = (
    "usage: faultproxy --listen ADDR:PORT --upstream ADDR:PORT [--latency S] [--jitter S] "
    "[--tag TAG] [--seed N] [--no-splice]"
)
VALUED = ("--listen", "--upstream", "--latency", "--jitter", "--tag", "--seed")


def parse(argv: list[str]) -> dict[str, str]:
    """``--name value`` and ``--name=value`` pairs (and the ``--no-splice`` flag). Not argparse:
    importing it (with re, gettext and shutil) was a fifth of the proxy's start, and the start
    is part of every latency fault's time to take effect. Raises ValueError with what is wrong."""
    out: dict[str, str] = {}
    rest = list(argv)
    while rest:
        name, eq, value = rest.pop(0).partition("=")
        if name == "--no-splice" and not eq:
            out[name] = "1"
        elif name in VALUED:
            if not eq:
                if not rest:
                    raise ValueError(f"{name} needs a value")
                value = rest.pop(0)
            out[name] = value
        else:
            raise ValueError(f"unknown argument {name!r}")
    missing = [n for n in ("--listen", "--upstream") if n not in out]
    if missing:
        raise ValueError(f"{' and '.join(missing)} required")
    return out


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        listen, upstream = _address(args["--listen"]), _address(args["--upstream"])
        latency, jitter = float(args.get("--latency", 0)), float(args.get("--jitter", 0))
        seed = int(args["--seed"]) if "--seed" in args else None
    except ValueError as exc:
        print(f"{USAGE}\nfaultproxy: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    rng = random.Random(seed)
    delayed = bool(latency or jitter or "--no-splice" in args)
    serve(listen, upstream, (lambda: latency + rng.uniform(-jitter, jitter)) if delayed else None)


if __name__ == "__main__":
    main()
