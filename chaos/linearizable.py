"""Linearizability of per-key registers, and the anomalies with names.

Wing & Gong's search with Lowe's memoisation, as porcupine does it: keys are independent
registers checked one by one. A violation is cut down to a small set of operations that still
cannot be linearized and drawn per client on a time line. ``stale_reads``, ``lost_writes`` and
``phantom_reads`` name the anomaly without a search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaos.ops import INF, Op

MINIMISE_BUDGET = 300  # checker calls spent cutting a counterexample down


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
    """The operations that constrain a linearization. A failed operation did not happen and
    an unknown read tells nothing. An unknown write (or CAS) whose value nobody observed may
    as well not have happened: no later read or CAS saw it, so dropping it never turns a
    valid linearization invalid, nor an invalid one valid. One whose value was observed did
    happen (values are unique), some time after its invocation. So every operation left has
    one outcome, and the search does not branch on unknowns (the branching that makes
    Knossos run out of memory)."""
    observed = {(o.key, o.value) for o in ops if o.f == "read" and o.type == "ok"}
    observed |= {(o.key, o.value[0]) for o in ops if o.f == "cas" and o.type == "ok"}
    kept = []
    for o in ops:
        if o.type == "fail" or (o.type == "info" and o.f == "read"):
            continue
        if o.type == "info" and (o.key, o.value if o.f == "write" else o.value[1]) not in observed:
            continue
        kept.append(o)
    return kept


def _step(o: Op, state: Any) -> tuple[bool, Any]:
    """Whether ``o`` can take effect on ``state`` (a read must see it, a CAS must find its
    expected value) and the state after it. An unknown write or CAS left by ``_relevant`` was
    observed, so it took effect: every operation has one outcome, and the search one choice."""
    if o.f == "read":
        return state == o.value, state
    if o.f == "write":
        return True, o.value
    expected, new = o.value
    return state == expected, new


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
    seen: set[tuple[int, Any]] = set()  # (operations linearized, state) already explored
    stack: list[tuple[_Entry, Any]] = []  # each linearized call and the state before it
    entry = head.next
    while head.next is not None:
        assert entry is not None
        if entry.call:
            fits, after = _step(ops[entry.op], state)
            done = linearized | (1 << entry.op)
            if fits and (done, after) not in seen:
                seen.add((done, after))
                stack.append((entry, state))
                state, linearized = after, done
                _lift(entry)
                entry = head.next
            else:
                entry = entry.next
            continue
        # a return whose call is not linearized yet: undo the last linearization, move past it
        if not stack:
            return False
        entry, state = stack.pop()
        linearized &= ~(1 << entry.op)
        _unlift(entry)
        entry = entry.next
    return True


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
