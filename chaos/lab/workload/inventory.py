"""Inventory: reserves stock, durably. Each reservation is appended to a ledger on the
service's own volume and fsynced *before* it is acknowledged; a write the volume refuses is
answered 503 and never acknowledged. Reads are served from memory, rebuilt from the ledger
at start, so they keep working while the volume fails.

The fragile profile's inventory (``durable=False``) is the usual shortcut: it appends
without fsync, acknowledges a reservation even when the write failed (write-behind), and
reads the ledger from disk on every request.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from pathlib import Path

from chaos.lab.workload.server import App, Response, json_response

INITIAL_STOCK = 1_000_000


def _write_all_or_fail(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written != len(data):
        raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")


def _count(orders: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sku in orders.values():
        counts[sku] = counts.get(sku, 0) + 1
    return counts


def _parse(text: str) -> dict[str, str]:
    """The ledger's reservations: order -> sku (one "sku order" line each)."""
    orders: dict[str, str] = {}
    for line in text.splitlines():
        sku, _, order = line.partition(" ")
        if order:
            orders[order] = sku
    return orders


class Inventory:
    def __init__(self, data_dir: Path, replica: str, *, durable: bool = True) -> None:
        self.ledger_path = Path(data_dir) / "ledger.log"
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        self.replica = replica
        self.durable = durable
        self._lock = threading.Lock()  # the in-memory state: held for microseconds
        self._ledger_lock = threading.Lock()  # the ledger file: held through a slow disk
        self._orders = _parse(self.ledger_path.read_text()) if self.ledger_path.exists() else {}
        self._counts = _count(self._orders)

    def _append(self, line: bytes) -> None:
        """Append one whole line and fsync it, or leave the ledger as it was and raise: a
        short write on a full disk would otherwise leave half a line, and the next append
        would be glued to it (both reservations lost at the next start)."""
        fd = os.open(self.ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                _write_all_or_fail(fd, line)
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # the disk may refuse this too; the error stands
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    def _append_unsafe(self, line: bytes) -> None:
        fd = os.open(self.ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def reserve(self, sku: str, order: str) -> int:
        """Append, fsync, then count: an acknowledged reservation survives a crash. Reads
        never wait for the disk: only appends queue behind each other."""
        line = f"{sku} {order}\n".encode()
        with self._ledger_lock:
            if self.durable:
                self._append(line)
            else:
                try:
                    self._append_unsafe(line)
                except OSError as exc:
                    print(f"ledger write failed, acknowledged anyway: {exc}", file=sys.stderr, flush=True)
        with self._lock:
            if order not in self._orders:
                self._counts[sku] = self._counts.get(sku, 0) + 1
            self._orders[order] = sku
            return INITIAL_STOCK - self._counts[sku]

    def orders(self) -> dict[str, str]:
        """Every reservation: from memory, or from the disk for the write-behind variant."""
        if self.durable:
            with self._lock:
                return dict(self._orders)
        return _parse(self.ledger_path.read_text())

    def stock(self, sku: str) -> int:
        if self.durable:
            with self._lock:
                return INITIAL_STOCK - self._counts.get(sku, 0)
        return INITIAL_STOCK - _count(self.orders()).get(sku, 0)


def build(data_dir: Path, replica: str, *, durable: bool = True) -> App:
    app = App("inventory")
    inv = Inventory(data_dir, replica, durable=durable)

    @app.route("GET", "/healthz")
    def healthz(_q: dict[str, str], _b: bytes) -> Response:
        return json_response(200, {"ok": True, "replica": replica})

    @app.route("GET", "/stock")
    def stock(q: dict[str, str], _b: bytes) -> Response:
        sku = q.get("sku", "")
        try:
            return json_response(200, {"sku": sku, "stock": inv.stock(sku)})
        except OSError as exc:
            return json_response(503, {"error": f"ledger read failed: {exc.strerror}", "replica": replica})

    @app.route("GET", "/reservations")
    def reservations(q: dict[str, str], _b: bytes) -> Response:
        prefix = q.get("prefix", "")
        try:
            found = {o: s for o, s in inv.orders().items() if o.startswith(prefix)}
        except OSError as exc:
            return json_response(503, {"error": f"ledger read failed: {exc.strerror}", "replica": replica})
        return json_response(200, {"reservations": found, "replica": replica})

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
