"""A write-back cache in front of the masters' API: the ``write-back`` weakness.

    python -m chaos.lab.writeback --listen ADDR:PORT --members URL,URL,URL

It speaks the subset of etcd's JSON API the lab's writers use. A put is acknowledged at once
and queued for one member (round robin, or the member named in ``/member/<name>/...``); a
forwarder per member sends its queue on and *drops* a write that member cannot commit (dead,
cut off from its quorum). Reads go to the members. This is the store that "acknowledges writes
it has not replicated": every lost-write and minority check must catch it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import signal
import sys
import threading
from typing import Any

import httpx

from chaos.lab.workload.server import App, Response, json_response, serve

FORWARD_TIMEOUT = 1.0


class WriteBack:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.names = [f"m{i}" for i in range(1, len(urls) + 1)]
        self.queues: dict[str, queue.Queue[dict[str, Any]]] = {url: queue.Queue() for url in urls}
        self._next = itertools.cycle(urls)
        self._lock = threading.Lock()
        self.counts = {"acknowledged": 0, "forwarded": 0, "dropped": 0}
        for url in urls:
            threading.Thread(target=self._forward, args=(url,), name=f"forward {url}", daemon=True).start()

    def url_of(self, name: str) -> str:
        return self.urls[self.names.index(name)]

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
        http = httpx.Client(timeout=2.0)
        try:
            for url in [self.url_of(member)] if member else self.urls:
                try:
                    resp = http.post(
                        f"{url}{path}", content=raw, headers={"content-type": "application/json"}
                    )
                except httpx.HTTPError:
                    continue
                return resp.status_code, resp.content, "application/json"
        finally:
            http.close()
        return json_response(503, {"error": "no member answered"})


def build(urls: list[str]) -> App:
    app = App("masters-api")
    cache = WriteBack(urls)

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
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = serve(build(args.members.split(",")), host, int(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"write-back cache listening on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
