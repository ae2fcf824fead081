"""One operation of a history, with Jepsen's outcomes: ``ok`` (it happened), ``fail`` (it
certainly did not), ``info`` (unknown: it may have happened at any time after its invocation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OpF = Literal["read", "write", "cas"]
OpType = Literal["ok", "fail", "info"]
INF = float("inf")


@dataclass(frozen=True)
class Op:
    """One operation. ``value``: for a write the value written; for a read the value read
    (None: the key was absent); for a CAS ``(expected, new)``. ``member``: where it was sent."""

    id: int
    process: int
    f: OpF
    key: str
    value: Any
    invoke: float
    complete: float  # INF for an info operation: it may take effect any time after invoke
    type: OpType
    member: str | None = None
    error: str | None = None

    def describe(self) -> str:
        what = {
            "read": f"read {self.key} -> {self.value!r}",
            "write": f"write {self.key} := {self.value!r}",
            "cas": f"cas {self.key} {self.value[0]!r} -> {self.value[1]!r}" if self.f == "cas" else "",
        }[self.f]
        where = f" via {self.member}" if self.member else ""
        end = "?" if self.complete == INF else f"{self.complete:.3f}"
        return f"client {self.process}: {what} [{self.type}]{where} ({self.invoke:.3f}–{end} s)"
