"""A userspace TCP fault proxy for links where the kernel has no netem: it delays the
client-to-server direction of every connection by a latency (with jitter) without ever
reordering, dropping or altering a byte.

    python -m chaos.lab.faultproxy --listen ADDR:PORT --upstream ADDR:PORT --latency S [--jitter S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import time

CHUNK = 256 * 1024


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    latency: float,
    jitter: float,
    rng: random.Random,
) -> None:
    """Copy bytes, each chunk released `latency ± jitter` after it arrived. Release times
    never go backwards, so jitter cannot reorder the stream."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(release())
    last_due = 0.0
    try:
        while chunk := await reader.read(CHUNK):
            if latency or jitter:
                due = max(last_due, time.monotonic() + latency + rng.uniform(-jitter, jitter))
            else:
                due = 0.0
            last_due = due
            await queue.put((due, chunk))
    finally:
        await queue.put((0.0, b""))
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await sender


async def serve(listen: tuple[str, int], upstream: tuple[str, int], latency: float, jitter: float) -> None:
    rng = random.Random()

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            u_reader, u_writer = await asyncio.open_connection(*upstream)
        except OSError:
            c_writer.close()
            return
        for w in (c_writer, u_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(
                _pump(c_reader, u_writer, latency, jitter, rng),
                _pump(u_reader, c_writer, 0.0, 0.0, rng),
            )
        except OSError:
            pass  # one side reset: close both, as a real link would
        finally:
            for w in (c_writer, u_writer):
                w.close()

    server = await asyncio.start_server(handle, *listen, limit=CHUNK, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.faultproxy")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--jitter", type=float, default=0.0)
    args = ap.parse_args()
    lh, _, lp = args.listen.rpartition(":")
    uh, _, up = args.upstream.rpartition(":")
    asyncio.run(serve((lh, int(lp)), (uh, int(up)), args.latency, args.jitter))


if __name__ == "__main__":
    main()
