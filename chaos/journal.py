"""A crash-safe record of the faults in force and the data that undoes them.

Each change is written to a temporary file, fsynced and renamed over the journal, then the
directory is fsynced: after a crash the journal is either the old or the new version, never
a torn one. A fault is written here *before* it is injected, so a run killed at any point
leaves enough behind for ``recover()`` to undo it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.errors import ChaosError, RollbackError

UndoFn = Callable[[dict[str, Any]], None]
_UNDO: dict[str, UndoFn] = {}

JOURNAL_VERSION = 1


def register_undo(kind: str) -> Callable[[UndoFn], UndoFn]:
    """Register the function that undoes faults of ``kind`` from their journaled data.

    Undo functions must be idempotent: ``recover`` may run them on a fault that was already
    partly or wholly reverted.
    """

    def decorate(fn: UndoFn) -> UndoFn:
        _UNDO[kind] = fn
        return fn

    return decorate


def undo_for(kind: str) -> UndoFn:
    """The undo function of ``kind``, importing the module that registers it (chaos.registry)
    when it is not loaded yet."""
    from chaos.registry import UNDO_MODULES, load_undo_module

    if kind not in _UNDO:
        load_undo_module(kind)
    try:
        return _UNDO[kind]
    except KeyError:
        # every kind this installation can undo, loaded or not (what is loaded depends on
        # what the process happened to import before)
        known = ", ".join(sorted({*_UNDO, *UNDO_MODULES})) or "none"
        raise ChaosError(
            f"no undo registered for fault kind {kind!r} (known: {known}); "
            "is the platform driver that injected it installed?"
        ) from None


@dataclass(frozen=True)
class Entry:
    """One undo step in force: what kind, the data that undoes it, who wrote it, when."""

    id: str
    kind: str
    undo: dict[str, Any]
    description: str
    owner_pid: int
    owner_start: str
    created: float  # wall-clock seconds, for humans and TTLs across processes
    ttl: float | None = None

    def expired(self, now: float) -> bool:
        return self.ttl is not None and now > self.created + self.ttl


@dataclass
class _Doc:
    version: int = JOURNAL_VERSION
    entries: list[Entry] = field(default_factory=list)


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone.

    A pid plus its start time names one process for good; a pid alone can be reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_alive(entry: Entry) -> bool:
    return process_start(entry.owner_pid) == entry.owner_start


class Journal:
    """The journal file at ``path`` (its directory is created on first write)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> _Doc:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return _Doc()
        try:
            data = json.loads(raw)
            version = data.get("version")
            entries = [Entry(**e) for e in data["entries"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise self._unreadable(str(exc)) from exc
        if version != JOURNAL_VERSION:
            raise self._unreadable(f"version {version!r}, expected {JOURNAL_VERSION}")
        return _Doc(entries=entries)

    def _unreadable(self, why: str) -> ChaosError:
        return ChaosError(
            f"fault journal {self.path} is unreadable ({why}); it was not written by this "
            "version of chaos: inspect it, undo its faults by hand, then delete it"
        )

    def _write(self, doc: _Doc) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        payload = json.dumps({"version": doc.version, "entries": [asdict(e) for e in doc.entries]}, indent=2)
        with open(tmp, "w") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def entries(self) -> list[Entry]:
        with self._locked():
            return list(self._read().entries)

    def add(self, kind: str, undo: dict[str, Any], description: str, ttl: float | None = None) -> Entry:
        """Record an undo step; call this before making the change it undoes."""
        undo_for(kind)  # refuse early: a fault nobody can undo must never be injected
        json.dumps(undo)  # undo data must survive the round trip through the file
        pid = os.getpid()
        entry = Entry(
            id=uuid.uuid4().hex[:12],
            kind=kind,
            undo=undo,
            description=description,
            owner_pid=pid,
            owner_start=process_start(pid) or "",
            created=time.time(),
            ttl=ttl,
        )
        with self._locked():
            doc = self._read()
            doc.entries.append(entry)
            self._write(doc)
        return entry

    def remove(self, entry_id: str) -> None:
        with self._locked():
            doc = self._read()
            kept = [e for e in doc.entries if e.id != entry_id]
            if len(kept) != len(doc.entries):
                doc.entries = kept
                self._write(doc)


@dataclass(frozen=True)
class RecoveryReport:
    undone: list[Entry]
    skipped_live: list[Entry]


def recover(journal: Journal, *, include_live: bool = False) -> RecoveryReport:
    """Undo every journaled fault whose owner died, newest first; idempotent.

    Faults owned by another live process are that process's business and are skipped unless
    ``include_live`` (an operator's explicit ``--force``) or their time-to-live has passed.
    Every undo runs even if another
    fails; failures are raised together as a ``RollbackError`` chained to an ExceptionGroup,
    and the failed entries stay in the journal for the next attempt.
    """
    undone: list[Entry] = []
    skipped: list[Entry] = []
    failures: list[Exception] = []
    now = time.time()
    for entry in reversed(journal.entries()):
        foreign_live = entry.owner_pid != os.getpid() and owner_alive(entry)
        if foreign_live and not include_live and not entry.expired(now):
            skipped.append(entry)
            continue
        try:
            undo_for(entry.kind)(entry.undo)
        except Exception as exc:  # noqa: BLE001  gathered and re-raised below: no undo may skip the rest
            exc.add_note(f"while undoing {entry.kind} {entry.description!r} (entry {entry.id})")
            failures.append(exc)
            continue
        journal.remove(entry.id)
        undone.append(entry)
    if failures:
        raise RollbackError(
            f"{len(failures)} of {len(failures) + len(undone)} undo steps failed; "
            "they remain in the journal: fix the cause and run `chaos recover` again"
        ) from ExceptionGroup("undo failures", failures)
    return RecoveryReport(undone=undone, skipped_live=skipped)


def undo_steps(journal: Journal, steps: list[Entry]) -> list[Exception]:
    """Run the undo of each step, newest first, popping it from ``steps`` and removing it from
    the journal when it succeeded; every undo runs, and the failures come back with notes."""
    failures: list[Exception] = []
    while steps:
        entry = steps.pop()
        try:
            undo_for(entry.kind)(entry.undo)
        except Exception as exc:  # noqa: BLE001  gathered for the caller: every undo must run
            exc.add_note(f"while undoing {entry.description!r}")
            failures.append(exc)
            continue
        journal.remove(entry.id)
    return failures
