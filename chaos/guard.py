"""Stop conditions: checks that must hold while a fault is in force, watched in the
background; the first breach (or an operator's ``chaos abort``) aborts the run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from chaos.abort import requested_since
from chaos.context import RunContext
from chaos.slo import Check

GUARD_HZ = 20.0


class GuardMonitor:
    def __init__(self, ctx: RunContext, *, hz: float = GUARD_HZ) -> None:
        self.ctx = ctx
        self.period = 1.0 / hz
        self.checks: list[Check] = []
        self.abort_dir: Path | None = None
        self._since = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, check: Check) -> None:
        self.checks.append(check)
        self.start()

    def watch_abort_file(self, state: Path) -> None:
        """Abort when ``chaos abort`` is run on this machine from now on."""
        self.abort_dir = state
        self._since = time.time()
        self.start()

    def start(self) -> None:
        if self._thread is None and not self.ctx.dry_run:
            self._thread = threading.Thread(target=self._run, name="chaos-guards", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def breach(self) -> str | None:
        """Why the run must stop now, or None."""
        if self.abort_dir is not None:
            operator = requested_since(self.abort_dir, self._since)
            if operator is not None:
                return f"operator abort ({operator})"
        if not self.ctx.abort.faults_in_force:
            return None  # guards protect the platform from a fault, not from its baseline
        for check in list(self.checks):
            finding = check.evaluate()
            # no data yet is no breach: a guard over the last seconds starts empty
            if finding.measured is not None and not finding.passed:
                return f"guard breached: {finding.line()}"
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.period) and not self.ctx.abort.is_set:
            reason = self.breach()
            if reason is not None:
                self.ctx.abort.trigger(reason, self.ctx.tl)
                return
