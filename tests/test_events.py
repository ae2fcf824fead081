"""One vocabulary of events: the game-day view handles only progress events the run emits, and
every timeline event a run records is one chaos.events names."""

import json

from chaos import FakeClock, RunContext
from chaos.events import EVENT_KINDS, PROGRESS_KINDS
from chaos.gameday import RunView
from chaos.progress import ProgressLog


def test_the_game_day_view_handles_only_progress_events_that_exist():
    handled = {name[len("_on_") :].replace("_", ".") for name in dir(RunView) if name.startswith("_on_")}
    assert handled, "RunView has no handlers"
    assert handled <= PROGRESS_KINDS, handled - PROGRESS_KINDS


def test_faults_phases_and_aborts_reach_the_progress_stream_by_their_kind(tmp_path):
    ctx = RunContext(clock=FakeClock(), journal=None)  # type: ignore[arg-type]
    log = ProgressLog(tmp_path / "progress.jsonl")
    ctx.tl.subscribe(log.timeline_event)
    ctx.tl.record("fault.start", "cut east")
    ctx.tl.record("fault.verified", "cut east")
    ctx.tl.note("abort", reason="guard")
    ctx.tl.note("repair", what="restarted m1")  # a note the live view does not show
    ctx.tl.record("phase.start", "hold")
    lines = [json.loads(x) for x in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines] == ["fault.start", "fault.verified", "abort", "phase.start"]
    assert {e.kind for e in ctx.tl.events} <= EVENT_KINDS
