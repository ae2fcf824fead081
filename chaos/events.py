"""The names of what happens in a run, in one place: timeline events (what an experiment did,
in order) and progress events (what ``chaos gameday`` shows live). The report, the progress
stream and the game-day view all read these names; mypy holds every writer to them."""

from __future__ import annotations

from typing import Literal, get_args

# "fault.start": injection begins; "fault.verified": its effect was observed (the "during"
# window opens); "fault.revert": the revert begins (recovery is timed from here);
# "fault.end": reverted. Phases are named stretches of an experiment; notes are free remarks
# (a repair, a warning, an abort); a load records when it started and ended; "check": a check
# was judged (named by its sentence; data: the finding, with its label, bound and span).
FaultEventKind = Literal["fault.start", "fault.verified", "fault.revert", "fault.end"]
PhaseEventKind = Literal["phase.start", "phase.end"]
EventKind = Literal[FaultEventKind, PhaseEventKind, "note", "load.start", "load.end", "check"]

# what the progress stream carries: the run's shape ("session"), each test as it starts
# ("test") and ends ("result"), and the timeline's faults, phases and aborts as they happen
ProgressKind = Literal[
    "session", "test", "result", FaultEventKind, PhaseEventKind, "abort", "abort.reverted", "explore"
]

SpanKind = Literal["fault", "phase"]

EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))
PROGRESS_KINDS: frozenset[str] = frozenset(get_args(ProgressKind))
