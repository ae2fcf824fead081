"""A store of the tests' own making, for the lab to run from a topology file it has never seen:
an HTTP key-value server that appends each write to a log on its data directory and fsyncs
before it answers, and says who leads its group: the first member, in the order given, that
accepts a connection (itself included). Standard library only.

    python toy_store.py --name s1 --listen 198.18.0.100:7000 --data DIR --peers s1=ADDR:PORT,...
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--data", default="")
    ap.add_argument("--peers", default="")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    peers = [p.split("=", 1) for p in args.peers.split(",") if p]
    log = Path(args.data) / "kv.log" if args.data else None
    written = [0]  # acknowledged writes since start, for /metrics

    def reachable(address: str) -> bool:
        h, p = address.rsplit(":", 1)
        try:
            with socket.create_connection((h, int(p)), timeout=0.2):
                return True
        except OSError:
            return False

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def reply(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            if url.path == "/health":
                self.reply(200, {"name": args.name})
            elif url.path == "/metrics":
                text = f"# TYPE toy_writes_total counter\ntoy_writes_total {written[0]}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            elif url.path == "/leader":
                lead = next((n for n, a in peers if n == args.name or reachable(a)), None)
                self.reply(200, {"leader": lead})
            elif url.path == "/kv" and log is not None:
                prefix = urllib.parse.parse_qs(url.query).get("prefix", [""])[0]
                try:
                    lines = log.read_text().splitlines() if log.exists() else []
                except OSError as exc:
                    self.reply(500, {"error": str(exc)})
                    return
                kv = {}
                for line in lines:
                    try:  # a write the disk refused halfway leaves a torn line: never acknowledged
                        key, value = json.loads(line)
                    except ValueError:  # that, or the empty line before each record
                        continue
                    kv[key] = value
                self.reply(200, {k: v for k, v in kv.items() if k.startswith(prefix)})
            else:
                self.reply(404, {"error": "no such path"})

        def do_PUT(self) -> None:
            url = urllib.parse.urlparse(self.path)
            if not url.path.startswith("/kv/") or log is None:
                self.reply(404, {"error": "no such path"})
                return
            key = urllib.parse.unquote(url.path[len("/kv/") :])
            value = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            try:
                with open(log, "a") as fh:
                    # a record starts on a line of its own: one the disk refused halfway (a full
                    # disk takes the first bytes of an append) must not swallow the next one
                    fh.write("\n" + json.dumps([key, value]) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                self.reply(507, {"error": str(exc)})
                return
            written[0] += 1
            self.reply(200, {"ok": True})

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
