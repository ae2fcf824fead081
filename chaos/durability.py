"""A writer that issues unique writes at a fixed rate and proves none acknowledged was lost.

Each operation's invocation, completion and outcome is kept (the history Jepsen-style
checkers read). An *acknowledged* write must be readable at the end; a write that timed out
is indeterminate (it may or may not have been applied) and is never counted as lost.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass
from typing import Literal, Protocol

from chaos.errors import ChaosError
from chaos.probes import DEFAULT_HZ, Probe, Series
from chaos.timeline import Timeline

Outcome = Literal["ack", "fail", "timeout"]


class WriteTimeout(ChaosError):
    """The store did not answer in time: the write may or may not have been applied."""


class KV(Protocol):
    """A replicated store the writer talks to (the masters' etcd, on any platform)."""

    def put(self, key: str, value: str, timeout: float) -> None:
        """Write and return once acknowledged; raise WriteTimeout when indeterminate and any
        other exception when the write certainly failed."""
        ...

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        """Linearizable read of every key under ``prefix``."""
        ...


@dataclass(frozen=True)
class Op:
    key: str
    value: str
    invoked: float
    completed: float
    outcome: Outcome
    error: str | None = None


class DurabilityProbe:
    """Writes ``<prefix><run>/<seq>`` = ``<seq>`` at ``hz``; ``lost_keys()`` reads them back."""

    def __init__(
        self,
        kv: KV,
        timeline: Timeline,
        *,
        hz: float = DEFAULT_HZ,
        timeout: float = 1.0,
        prefix: str = "/chaos/durability/",
        name: str = "writes",
    ) -> None:
        self.kv = kv
        self.timeout = timeout
        self.prefix = f"{prefix}{uuid.uuid4().hex[:8]}/"
        self._seq = itertools.count()
        self._ops: list[Op] = []
        self._lock = threading.Lock()
        self._lost: list[str] | None = None
        # a write may try other members before one answers: twice its timeout to do so
        self.probe = Probe(name, self._write_one, timeline, hz=hz, deadline=2 * timeout)

    @property
    def series(self) -> Series:
        return self.probe.series

    def _write_one(self) -> str:
        seq = next(self._seq)
        key, value = f"{self.prefix}{seq:08d}", str(seq)
        tl = self.probe.timeline
        invoked = tl.now()
        outcome: Outcome = "ack"
        error: str | None = None
        try:
            self.kv.put(key, value, self.timeout)
        except WriteTimeout as exc:
            outcome, error = "timeout", str(exc)
            raise
        except Exception as exc:
            outcome, error = "fail", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with self._lock:
                self._ops.append(Op(key, value, invoked, tl.now(), outcome, error))
        return key

    def start(self) -> DurabilityProbe:
        self.probe.start()
        return self

    def stop(self) -> None:
        self.probe.stop()

    def history(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def counts(self) -> dict[str, int]:
        out = {"ack": 0, "fail": 0, "timeout": 0}
        for op in self.history():
            out[op.outcome] += 1
        return out

    def lost_keys(self, read_timeout: float = 10.0) -> list[str]:
        """Stop writing, read everything back, and return acknowledged keys that are missing
        or hold the wrong value. Computed once; later calls return the same answer."""
        if self._lost is None:
            self.stop()
            stored = self.kv.read_prefix(self.prefix, read_timeout)
            self._lost = [
                op.key for op in self.history() if op.outcome == "ack" and stored.get(op.key) != op.value
            ]
        return list(self._lost)
