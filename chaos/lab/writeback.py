"""Fronts of the masters' API with a defect each: the ``write-back`` and ``compound`` weaknesses.

    python -m chaos.lab.writeback --listen ADDR:PORT --members URL,URL,URL [--spool DIR]

Both speak the subset of etcd's JSON API the lab's writers use; reads go to the members.

``write-back`` (no ``--spool``): a put is acknowledged at once and queued for one member (round
robin, or the member named in ``/member/<name>/...``); a forwarder per member sends its queue on
and *drops* a write that member cannot commit (dead, cut off from its quorum). This is the store
that "acknowledges writes it has not replicated": every lost-write and minority check must catch it.

``spooling`` (``--spool DIR``, a lab volume): a put is forwarded to the masters and acknowledged
when they commit it. When they do not answer in time (no leader) it is acknowledged anyway and
spooled to disk, to be replayed once the masters commit again. Alone, each fault is survived: a
dead leader costs nothing (the spool catches the writes and replays them), a failing spool disk
costs nothing (the spool is not used). Together they lose writes: a spooled write the disk
refuses is parked in memory and never tried again, and the replay sends what is on disk and then
clears what is in memory, as if all of it had been written. That is the seeded compound weakness
exploration must find; it loses writes whenever a spooled write meets the failing disk, whatever
the order in which the disk and the masters come back (so a replay of the schedule reproduces it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import signal
import sys
import threading
import time
from typing import Any

import httpx

from chaos.lab.workload.server import App, Response, json_response, serve

FORWARD_TIMEOUT = 1.0
# a spooling put waits this long for the masters before it spools (under the writers' 1 s)
COMMIT_TIMEOUT = 0.4
# how long a replay waits for writes still in memory to reach the spool before it drops them:
# a working disk drains in one fsync per batch, well under this even on a busy machine; a
# failing one never does
DRAIN_S = 0.5
# a put the replay sends to learn whether the masters commit again (outside the writers' keys)
PROBE = {"key": "L2NoYW9zL3Nwb29sLXByb2Jl", "value": "MQ=="}  # /chaos/spool-probe = 1


class _Front:
    """What both fronts share: the members' URLs, m1 first, and their names."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.names = [f"m{i}" for i in range(1, len(urls) + 1)]

    def url_of(self, name: str) -> str:
        return self.urls[self.names.index(name)]


class WriteBack(_Front):
    def __init__(self, urls: list[str]) -> None:
        super().__init__(urls)
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {url: queue.Queue() for url in urls}
        self._next = itertools.cycle(urls)
        self._lock = threading.Lock()
        self.counts = {"acknowledged": 0, "forwarded": 0, "dropped": 0}
        for url in urls:
            threading.Thread(target=self._forward, args=(url,), name=f"forward {url}", daemon=True).start()

    def put(self, body: dict[str, Any], member: str | None) -> None:
        with self._lock:
            url = self.url_of(member) if member else next(self._next)
            self.counts["acknowledged"] += 1
        self.queues[url].put(body)

    def _forward(self, url: str) -> None:
        http = httpx.Client(timeout=httpx.Timeout(FORWARD_TIMEOUT, connect=0.25))
        while True:
            body = self.queues[url].get()
            try:
                resp = http.post(f"{url}/v3/kv/put", json=body)
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                with self._lock:
                    self.counts["dropped"] += 1
                print(f"dropped a write for {url}: {type(exc).__name__}", file=sys.stderr, flush=True)
            else:
                with self._lock:
                    self.counts["forwarded"] += 1

    def read(self, path: str, raw: bytes, member: str | None) -> Response:
        return _read_members([self.url_of(member)] if member else self.urls, path, raw)


class Spooling(_Front):
    def __init__(self, urls: list[str], spool: str) -> None:
        super().__init__(urls)
        self.path = os.path.join(spool, "spool.jsonl")
        self.pending: list[dict[str, Any]] = []  # acknowledged, not yet on disk (under _lock)
        self.parked: list[dict[str, Any]] = []  # acknowledged, refused by the disk (under _lock)
        self.generation = 0  # bumped when a replay drops what is pending
        self._more = threading.Event()  # set when a write is pending
        self._lock = threading.Lock()  # the counts, pending and generation
        self._file = threading.Lock()  # the spool file: appends, and a replay's read and rewrite
        self._replaying = threading.Lock()  # one replay at a time
        self._pause = threading.Event()  # never set: a sleep that is not time.sleep
        self._http = httpx.Client(timeout=httpx.Timeout(COMMIT_TIMEOUT, connect=0.25))
        self.counts = {"acknowledged": 0, "committed": 0, "spooled": 0, "dropped": 0}
        threading.Thread(target=self._spool, name="spool", daemon=True).start()
        threading.Thread(target=self._replay, name="replay", daemon=True).start()

    def _commit(self, body: dict[str, Any], member: str | None) -> bool:
        """Whether the masters committed ``body`` within COMMIT_TIMEOUT, all members tried."""
        deadline = time.monotonic() + COMMIT_TIMEOUT
        for url in [self.url_of(member)] if member else self.urls:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                resp = self._http.post(
                    f"{url}/v3/kv/put", json=body, timeout=httpx.Timeout(left, connect=min(0.25, left))
                )
            except httpx.HTTPError:
                continue
            if resp.status_code == 200:
                return True
        return False

    def put(self, body: dict[str, Any], member: str | None) -> None:
        committed = self._commit(body, member)
        with self._lock:
            self.counts["acknowledged"] += 1
            self.counts["committed" if committed else "spooled"] += 1
            if not committed:
                self.pending.append(body)  # acknowledged now: the spool thread writes it to disk
        if not committed:
            self._more.set()

    def _spool(self) -> None:
        while True:
            self._more.wait(0.1)
            self._more.clear()
            with self._lock:
                batch, generation = list(self.pending), self.generation
            if not batch:
                continue
            try:
                with self._file, open(self.path, "a") as f:
                    f.writelines(json.dumps(body) + "\n" for body in batch)
                    f.flush()
                    os.fsync(f.fileno())  # one per batch, so a slow disk still keeps up
            except OSError as exc:
                # the disk refuses: the writes stay in memory, parked: the defect is that they are
                # not tried again, as if the replay would see to them (it does not: see replay)
                print(f"spool write failed: {exc}", file=sys.stderr, flush=True)
                with self._lock:
                    if self.generation == generation:
                        self.parked.extend(batch)
                        del self.pending[: len(batch)]
                continue
            with self._lock:
                if self.generation == generation:
                    del self.pending[: len(batch)]

    def _replay(self) -> None:
        while True:
            self._pause.wait(0.2)
            self.replay()

    def replay(self) -> None:
        """Send what is spooled to the masters once they commit again (the thread every 0.2 s,
        and a read first, so a read sees every write acknowledged before it)."""
        with self._replaying:
            if not self._pending() and not self._spooled() and not self._parked():
                return
            if not self._commit(PROBE, None):
                return  # the masters still do not commit: keep everything for later
            # let the spool thread catch up, but not for long: a replay must not wait on a disk
            waited = 0.0
            while self._pending() and waited < DRAIN_S:
                self._pause.wait(0.05)
                waited += 0.05
            with self._lock:  # what the disk did not take in time (a put that lands later stays)
                stuck = {id(body) for body in self.pending}
            with self._file:
                kept = [line for line in self._spooled() if not self._commit(json.loads(line), None)]
                try:
                    with open(self.path, "w") as f:
                        f.writelines(line + "\n" for line in kept)
                except OSError as exc:
                    print(f"spool rewrite failed: {exc}", file=sys.stderr, flush=True)
            # the defect: what the spool thread had not written yet, or the disk refused, is
            # taken as replayed
            with self._lock:
                behind = sum(1 for body in self.pending if id(body) in stuck) + len(self.parked)
                if behind:
                    self.pending = [body for body in self.pending if id(body) not in stuck]
                    self.parked = []
                    self.generation += 1
                    self.counts["dropped"] += behind
            if behind:
                print(f"replay dropped {behind} write(s) not yet spooled", file=sys.stderr, flush=True)

    def _pending(self) -> int:
        with self._lock:
            return len(self.pending)

    def _parked(self) -> int:
        with self._lock:
            return len(self.parked)

    def _spooled(self) -> list[str]:
        try:
            with open(self.path) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def read(self, path: str, raw: bytes, member: str | None) -> Response:
        self.replay()  # read your writes: what was acknowledged goes to the masters first
        return _read_members(self.urls if member is None else [self.url_of(member)], path, raw)


def _read_members(urls: list[str], path: str, raw: bytes) -> Response:
    http = httpx.Client(timeout=2.0)
    try:
        for url in urls:
            try:
                resp = http.post(f"{url}{path}", content=raw, headers={"content-type": "application/json"})
            except httpx.HTTPError:
                continue
            return resp.status_code, resp.content, "application/json"
    finally:
        http.close()
    return json_response(503, {"error": "no member answered"})


def build(urls: list[str], spool: str | None = None) -> App:
    app = App("masters-api")
    cache: WriteBack | Spooling = WriteBack(urls) if spool is None else Spooling(urls, spool)

    def routes(member: str | None) -> None:
        prefix = f"/member/{member}" if member else ""

        @app.route("POST", f"{prefix}/v3/kv/put")
        def put(_q: dict[str, str], body: bytes) -> Response:
            cache.put(json.loads(body or b"{}"), member)
            return json_response(200, {"header": {}})

        @app.route("POST", f"{prefix}/v3/kv/range")
        def read(_q: dict[str, str], body: bytes) -> Response:
            return cache.read("/v3/kv/range", body, member)

    routes(None)
    for name in cache.names:
        routes(name)

    @app.route("GET", "/health")
    def health(_q: dict[str, str], _b: bytes) -> Response:
        return json_response(200, {"health": "true", **cache.counts})

    return app


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m chaos.lab.writeback")
    ap.add_argument("--listen", required=True, help="ADDR:PORT")
    ap.add_argument("--members", required=True, help="comma-separated etcd client URLs, m1 first")
    ap.add_argument("--spool", help="spool directory (a lab volume): the spooling front")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = serve(build(args.members.split(","), args.spool), host, int(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{'spooling' if args.spool else 'write-back'} front listening on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
