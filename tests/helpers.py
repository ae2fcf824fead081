"""Test doubles that stand in for what a test needs around the object under test."""

from __future__ import annotations

import threading
from typing import Any

from chaos.durability import WriteTimeout
from chaos.errors import FaultNotInEffect, UnsafeFaultRefused
from chaos.fault import Fault
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


class SetKeys(Fault):
    """Sets keys in WORLD; each change journaled first."""

    kind = "set_keys"

    def __init__(self, ctx, keys, *, effect=True, fail_undo=(), refuse=False, interrupt_after=None):
        super().__init__(ctx)
        self.keys = keys
        self.effect = effect
        self.fail_undo = set(fail_undo)
        self.refuse = refuse
        self.interrupt_after = interrupt_after
        self.journal_seen_before_change: list[bool] = []

    def describe(self):
        return f"set {','.join(self.keys)}"

    def prepare(self):
        if self.refuse:
            raise UnsafeFaultRefused("too dangerous")

    def inject(self):
        for i, k in enumerate(self.keys):
            self.journaled(
                "test.set", {"key": k, "old": WORLD.get(k), "fail": k in self.fail_undo}, f"undo {k}"
            )
            self.journal_seen_before_change.append(
                any(e.undo["key"] == k for e in self.ctx.journal.entries())
            )
            if self.effect:
                WORLD[k] = "fault"
            if self.interrupt_after == i:
                raise KeyboardInterrupt

    def verify(self):
        if any(WORLD.get(k) != "fault" for k in self.keys):
            raise FaultNotInEffect("keys not set")
