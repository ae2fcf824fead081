"""The lab's dead man's switch: one small process per journaled fault that undoes it when
its time-to-live passes, even if the runner and `chaos recover` are both dead.

    python -m chaos.lab.deadman JOURNAL ENTRY_ID DEADLINE_EPOCH

It exits quietly as soon as the entry leaves the journal (the fault was reverted).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from chaos.journal import Entry, Journal, undo_for

POLL = 0.5


def spawn(journal: Journal, entry: Entry) -> None:
    if entry.ttl is None:
        return
    subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaos.lab.deadman",
            str(journal.path),
            entry.id,
            str(entry.created + entry.ttl),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the runner: that is the point
    )


def watch(journal: Journal, entry_id: str, deadline: float) -> str:
    while True:
        entry = next((e for e in journal.entries() if e.id == entry_id), None)
        if entry is None:
            return "reverted by its owner"
        if time.time() >= deadline:
            undo_for(entry.kind)(entry.undo)
            journal.remove(entry.id)
            return f"time-to-live passed: undid {entry.description}"
        time.sleep(min(POLL, max(0.0, deadline - time.time())))


def main() -> None:
    path, entry_id, deadline = sys.argv[1], sys.argv[2], float(sys.argv[3])
    print(watch(Journal(Path(path)), entry_id, deadline), flush=True)


if __name__ == "__main__":
    main()
