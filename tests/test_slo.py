import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos import ConfigError, FakeClock, RunContext, Sample, Series, Steady, SteadyStateViolation, Timeline
from chaos.slo import Watched, availability, percentile, recovery_point, window_bounds


def series_from(oks, dt=0.1, latency=0.01, name="probe"):
    s = Series(name, hz=1 / dt)
    for i, ok in enumerate(oks):
        s.append(Sample(i * dt, ok, latency))
    return s


def test_percentile_is_nearest_rank():
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([5, 1, 3, 2, 4], 100) == 5
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([], 99) is None
    with pytest.raises(ConfigError):
        percentile([1], 0)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1), st.floats(0.1, 100))
def test_percentile_is_a_member_with_enough_values_below(values, p):
    v = percentile(values, p)
    assert v in values
    assert sum(1 for x in values if x <= v) >= p / 100 * len(values)


@given(st.lists(st.booleans()))
def test_availability_is_the_share_of_good_samples(oks):
    s = [Sample(i, ok, 0.0) for i, ok in enumerate(oks)]
    a = availability(s)
    if not oks:
        assert a is None
    else:
        assert a == pytest.approx(oks.count(True) / len(oks))


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 6))
def test_recovery_point_starts_the_first_good_run_of_n(oks, n):
    samples = [Sample(float(i), ok, 0.0) for i, ok in enumerate(oks)]
    point = recovery_point(samples, 0.0, n)
    runs = [i for i in range(len(oks) - n + 1) if all(oks[i : i + n])]
    if not runs:
        assert point is None
    else:
        assert point == float(runs[0])


def test_windows_come_from_the_fault_on_the_timeline():
    clock = FakeClock()
    tl = Timeline(clock)
    with pytest.raises(ConfigError, match="needs a fault"):
        window_bounds(tl, "during")
    clock.advance(2)
    tl.record("fault.start", "f")
    clock.advance(3)
    assert window_bounds(tl, "during") == (2.0, None)
    with pytest.raises(ConfigError, match="still in force"):
        window_bounds(tl, "recovery")
    tl.record("fault.end", "f")
    assert window_bounds(tl, "baseline") == (None, 2.0)
    assert window_bounds(tl, "during") == (2.0, 5.0)
    assert window_bounds(tl, "recovery") == (5.0, None)
    with pytest.raises(ConfigError, match="unknown window 'later'"):
        window_bounds(tl, "later")


def steady_with(oks, fault=(1.0, 2.0)):
    clock = FakeClock()
    ctx = RunContext(clock=clock, journal=None)  # type: ignore[arg-type]
    tl = ctx.tl
    series = series_from(oks)
    tl.attach(series)
    clock.advance(fault[0])
    tl.record("fault.start", "f")
    clock.advance(fault[1] - fault[0])
    tl.record("fault.end", "f")
    clock.advance(len(oks) * 0.1)
    return Steady(ctx), Watched(series, tl, consecutive=3)


def test_expect_passes_and_keeps_the_findings():
    steady, w = steady_with([True] * 30)
    found = steady.expect(w.availability() >= 0.99, w.latency(99) <= 50)
    assert [f.passed for f in found] == [True, True]
    assert found[1].measured == pytest.approx(10.0)  # ms
    assert steady.findings == found


def test_violation_states_the_numbers_and_the_window():
    oks = [True] * 10 + [False] * 8 + [True] * 12
    steady, w = steady_with(oks)
    with pytest.raises(SteadyStateViolation) as info:
        steady.expect(w.availability("during") >= 0.9, w.availability("baseline") >= 0.9)
    msg = str(info.value)
    assert "1 of 2 checks" in msg
    assert "probe availability (during, t=1.00s–2.00s): 0.2 < 0.9" in msg
    assert "ok=2; samples=10" in msg
    assert isinstance(info.value, AssertionError)
    assert [e["passed"] for e in info.value.evidence] == [False, True]


def test_time_to_recover_is_measured_from_the_fault():
    oks = [True] * 10 + [False] * 5 + [True] * 15  # fault at t=1.0, good again from t=1.5
    steady, w = steady_with(oks)
    [f] = steady.expect(w.recovery_time() <= 1.0)
    assert f.measured == pytest.approx(0.5)
    with pytest.raises(SteadyStateViolation, match="time to recover"):
        steady.expect(w.recovers(within=0.2))


def test_downtime_is_failed_samples_times_the_period():
    steady, w = steady_with([True] * 10 + [False] * 7 + [True] * 13)
    [f] = steady.expect(w.downtime() <= 1.0)
    assert f.measured == pytest.approx(0.7)
    assert f.detail == {"failed": 7, "samples": 30, "hz": 10.0}
    with pytest.raises(SteadyStateViolation, match=r"probe downtime \(all.*0.7 s > 0.5 s"):
        steady.expect(w.downtime() <= 0.5)


def test_never_recovering_is_a_violation_not_a_crash():
    steady, w = steady_with([True] * 10 + [False] * 20)
    with pytest.raises(SteadyStateViolation, match="no value"):
        steady.expect(w.recovers(within=1.0))


def test_checks_cannot_be_used_as_booleans():
    _, w = steady_with([True] * 5)
    with pytest.raises(TypeError, match="steady.expect"):
        assert w.availability() >= 0.9


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda w: w.availability() >= "high", "bound must be a number"),
        (lambda w: w.availability("later"), "unknown window"),
        (lambda w: w.latency(150), "percentile must be in"),
        (lambda w: w.recovers(within=0), "must be > 0"),
    ],
)
def test_bad_checks_are_refused_with_a_clear_error(make, match):
    _, w = steady_with([True] * 5)
    with pytest.raises(ConfigError, match=match):
        make(w)


def test_expect_refuses_non_checks():
    steady, w = steady_with([True] * 5)
    with pytest.raises(ConfigError, match="takes checks"):
        steady.expect(True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one check"):
        steady.expect()
