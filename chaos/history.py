"""Operation histories and what they prove: linearizability of per-key registers, and the
anomalies with names (stale reads, lost writes, reads of values never written).

A history records each operation as its invocation and its completion, with Jepsen's three
outcomes: ``ok`` (it happened), ``fail`` (it certainly did not), ``info`` (unknown: it timed
out or its connection died, so it may have happened at any time after its invocation).

The checker (``chaos.linearizable``) is Wing & Gong's search with Lowe's memoisation, as
porcupine does it, per key; a violation comes back cut down to a few operations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chaos.linearizable import (
    Verdict,
    check,
    linearizable,
    lost_writes,
    phantom_reads,
    stale_reads,
)
from chaos.ops import INF, Op, OpF, OpType
from chaos.slo import Check, Computed, Measure

__all__ = [
    "INF",
    "History",
    "Op",
    "OpF",
    "OpType",
    "Verdict",
    "check",
    "linearizable",
    "lost_writes",
    "phantom_reads",
    "stale_reads",
]


class History:
    """A thread-safe record of operations as concurrent clients invoke and complete them."""

    def __init__(self, name: str = "registers", now: Callable[[], float] | None = None) -> None:
        self.name = name
        # on the experiment's timeline when given its clock (so operations line up with faults)
        self._now = now or time.monotonic
        self._origin = 0.0 if now else self._now()
        self._ops: list[Op] = []
        # an operation not yet answered is unknown (info) until it is
        self._pending: dict[int, Op] = {}
        self._next = 0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now() - self._origin

    def invoke(self, process: int, f: OpF, key: str, value: Any = None, member: str | None = None) -> int:
        with self._lock:
            op_id = self._next
            self._next += 1
            self._pending[op_id] = Op(op_id, process, f, key, value, self.now(), INF, "info", member)
        return op_id

    def complete(self, op_id: int, type_: OpType, value: Any = None, error: str | None = None) -> Op:
        """Record the outcome; a read's ``value`` is what it read (others keep their own)."""
        with self._lock:
            p = self._pending.pop(op_id)
            done = INF if type_ == "info" else self.now()
            op = replace(p, value=value if p.f == "read" else p.value, complete=done, type=type_, error=error)
            self._ops.append(op)
        return op

    def add(self, op: Op) -> None:
        """A finished operation, as a hand-built or loaded history has it."""
        with self._lock:
            self._ops.append(op)
            self._next = max(self._next, op.id + 1)

    @property
    def ops(self) -> list[Op]:
        """Every finished operation, and those still outstanding as ``info``."""
        with self._lock:
            return sorted([*self._ops, *self._pending.values()], key=lambda o: o.id)

    # -- checks ---------------------------------------------------------------------------------
    def check(self) -> Verdict:
        return check(self.ops)

    def linearizable(self) -> Check:
        """A check: every key's operations have a linearization (1 = yes)."""

        def compute() -> Computed:
            v = self.check()
            detail: dict[str, Any] = {"ops": v.ops, "keys": v.keys}
            if v.counterexample:
                detail["key"] = v.key
                detail["counterexample"] = [o.describe() for o in v.counterexample]
            return Computed(1.0 if v.ok else 0.0, detail, (None, None))

        return Measure(f"{self.name} linearizable", "all", compute) == 1

    def stale_reads(self) -> Measure:
        """Reads that returned a value older than one acknowledged before the read began."""
        return self._count("stale reads", stale_reads)

    def lost(self) -> Measure:
        """Acknowledged writes a later read shows rolled back (an older value came back)."""
        return self._count("lost writes", lost_writes)

    def phantom_reads(self) -> Measure:
        """Reads of a value no operation ever wrote."""
        return self._count("reads of values never written", phantom_reads)

    def _count(self, what: str, find: Callable[[list[Op]], list[Op]]) -> Measure:
        def compute() -> Computed:
            found = find(self.ops)
            detail: dict[str, Any] = {"examples": [o.describe() for o in found[:5]]}
            return Computed(float(len(found)), detail, (None, None))

        return Measure(f"{self.name} {what}", "all", compute)

    # -- export ---------------------------------------------------------------------------------
    def to_edn(self) -> str:
        """Jepsen's history format (independent keys as ``[key value]`` tuples), one map per
        invocation and per completion, in time order, for Elle or Knossos."""
        events: list[tuple[float, int, str]] = []
        for o in self.ops:
            value = _edn_value(o, o.value if o.f != "read" else None)
            events.append((o.invoke, 0, _edn_map(o, "invoke", value, o.invoke)))
            if o.complete != INF:
                events.append((o.complete, 1, _edn_map(o, o.type, _edn_value(o, o.value), o.complete)))
            else:
                events.append((INF, 1, _edn_map(o, "info", value, None)))
        return "\n".join(line for _, _, line in sorted(events, key=lambda e: (e[0], e[1]))) + "\n"

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "id": o.id,
                "process": o.process,
                "f": o.f,
                "key": o.key,
                "value": list(o.value) if o.f == "cas" else o.value,
                "invoke": o.invoke,
                "complete": None if o.complete == INF else o.complete,
                "type": o.type,
                "member": o.member,
                "error": o.error,
            }
            for o in self.ops
        ]


def _edn_atom(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + " ".join(_edn_atom(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _edn_value(o: Op, v: Any) -> str:
    return f"[{_edn_atom(o.key)} {_edn_atom(list(v) if o.f == 'cas' and v is not None else v)}]"


def _edn_map(o: Op, type_: str, value: str, t: float | None) -> str:
    when = "" if t is None else f", :time {int(t * 1e9)}"
    return f"{{:process {o.process}, :type :{type_}, :f :{o.f}, :value {value}{when}}}"
