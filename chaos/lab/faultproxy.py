"""A userspace TCP fault proxy for links where the kernel has no netem: it delays the
client-to-server direction of every connection by a latency (with jitter) without ever
reordering, dropping or altering a byte.

    python -m chaos.lab.faultproxy --listen ADDR:PORT --upstream ADDR:PORT --latency S [--jitter S]

Built on asyncio protocols (not streams): bytes go from one transport to the other in the
callback that received them, and back-pressure pauses reading on the other side. With no
latency and no jitter there is nothing to delay, and bytes move between the sockets through a
pipe with splice(2), never copied into Python (`benchmarks/bench_network.py` compares both
with a direct connection).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import fcntl
import os
import random
import socket
import threading

PIPE_SIZE = 1 << 20


class _Pipe(asyncio.Protocol):
    """One side of a proxied connection; forwards what it reads to its peer."""

    def __init__(self, latency: float = 0.0, jitter: float = 0.0, rng: random.Random | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.latency, self.jitter = latency, jitter
        self.rng = rng or random.Random()
        self._line: collections.deque[tuple[float, bytes]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._eof_pending = False
        self._early: list[bytes] = []

    # -- asyncio callbacks ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self._early.append(data)  # upstream still connecting
            return
        if not (self.latency or self.jitter):
            self.peer.transport.write(data)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + self.latency + self.rng.uniform(-self.jitter, self.jitter)
        if self._line:
            due = max(due, self._line[-1][0])  # release times never go backwards: no reordering
        self._line.append((due, data))
        if self._timer is None:
            self._timer = loop.call_at(due, self._release)

    def eof_received(self) -> bool:
        if self._line:
            self._eof_pending = True
        elif (
            self.peer is not None and self.peer.transport is not None and self.peer.transport.can_write_eof()
        ):
            self.peer.transport.write_eof()
        return True  # keep our side open for the peer's remaining answer

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.peer is not None and self.peer.transport is not None and not self._line:
            self.peer.transport.close()

    # back-pressure: our peer's writes are blocked, so stop reading here
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    # -- the delay line ---------------------------------------------------------------------------
    def _release(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        assert self.peer is not None and self.peer.transport is not None
        now = loop.time()
        while self._line and self._line[0][0] <= now:
            self.peer.transport.write(self._line.popleft()[1])
        if self._line:
            self._timer = loop.call_at(self._line[0][0], self._release)
        elif self._eof_pending and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()

    def link(self, peer: _Pipe) -> None:
        self.peer = peer
        for data in self._early:
            self.data_received(data)
        self._early.clear()


async def serve(listen: tuple[str, int], upstream: tuple[str, int], latency: float, jitter: float) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random()

    async def connect_upstream(client: _Pipe) -> None:
        try:
            _, server = await loop.create_connection(_Pipe, *upstream)
        except OSError:
            if client.transport is not None:
                client.transport.close()
            return
        server.link(client)
        client.link(server)

    pending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def accept() -> _Pipe:
        client = _Pipe(latency, jitter, rng)
        task = loop.create_task(connect_upstream(client))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return client

    server = await loop.create_server(accept, *listen, reuse_address=True, backlog=512)
    async with server:
        await server.serve_forever()


def serve_spliced(listen: tuple[str, int], upstream: tuple[str, int]) -> None:
    """Forward every connection with splice(2): one thread per direction, blocking."""
    server = socket.create_server(listen, backlog=512)  # SO_REUSEADDR set, as asyncio's
    while True:
        client, _ = server.accept()
        threading.Thread(target=_spliced, args=(client, upstream), daemon=True).start()


def _spliced(client: socket.socket, upstream: tuple[str, int]) -> None:
    with client:
        try:
            server = socket.create_connection(upstream)
        except OSError:
            return  # as the asyncio path does: the client sees its connection closed
        with server:
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            back = threading.Thread(target=_pump, args=(server, client), daemon=True)
            back.start()
            _pump(client, server)
            back.join()


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
        # a reset or a closed peer is how connections end; wake the other direction too
        for s in (src, dst):
            with contextlib.suppress(OSError):  # already shut down
                s.shutdown(socket.SHUT_RDWR)
    finally:
        os.close(r)
        os.close(w)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.faultproxy")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--tag", default="", help="the fault's tag: how its undo finds this process")
    ap.add_argument("--no-splice", action="store_true", help="copy through asyncio even with no delay")
    args = ap.parse_args()
    lh, _, lp = args.listen.rpartition(":")
    uh, _, up = args.upstream.rpartition(":")
    if args.latency or args.jitter or args.no_splice:
        asyncio.run(serve((lh, int(lp)), (uh, int(up)), args.latency, args.jitter))
    else:
        serve_spliced((lh, int(lp)), (uh, int(up)))


if __name__ == "__main__":
    main()
