"""Test doubles that stand in for what a test needs around the object under test."""

from __future__ import annotations

import threading
from typing import Any

from chaos.durability import WriteTimeout
from chaos.journal import register_undo

# A tiny "world" the test faults change, so undo can be observed without a lab.
WORLD: dict[str, Any] = {}
UNDO_LOG: list[str] = []


@register_undo("test.set")
def _undo_set(undo: dict[str, Any]) -> None:
    UNDO_LOG.append(undo["key"])
    if undo.get("fail"):
        raise RuntimeError(f"undo of {undo['key']} failed on purpose")
    if undo["old"] is None:
        WORLD.pop(undo["key"], None)
    else:
        WORLD[undo["key"]] = undo["old"]


class MemoryKV:
    """An in-memory store that can be told to drop, fail or time out chosen writes."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.drop: set[int] = set()  # write numbers acknowledged but not stored (a lying store)
        self.fail: set[int] = set()
        self.timeout: set[int] = set()
        self.n = 0
        self._lock = threading.Lock()

    def put(self, key: str, value: str, timeout: float) -> None:
        with self._lock:
            n = self.n
            self.n += 1
        if n in self.fail:
            raise ConnectionError("refused")
        if n in self.timeout:
            raise WriteTimeout("no answer")
        if n not in self.drop:
            self.data[key] = value

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}
