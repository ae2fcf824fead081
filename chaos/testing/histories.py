"""Histories of a real register, simulated: for testing the checker and for its benchmark.

Each operation takes effect at a random instant inside its interval, in time order, so the
history is linearizable by construction; ``stale=True`` appends a read that returns a value an
acknowledged write replaced strictly before the read began, which no linearization allows."""

from __future__ import annotations

import itertools
import random

from chaos.history import Op


def register_history(
    seed: int, *, clients: int = 5, keys: int = 1, ops: int = 100, stale: bool = False, unknown: float = 0.0
) -> list[Op]:
    """``unknown``: the share of writes whose client never learns the outcome (``info``); half
    of those really took effect."""
    rng = random.Random(seed)
    ids = itertools.count()
    plans = []
    t = [0.0] * clients
    for i in range(ops):
        c = rng.randrange(clients)
        start = t[c] + rng.random() * 0.01
        end = start + rng.random() * 0.02
        t[c] = end
        plans.append(
            (rng.uniform(start, end), c, rng.choice(["read", "write", "write", "cas"]), start, end, i)
        )
    state: dict[str, str | None] = {}
    out: list[Op] = []
    for _point, c, f, start, end, i in sorted(plans):
        key = f"k{rng.randrange(keys)}"
        now = state.get(key)
        if f == "read":
            out.append(Op(next(ids), c, "read", key, now, start, end, "ok"))
        elif f == "write":
            if rng.random() < unknown:
                if rng.random() < 0.5:
                    state[key] = f"v{i}"
                out.append(Op(next(ids), c, "write", key, f"v{i}", start, float("inf"), "info"))
                continue
            state[key] = f"v{i}"
            out.append(Op(next(ids), c, "write", key, f"v{i}", start, end, "ok"))
        else:
            expected = now if rng.random() < 0.5 else "nope"
            applied = now == expected
            if applied:
                state[key] = f"v{i}"
            out.append(
                Op(next(ids), c, "cas", key, (expected, f"v{i}"), start, end, "ok" if applied else "fail")
            )
    if stale:
        acked = [o for o in out if o.f in ("write", "cas") and o.type == "ok"]
        older = next((a for a in acked if any(b.key == a.key and b.invoke > a.complete for b in acked)), None)
        if older is not None:
            last = max(o.complete for o in out)
            value = older.value if older.f == "write" else older.value[1]
            out.append(Op(next(ids), clients, "read", older.key, value, last + 1, last + 2, "ok"))
    return out
