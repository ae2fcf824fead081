"""A register workload: concurrent logical clients doing reads, writes and compare-and-set on
a few keys, each through the store (the member) it is routed to, every operation recorded in
a ``History`` with Jepsen's outcomes, so the checker can judge what clients saw.

A store says what happened to each operation: it returns (``ok``), raises ``WriteTimeout``
(unknown: ``info``, it may still take effect) or ``PlatformError`` (refused: ``fail``, it
certainly did not). Values are unique per write, so every read names the write it saw."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from chaos.durability import WriteTimeout
from chaos.errors import ChaosError, NotSupported
from chaos.history import History

READ_SHARE = 0.5
WRITE_SHARE = 0.3  # the rest are compare-and-set


class RegisterStore(Protocol):
    """Single-key registers on one route: a member (``member``) or any (None)."""

    member: str | None

    def read(self, key: str, timeout: float) -> str | None: ...

    def write(self, key: str, value: str, timeout: float) -> None: ...

    def cas(self, key: str, expected: str | None, new: str, timeout: float) -> bool:
        """Set ``key`` to ``new`` if it holds ``expected`` (None: absent); False if it did not."""
        ...


class RegisterClient:
    """One logical client: each call does one random operation and records it (a probe's
    sampler: it raises when the operation did not succeed, so the probe counts it)."""

    def __init__(
        self,
        history: History,
        store: RegisterStore,
        process: int,
        *,
        keys: list[str],
        rng: random.Random,
        timeout: float,
    ) -> None:
        self.history, self.store, self.process = history, store, process
        self.keys, self.rng, self.timeout = keys, rng, timeout
        self._seen: dict[str, str | None] = {}
        self._n = 0
        self._lock = threading.Lock()  # the probe may run two of this client's calls at once

    def __call__(self) -> str:
        with self._lock:
            self._n += 1
            n, roll, key = self._n, self.rng.random(), self.rng.choice(self.keys)
            expected = self._seen.get(key)
        value = f"{self.process}-{n}"
        if roll < READ_SHARE:
            return self._read(key)
        if roll < READ_SHARE + WRITE_SHARE:
            return self._change("write", key, value, lambda: self.store.write(key, value, self.timeout))
        return self._change(
            "cas", key, (expected, value), lambda: self.store.cas(key, expected, value, self.timeout)
        )

    def _read(self, key: str) -> str:
        op = self.history.invoke(self.process, "read", key, member=self.store.member)
        try:
            got = self.store.read(key, self.timeout)
        except NotSupported:
            raise
        except Exception as exc:
            # a read that failed constrains nothing: fail and info are the same to the checker
            self.history.complete(op, "fail", error=f"{type(exc).__name__}: {exc}")
            raise
        self.history.complete(op, "ok", got)
        with self._lock:
            self._seen[key] = got
        return f"read {key} -> {got!r}"

    def _change(
        self, f: Literal["write", "cas"], key: str, value: Any, call: Callable[[], bool | None]
    ) -> str:
        op = self.history.invoke(self.process, f, key, value, member=self.store.member)
        try:
            applied = call()
        except WriteTimeout as exc:
            self.history.complete(op, "info", error=str(exc))
            raise
        except NotSupported:
            raise
        except ChaosError as exc:  # refused before it was applied
            self.history.complete(op, "fail", error=str(exc))
            raise
        except Exception as exc:
            self.history.complete(op, "info", error=f"{type(exc).__name__}: {exc}")
            raise
        if f == "cas" and applied is False:
            self.history.complete(op, "fail", error="compare failed")
            return f"cas {key}: compare failed"
        self.history.complete(op, "ok")
        return f"{f} {key}"
