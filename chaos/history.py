"""Operation histories and what they prove: linearizability of per-key registers, and the
anomalies with names (stale reads, lost writes, reads of values never written).

A history records each operation as its invocation and its completion, with Jepsen's three
outcomes: ``ok`` (it happened), ``fail`` (it certainly did not), ``info`` (unknown: it timed
out or its connection died, so it may have happened at any time after its invocation).

The checker is Wing & Gong's search with Lowe's memoisation, as porcupine does it: keys are
independent registers and are checked one by one; a ``fail`` operation is dropped; an ``info``
write or compare-and-set may take effect or not, at any time after its invocation; an
``info`` read constrains nothing and is dropped. A violation is cut down to a small set of
operations that still cannot be linearized (greedy removal), drawn per client on a time line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from chaos.slo import Check, Computed, Measure

OpF = Literal["read", "write", "cas"]
OpType = Literal["ok", "fail", "info"]
INF = float("inf")
MINIMISE_BUDGET = 300  # checker calls spent cutting a counterexample down


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


# -- the linearizability search -----------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    ops: int
    keys: int
    key: str | None = None
    counterexample: list[Op] = field(default_factory=list)

    def timeline(self) -> str:
        """The counterexample per client on one time line, for a person to read."""
        return draw(self.counterexample)


def check(ops: list[Op]) -> Verdict:
    """Linearizability of every key's register; the first violation, cut down."""
    by_key: dict[str, list[Op]] = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    for key in sorted(by_key):
        if not linearizable(by_key[key]):
            return Verdict(False, len(ops), len(by_key), key, minimise(by_key[key]))
    return Verdict(True, len(ops), len(by_key))


def _relevant(ops: list[Op]) -> list[Op]:
    # a failed operation did not happen; an unknown read tells nothing
    return [o for o in ops if o.type != "fail" and not (o.type == "info" and o.f == "read")]


def _steps(o: Op, state: Any) -> Iterator[Any]:
    """The register's states after ``o`` from ``state``, as its outcome allows: one for an
    ``ok`` operation that fits (none if it does not), two for an ``info`` write (applied or
    not), and so on."""
    if o.f == "read":
        if state == o.value:
            yield state
    elif o.f == "write":
        yield o.value
        if o.type == "info":
            yield state
    else:  # cas: an acknowledged one applied; an unknown one may not have
        expected, new = o.value
        if state == expected:
            yield new
        if o.type == "info":
            yield state


@dataclass
class _Entry:
    op: int  # index into the key's ops
    call: bool
    time: float
    prev: _Entry | None = None
    next: _Entry | None = None
    match: _Entry | None = None  # a call's return entry


def linearizable(ops: list[Op], initial: Any = None) -> bool:
    """Whether one register's operations have a linearization (from ``initial``)."""
    ops = _relevant(ops)
    if not ops:
        return True
    events: list[_Entry] = []
    for i, o in enumerate(ops):
        call, ret = _Entry(i, True, o.invoke), _Entry(i, False, o.complete)
        call.match = ret
        events += [call, ret]
    # by time; at a tie a call comes first (two operations touching the same instant overlap)
    events.sort(key=lambda e: (e.time, not e.call))
    head = _Entry(-1, False, -INF)
    prev = head
    for e in events:
        prev.next, e.prev = e, prev
        prev = e
    linearized = 0
    state: Any = initial
    seen: set[tuple[int, Any]] = set()
    # (call entry, state before it, choices still to try for it)
    stack: list[tuple[_Entry, Any, Iterator[Any]]] = []
    entry = head.next
    while head.next is not None:
        assert entry is not None
        if entry.call:
            before, choices = state, _steps(ops[entry.op], state)
        else:
            # a return whose call is not linearized yet: undo the last choice, try its next one
            if not stack:
                return False
            entry, before, choices = stack.pop()
            linearized &= ~(1 << entry.op)
            _unlift(entry)
        moved = _try(entry, choices, linearized, seen)
        if moved is None:
            state = before
            entry = entry.next
            continue
        stack.append((entry, before, choices))
        state = moved.value
        linearized |= 1 << entry.op
        _lift(entry)
        entry = head.next
    return True


def _try(entry: _Entry, choices: Iterator[Any], linearized: int, seen: set[tuple[int, Any]]) -> _Some | None:
    """The next state reachable by linearizing ``entry`` that was never explored, or None."""
    done = linearized | (1 << entry.op)
    for nxt in choices:
        key = (done, _hashable(nxt))
        if key not in seen:
            seen.add(key)
            return _Some(nxt)
    return None


class _Some:
    """A state wrapped so that a register holding None is still a move."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _lift(call: _Entry) -> None:
    ret = call.match
    assert call.prev is not None and ret is not None and ret.prev is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Entry) -> None:
    ret = call.match
    assert call.prev is not None and ret is not None and ret.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def minimise(ops: list[Op], budget: int = MINIMISE_BUDGET) -> list[Op]:
    """A small subset of ``ops`` that still cannot be linearized. A stale read is its own
    proof (the older write, the newer one, the read); otherwise the shortest failing prefix
    by completion, then chunks and single operations removed while it still fails."""
    ops = sorted(_relevant(ops), key=lambda o: o.complete)
    for r, newer, older in _overwritten(ops):
        triple = [o for o in (older, newer, r) if o is not None]
        if not linearizable(triple):
            return sorted(triple, key=lambda o: o.invoke)
    lo, hi = 1, len(ops)
    while lo < hi and budget > 0:
        mid = (lo + hi) // 2
        budget -= 1
        if linearizable(ops[:mid]):
            lo = mid + 1
        else:
            hi = mid
    core = ops[:hi]
    if linearizable(core):  # a later operation mattered after all: start from everything
        core = ops
    chunk = max(1, len(core) // 2)
    while budget > 0:
        i = len(core) - chunk
        while i >= 0 and budget > 0:
            trial = core[:i] + core[i + chunk :]
            budget -= 1
            if trial and not linearizable(trial):
                core = trial
            i -= chunk
        if chunk == 1:
            break
        chunk = max(1, chunk // 2)
    return sorted(core, key=lambda o: o.invoke)


# -- anomalies with names -----------------------------------------------------------------------


def _writes(ops: list[Op]) -> dict[tuple[str, Any], Op]:
    """Acknowledged writes and CAS by (key, value written): values are unique per write."""
    out: dict[tuple[str, Any], Op] = {}
    for o in ops:
        if o.type == "ok" and o.f in ("write", "cas"):
            out[(o.key, o.value if o.f == "write" else o.value[1])] = o
    return out


def _overwritten(ops: list[Op]) -> list[tuple[Op, Op, Op | None]]:
    """(read, newer write, older write) for every ok read that returned a value overwritten
    before it began: ``newer`` completed before the read's invocation, and the value read was
    written by ``older``, which completed before ``newer`` began (None: the initial value)."""
    acked = _writes(ops)
    by_key: dict[str, list[Op]] = {}
    for w in acked.values():
        by_key.setdefault(w.key, []).append(w)
    found = []
    for r in ops:
        if r.f != "read" or r.type != "ok":
            continue
        older = acked.get((r.key, r.value)) if r.value is not None else None
        if r.value is not None and older is None:
            continue  # written by an info write, or never: not a stale read
        for newer in by_key.get(r.key, []):
            if newer is older or newer.complete >= r.invoke:
                continue
            if older is None or older.complete < newer.invoke:
                found.append((r, newer, older))
                break
    return found


def stale_reads(ops: list[Op]) -> list[Op]:
    return [r for r, _, _ in _overwritten(ops)]


def lost_writes(ops: list[Op]) -> list[Op]:
    """Acknowledged writes a later read contradicts: it returned an older value."""
    lost: dict[int, Op] = {}
    for _, newer, _ in _overwritten(ops):
        lost.setdefault(newer.id, newer)
    return list(lost.values())


def phantom_reads(ops: list[Op]) -> list[Op]:
    written = {(o.key, o.value if o.f == "write" else o.value[1]) for o in ops if o.f in ("write", "cas")}
    return [
        o
        for o in ops
        if o.f == "read" and o.type == "ok" and o.value is not None and (o.key, o.value) not in written
    ]


def draw(ops: list[Op], width: int = 60) -> str:
    """Each client's operations as bars on one time line (``|----|``; ``|---->`` unknown end)."""
    if not ops:
        return ""
    t0 = min(o.invoke for o in ops)
    t1 = max(
        max(o.complete for o in ops if o.complete != INF) if any(o.complete != INF for o in ops) else t0, t0
    )
    span = max(t1 - t0, 1e-9)

    def col(t: float) -> int:
        return min(width - 1, int((t - t0) / span * (width - 1)))

    lines = [f"time {t0:.3f} s .. {t1:.3f} s"]
    for o in sorted(ops, key=lambda x: (x.process, x.invoke)):
        a = col(o.invoke)
        b = width - 1 if o.complete == INF else max(col(o.complete), a + 1)
        bar = " " * a + "|" + "-" * max(0, b - a - 1) + (">" if o.complete == INF else "|")
        lines.append(f"{bar:<{width + 1}} {o.describe()}")
    return "\n".join(lines)
