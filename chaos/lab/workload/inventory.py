"""Inventory: reserves stock, durably. Each reservation is appended to a ledger on the
service's own volume and fsynced *before* it is acknowledged."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from chaos.lab.workload.server import App, Response, json_response

INITIAL_STOCK = 1_000_000


class Inventory:
    def __init__(self, data_dir: Path, replica: str) -> None:
        self.ledger_path = Path(data_dir) / "ledger.log"
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        self.replica = replica
        self._lock = threading.Lock()
        self.reserved: dict[str, int] = {}
        if self.ledger_path.exists():
            for line in self.ledger_path.read_text().splitlines():
                sku, _, order = line.partition(" ")
                if order:
                    self.reserved[sku] = self.reserved.get(sku, 0) + 1

    def reserve(self, sku: str, order: str) -> int:
        """Append, fsync, then count: an acknowledged reservation survives a crash."""
        with self._lock:
            fd = os.open(self.ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{sku} {order}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self.reserved[sku] = self.reserved.get(sku, 0) + 1
            return INITIAL_STOCK - self.reserved[sku]

    def stock(self, sku: str) -> int:
        with self._lock:
            return INITIAL_STOCK - self.reserved.get(sku, 0)


def build(data_dir: Path, replica: str) -> App:
    app = App("inventory")
    inv = Inventory(data_dir, replica)

    @app.route("GET", "/healthz")
    def healthz(_q: dict[str, str], _b: bytes) -> Response:
        return json_response(200, {"ok": True, "replica": replica})

    @app.route("GET", "/stock")
    def stock(q: dict[str, str], _b: bytes) -> Response:
        sku = q.get("sku", "")
        return json_response(200, {"sku": sku, "stock": inv.stock(sku)})

    @app.route("POST", "/reserve")
    def reserve(q: dict[str, str], _b: bytes) -> Response:
        sku, order = q.get("sku"), q.get("order")
        if not sku or not order:
            return json_response(400, {"error": "reserve needs ?sku=...&order=..."})
        try:
            left = inv.reserve(sku, order)
        except OSError as exc:
            # a full, read-only or failing volume refuses the write: never acknowledge it
            return json_response(503, {"error": f"ledger write failed: {exc.strerror}", "replica": replica})
        return json_response(200, {"sku": sku, "order": order, "stock": left, "replica": replica})

    return app
