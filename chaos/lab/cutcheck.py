"""Whether a network cut is in effect, or a link drops or resets connections: every pair
tried at once, in one step with its positive control.

A dropped SYN gets no answer at all, so "cut" can only mean "did not connect in time", and the
time given must be measured, not assumed: each destination is also connected to from the root
namespace (the bridge's own address, which no partition cuts) in the same instant. A blocked
pair then counts as cut once it has waited 20 times the slowest of those controls (at least
20 ms, at most 300 ms), so a machine too busy to connect quickly gets longer, never a cut that
only looks real because the check gave up early.

All attempts are non-blocking connects on one selector in the calling thread. A socket keeps
the network namespace it was created in, so only the creation runs inside the source node's
namespace (one short thread per source, `nsexec.run_in`); there is no thread per pair.
"""

from __future__ import annotations

import errno
import select
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from chaos.lab.nsexec import run_in

CUT_TIMEOUT_MIN = 0.02
CUT_TIMEOUT_MAX = 0.3
CUT_MARGIN = 20  # a blocked pair waits this many times the slowest connection that got through

Pair = tuple[str, str]  # (source node, destination node)


@dataclass
class _Attempt:
    pair: Pair | None  # None: the positive control for ``dest``, from the root namespace
    dest: str
    sock: socket.socket
    error: int | None = None  # None: no answer yet; 0: connected; else the errno it ended with
    started: float = 0.0
    took: float = 0.0


def leaks(
    pairs: list[Pair], nodes: dict[str, tuple[str, int]], clock: Callable[[], float] = time.perf_counter
) -> list[str]:
    """The pairs of ``pairs`` that still reach each other, as ``"src -> dest"`` lines (empty
    when the cut is in effect). ``nodes`` maps a node to the address and port to try.

    A destination whose control does not connect either (another fault killed it) cannot show
    the cut: its pairs are left out, unless nothing answered at all, when every pair is judged
    on whether it connected."""
    attempts = _attempt(pairs, nodes, clock)
    answering = {a.dest for a in attempts if a.pair is None and a.error == 0}
    checked = [a for a in attempts if a.pair is not None and (a.dest in answering or not answering)]
    # Only a completed connection is a leak. A reset is not proof of one: another fault in
    # force on the same pair (a degraded link's resets) may answer before this cut's drop does.
    return [f"{a.pair[0]} -> {a.pair[1]}" for a in checked if a.pair is not None and a.error == 0]


def refused(
    src: str,
    dest: str,
    nodes: dict[str, tuple[str, int]],
    count: int,
    clock: Callable[[], float] = time.perf_counter,
) -> int | None:
    """How many of ``count`` connections from ``src`` to ``dest``, opened at once beside their
    positive control, did not connect: reset, refused, or dropped (no answer in the time the
    control allows, as for a cut). None when the control did not connect either: ``dest`` is
    down, and a link to it cannot show its own faults."""
    attempts = _attempt([(src, dest)] * count, nodes, clock)
    if not any(a.pair is None and a.error == 0 for a in attempts):
        return None
    return sum(1 for a in attempts if a.pair is not None and a.error != 0)


def _attempt(
    pairs: list[Pair], nodes: dict[str, tuple[str, int]], clock: Callable[[], float]
) -> list[_Attempt]:
    """Every pair tried once and every destination once from the root namespace, at once; the
    sockets closed again."""
    attempts: list[_Attempt] = []
    try:
        for src in sorted({x for x, _ in pairs}):
            dests = [y for x, y in pairs if x == src]
            made = run_in(f"chaos-{src}", partial(_sockets, len(dests)))
            attempts += [_Attempt((src, y), y, s) for y, s in zip(dests, made, strict=True)]
        attempts += [_Attempt(None, y, _socket()) for y in sorted({y for _, y in pairs})]
        _connect_all(attempts, nodes, clock)
    finally:
        for a in attempts:
            a.sock.close()
    return attempts


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


def _sockets(count: int) -> list[socket.socket]:
    return [_socket() for _ in range(count)]


def _connect_all(
    attempts: list[_Attempt], nodes: dict[str, tuple[str, int]], clock: Callable[[], float]
) -> None:
    """Start every attempt, the pairs first and then the controls, and wait for answers until
    each pair has had the time the controls allow. A control is looked at right after its own
    connect (on this machine the handshake has usually completed by then), so its time is the
    connection's, not the time it took to start all the others."""
    sel = selectors.DefaultSelector()
    try:
        last_start = clock()
        for a in sorted(attempts, key=lambda a: a.pair is None):
            a.started = last_start = clock()
            err = a.sock.connect_ex(nodes[a.dest])
            if err not in (errno.EINPROGRESS, errno.EAGAIN):
                a.error, a.took = err, clock() - a.started
            elif a.pair is None and select.select([], [a.sock], [], 0)[1]:
                _answered(a, clock)
            else:
                sel.register(a.sock, selectors.EVENT_WRITE, a)
        controls = [a for a in attempts if a.pair is None]
        deadline = last_start + CUT_TIMEOUT_MAX
        while sel.get_map():
            if all(c.error is not None for c in controls):
                answered = [c.took for c in controls if c.error == 0]
                if answered:
                    given = min(CUT_TIMEOUT_MAX, max(CUT_TIMEOUT_MIN, CUT_MARGIN * max(answered)))
                    deadline = last_start + given
            remaining = deadline - clock()
            if remaining <= 0:
                break
            for key, _ in sel.select(remaining):
                _answered(key.data, clock)
                sel.unregister(key.fileobj)
    finally:
        sel.close()


def _answered(a: _Attempt, clock: Callable[[], float]) -> None:
    a.error = a.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    a.took = clock() - a.started
