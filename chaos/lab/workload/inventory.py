"""Inventory: reserves stock, durably. Each reservation is appended to a ledger on the
service's own volume and fsynced *before* it is acknowledged; a write the volume refuses is
answered 503 and never acknowledged. Reads are served from memory, rebuilt from the ledger
at start, so they keep working while the volume fails.

Its flaws (``--flaw``, for the fragile profile and the lab's weaknesses) each take one of
those properties away:

- ``no-fsync``: acknowledges once the line is written, before it is on disk;
- ``acks-failed-writes``: acknowledges a reservation even when the write failed;
- ``reads-from-disk``: reads the ledger from disk on every request;
- ``read-audit``: every read appends (and fsyncs) a 4 KiB audit record, and fails when that fails;
- ``sticky-read-only``: after a failed or slow write, refuses writes (and reports itself
  unhealthy) for 20 s, a block kept in its state file across restarts;
- ``memory-buffer``: after a failed or slow write, acknowledges reservations from a memory
  buffer it flushes every 30 s, which a restart loses.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import threading
import time
from pathlib import Path

from chaos.lab.workload.server import App, Response, json_response

INITIAL_STOCK = 1_000_000
AUDIT_RECORD = 4096  # a block each: on a full disk the first audit write already fails
SLOW_WRITE_S = 0.3  # a write slower than this counts as the disk being in trouble
BLOCK_S = 20.0
BUFFER_S = 30.0


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


def _append(path: Path, line: bytes, *, fsync: bool = True) -> None:
    """Append one whole line (and fsync it), or leave the file as it was and raise: a short
    write on a full disk would otherwise leave half a line, and the next append would be
    glued to it (both reservations lost at the next start)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all_or_fail(fd, line)
            if fsync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # the disk may refuse this too; the error stands
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


class Refused(Exception):
    """The inventory will not take the write now (blocked), without trying its disk."""


class Inventory:
    def __init__(
        self, data_dir: Path, replica: str, *, flaws: tuple[str, ...] = (), state_file: Path | None = None
    ) -> None:
        self.ledger_path = Path(data_dir) / "ledger.log"
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        self.replica = replica
        self.flaws = set(flaws)
        self.state_file = state_file
        self._lock = threading.Lock()  # the in-memory state: held for microseconds
        self._ledger_lock = threading.Lock()  # the ledger file: held through a slow disk
        # a new inventory starts with an empty ledger on its volume: a reader never finds it missing
        self.ledger_path.touch(exist_ok=True)
        self._orders = _parse(self.ledger_path.read_text())
        self._counts = _count(self._orders)
        self._buffer: list[bytes] = []  # memory-buffer: acknowledged, not yet on disk
        self._buffering_until = 0.0
        if "memory-buffer" in self.flaws:
            threading.Thread(target=self._flush_buffer, name="buffer-flush", daemon=True).start()

    # -- the sticky block, kept across restarts ----------------------------------------------
    def blocked_until(self) -> float:
        if self.state_file is None:
            return 0.0
        try:
            return float(json.loads(self.state_file.read_text()).get("blocked_until", 0.0))
        except (OSError, ValueError):
            return 0.0

    def _block(self) -> None:
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps({"blocked_until": time.time() + BLOCK_S}))

    def healthy(self) -> bool:
        return time.time() >= self.blocked_until()

    # -- writes ---------------------------------------------------------------------------------
    def _trouble(self) -> None:
        """The disk failed a write or was slow: what the flaws do about it."""
        if "sticky-read-only" in self.flaws:
            self._block()
        if "memory-buffer" in self.flaws:
            self._buffering_until = time.monotonic() + BUFFER_S

    def _flush_buffer(self) -> None:
        while True:
            time.sleep(BUFFER_S)
            with self._ledger_lock:
                pending, self._buffer = self._buffer, []
                try:
                    for line in pending:
                        _append(self.ledger_path, line)
                except OSError as exc:
                    print(f"buffer flush failed, {len(pending)} reservations kept: {exc}", file=sys.stderr)
                    self._buffer = pending + self._buffer

    def _write(self, line: bytes) -> None:
        if "sticky-read-only" in self.flaws and not self.healthy():
            raise Refused("writes blocked after a disk failure (read-only until the block expires)")
        if "memory-buffer" in self.flaws and time.monotonic() < self._buffering_until:
            self._buffer.append(line)  # acknowledged from memory: lost if we restart now
            return
        t0 = time.monotonic()
        try:
            _append(self.ledger_path, line, fsync="no-fsync" not in self.flaws)
        except OSError as exc:
            self._trouble()
            if "acks-failed-writes" not in self.flaws:
                raise
            print(f"ledger write failed, acknowledged anyway: {exc}", file=sys.stderr, flush=True)
        else:
            if time.monotonic() - t0 > SLOW_WRITE_S:
                self._trouble()

    def reserve(self, sku: str, order: str) -> int:
        """Append, fsync, then count: an acknowledged reservation survives a crash. Reads
        never wait for the disk: only appends queue behind each other."""
        with self._ledger_lock:
            self._write(f"{sku} {order}\n".encode())
        with self._lock:
            if order not in self._orders:
                self._counts[sku] = self._counts.get(sku, 0) + 1
            self._orders[order] = sku
            return INITIAL_STOCK - self._counts[sku]

    # -- reads ----------------------------------------------------------------------------------
    def _audit(self) -> None:
        if "read-audit" in self.flaws:
            record = f"read {time.time():.3f}".encode().ljust(AUDIT_RECORD - 1) + b"\n"
            _append(self.ledger_path.with_name("audit.log"), record)

    def orders(self) -> dict[str, str]:
        """Every reservation: from memory, or from the disk with ``reads-from-disk``."""
        self._audit()
        if "reads-from-disk" in self.flaws:
            return _parse(self.ledger_path.read_text())
        with self._lock:
            return dict(self._orders)

    def stock(self, sku: str) -> int:
        self._audit()
        if "reads-from-disk" in self.flaws:
            return INITIAL_STOCK - _count(_parse(self.ledger_path.read_text())).get(sku, 0)
        with self._lock:
            return INITIAL_STOCK - self._counts.get(sku, 0)


def build(
    data_dir: Path, replica: str, *, flaws: tuple[str, ...] = (), state_file: Path | None = None
) -> App:
    app = App("inventory")
    inv = Inventory(data_dir, replica, flaws=flaws, state_file=state_file)

    @app.route("GET", "/healthz")
    def healthz(_q: dict[str, str], _b: bytes) -> Response:
        if not inv.healthy():
            return json_response(503, {"ok": False, "replica": replica, "why": "writes blocked"})
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
        except Refused as exc:
            return json_response(503, {"error": str(exc), "replica": replica})
        return json_response(200, {"sku": sku, "order": order, "stock": left, "replica": replica})

    return app
