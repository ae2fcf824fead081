"""Live progress of a pytest run as JSON lines, for ``chaos gameday`` to show as it happens."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, cast

from chaos.events import PROGRESS_KINDS, ProgressKind
from chaos.timeline import Event

SHOWN = ("phase", "fault", "abort")


class ProgressLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, event: ProgressKind, **data: Any) -> None:
        if self.path is None:
            return
        line = json.dumps({"event": event, "time": time.time(), **data}, default=str)
        with self._lock, open(self.path, "a") as fh:
            fh.write(line + "\n")

    def timeline_event(self, event: Event) -> None:
        """Phases, faults and aborts, as the experiment's timeline records them."""
        kind = event.kind.split(".")[0]
        if kind in SHOWN or event.name.split(".")[0] in SHOWN:
            label = event.name if kind == "note" else event.kind
            if label in PROGRESS_KINDS:
                shown = cast(ProgressKind, label)
                self.emit(shown, **{**event.data, "name": event.name, "t": round(event.t, 3)})
