import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos import ConfigError, FakeClock
from chaos.config import RunConfig, parse_duration
from chaos.wait import WaitAborted, WaitTimeout, wait_until


def test_wait_until_returns_the_first_truthy_result_without_real_sleeping():
    clock = FakeClock()
    seen = iter([None, 0, "", "yes"])
    assert wait_until(lambda: next(seen), timeout=10, what="x", interval=1, clock=clock) == "yes"
    assert clock.now() == 3


def test_wait_until_times_out_with_what_it_waited_for():
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=r"after 2 s waiting for the thing \(last: boom\)"):
        wait_until(
            lambda: (_ for _ in ()).throw(ValueError("boom")), timeout=2, what="the thing", clock=clock
        )
    assert 2 <= clock.now() <= 2.2


def test_wait_until_stops_early_when_told_it_cannot_happen():
    clock = FakeClock()
    with pytest.raises(WaitAborted, match="process died"):
        wait_until(lambda: None, timeout=60, what="x", clock=clock, abort=lambda: "process died")
    assert clock.now() < 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("5s", 5), ("2m", 120), ("1h", 3600), ("1.5", 1.5), (3, 3)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "-1s", "0", "1e3", "s5", True])
def test_malformed_durations_are_refused(text):
    with pytest.raises(ConfigError, match="duration|greater than zero"):
        parse_duration(text)


@given(st.integers(1, 10**6), st.sampled_from(["ms", "s", "m", "h"]))
def test_every_well_formed_duration_round_trips(n, unit):
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    assert parse_duration(f"{n}{unit}") == pytest.approx(n * scale)


def test_run_config_reports_every_problem_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        RunConfig.build(
            platform="moon",
            lab_profile="sturdy",
            seed=0,
            dry_run=False,
            probe_hz=500,
            fault_ttl="soon",
            reports=tmp_path,
        )
    text = str(info.value)
    for part in ("--platform 'moon'", "--lab-profile 'sturdy'", "--chaos-probe-hz 500", "--chaos-fault-ttl"):
        assert part in text
    assert len(info.value.problems) == 4
