import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos import (
    ConfigError,
    FakeClock,
    PreconditionNotMet,
    RunContext,
    Sample,
    Series,
    Steady,
    SteadyStateViolation,
    Timeline,
)
from chaos.categories import category_of
from chaos.slo import availability, percentile, recovery_point, window_bounds
from chaos.watched import Watched


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
    clock.advance(0.5)
    # being injected is not yet "during": the effect window opens when it is verified
    with pytest.raises(ConfigError, match="opens once a fault is verified"):
        window_bounds(tl, "during")
    tl.record("fault.verified", "f")
    clock.advance(2.5)
    assert window_bounds(tl, "during") == (2.5, None)
    with pytest.raises(ConfigError, match="still in force"):
        window_bounds(tl, "recovery")
    tl.record("fault.revert", "f")
    clock.advance(0.5)
    tl.record("fault.end", "f")
    assert window_bounds(tl, "baseline") == (None, 2.0)  # up to the injection, not the verification
    assert window_bounds(tl, "during") == (2.5, 5.0)  # until the revert begins
    assert window_bounds(tl, "recovery") == (5.5, None)  # once it is done
    [span] = tl.spans("fault")
    assert (span.start, span.verified, span.reverting, span.end) == (2.0, 2.5, 5.0, 5.5)
    with pytest.raises(ConfigError, match="unknown window 'later'"):
        window_bounds(tl, "later")


def steady_with(oks, fault=(1.0, 2.0), verified_after=0.0):
    clock = FakeClock()
    ctx = RunContext(clock=clock, journal=None)  # type: ignore[arg-type]
    tl = ctx.tl
    series = series_from(oks)
    tl.attach(series)
    clock.advance(fault[0])
    tl.record("fault.start", "f")
    clock.advance(verified_after)
    tl.record("fault.verified", "f")
    clock.advance(fault[1] - fault[0] - verified_after)
    tl.record("fault.revert", "f")
    tl.record("fault.end", "f")
    clock.advance(len(oks) * 0.1)
    return Steady(ctx), Watched(series, tl, consecutive=3)


def test_expect_passes_and_keeps_the_findings():
    steady, w = steady_with([True] * 30)
    found = steady.expect(w.availability() >= 0.99, w.latency(90) <= 50)
    assert [f.passed for f in found] == [True, True]
    assert found[1].measured == pytest.approx(10.0)  # ms
    assert steady.findings == found
    assert [f.stage for f in found] == ["hypothesis", "hypothesis"]  # judged after the fault
    assert found[0].label == "probe availability [all]"


def test_required_checks_are_preconditions_and_expected_ones_the_hypothesis():
    clock = FakeClock()
    ctx = RunContext(clock=clock, journal=None)  # type: ignore[arg-type]
    series = series_from([True] * 10)
    ctx.tl.attach(series)
    clock.advance(1.0)
    steady = Steady(ctx)
    w = Watched(series, ctx.tl)
    [f] = steady.require(w.availability() >= 0.99)
    assert f.stage == "precondition" and f.as_dict()["stage"] == "precondition"
    # an experiment without a fault (steady state) judges its hypothesis without one
    [g] = steady.expect(w.availability() >= 0.99)
    assert g.stage == "hypothesis"
    with pytest.raises(PreconditionNotMet, match="hypothesis was not judged") as info:
        steady.require(w.availability() >= 1.01)
    assert info.value.evidence[0]["stage"] == "precondition"
    assert category_of("failed", info.value) == "precondition not met"  # never "steady state violated"
    with pytest.raises(SteadyStateViolation) as violated:
        steady.expect(w.availability() >= 1.01)
    assert not isinstance(violated.value, PreconditionNotMet)
    assert category_of("failed", violated.value) == "steady state violated"


def test_the_injection_interval_belongs_to_neither_baseline_nor_during():
    # fault injected at t=1.0 and verified at t=1.5; the samples between are failures (the
    # partition taking hold): they are in neither window
    oks = [True] * 10 + [False] * 5 + [True] * 15
    steady, w = steady_with(oks, fault=(1.0, 2.5), verified_after=0.5)
    found = steady.expect(w.availability("baseline") >= 1.0, w.availability("during") >= 1.0)
    assert [f.measured for f in found] == [1.0, 1.0]
    assert found[1].detail == {"ok": 10, "samples": 10}


def test_a_success_answered_after_its_window_closed_is_not_evidence_of_that_window():
    # during is [1.0, 2.0): every write fails but the last three, held up by the fault and
    # acknowledged after the revert at 2.0; the failures answered late stay charged to it
    clock = FakeClock()
    ctx = RunContext(clock=clock, journal=None)  # type: ignore[arg-type]
    series = Series("writes", hz=10)
    for i in range(30):
        t = i * 0.1
        held = 1.7 <= t < 2.0
        series.append(Sample(t, not (1.0 <= t < 1.7), 0.5 if held else 0.01))
    series.append(Sample(1.65, False, 1.0))  # a timeout answered at 2.65
    ctx.tl.attach(series)
    clock.advance(1.0)
    ctx.tl.record("fault.start", "f")
    ctx.tl.record("fault.verified", "f")
    clock.advance(1.0)
    ctx.tl.record("fault.revert", "f")
    ctx.tl.record("fault.end", "f")
    clock.advance(1.0)
    found = Steady(ctx).expect(Watched(series, ctx.tl).availability("during") <= 0.0)
    assert found[0].detail == {"ok": 0, "samples": 8}


def test_violation_states_the_numbers_and_the_window():
    oks = [True] * 10 + [False] * 8 + [True] * 12
    steady, w = steady_with(oks)
    with pytest.raises(SteadyStateViolation) as info:
        steady.expect(w.availability("during") >= 0.9, w.availability("baseline") >= 0.9)
    msg = str(info.value)
    assert "1 of 2 checks" in msg
    assert "probe availability (during, t=1.00s–2.00s): 0.2 < 0.9" in msg  # verified at once
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
        (lambda w: w.value("median"), "unknown aggregate"),
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


def test_a_percentile_over_too_few_samples_is_a_usage_error_not_a_verdict():
    # 40 samples: a "p99" would just be the slowest one, so a single stray sample would decide
    steady, w = steady_with([True] * 40)
    with pytest.raises(ConfigError, match=r"40 samples are too few for a p99 \(it needs at least 100\)"):
        steady.expect(w.latency(99) <= 100)
    steady, w = steady_with([True] * 100)
    [f] = steady.expect(w.latency(99) <= 100)
    assert f.passed
    # enough samples, but too few of them succeeded to say: no value, which fails
    steady, w = steady_with([True] * 50 + [False] * 60)
    with pytest.raises(SteadyStateViolation, match=r"p99 latency \(all.*no value"):
        steady.expect(w.latency(99) <= 100)


@pytest.mark.parametrize(("p", "need"), [(50, 2), (90, 10), (95, 20), (99, 100), (99.9, 1000), (100, 1)])
def test_samples_a_percentile_needs(p, need):
    from chaos.slo import samples_needed

    assert samples_needed(p) == need


def test_an_outstanding_sample_past_its_deadline_is_a_failure_at_its_invocation_time():
    clock = FakeClock()
    tl = Timeline(clock)
    series = Series("p", hz=10, deadline=1.0, now=tl.now)
    for i in range(5):
        series.append(Sample(i * 0.1, True, 0.01))
    series.begin(0.5)  # invoked at 0.5 and never answers
    clock.advance(1.0)
    assert [s.ok for s in series.samples()] == [True] * 5  # 0.5 s outstanding: still unknown
    assert series.pending() == [0.5]
    clock.advance(0.6)
    samples = series.samples()
    assert [s.ok for s in samples] == [True] * 5 + [False]
    assert samples[-1].t == 0.5 and "no answer within 1 s" in (samples[-1].error or "")
    assert series.pending() == []  # past its deadline it is no longer unknown: it failed
    assert Watched(series, tl).availability().value() == pytest.approx(5 / 6)


def test_recovery_does_not_settle_while_an_earlier_sample_is_outstanding():
    """A request that still hangs may yet fail: a recovery that ignores it is premature."""
    clock = FakeClock()
    ctx = RunContext(clock=clock, journal=None)  # type: ignore[arg-type]
    tl = ctx.tl
    series = Series("p", hz=10, deadline=2.0, now=tl.now)
    tl.attach(series)
    tl.record("fault.start", "f")
    tl.record("fault.verified", "f")
    hung = series.begin(0.05)  # invoked right after the fault, still hanging
    for i in range(1, 8):
        series.append(Sample(i * 0.1, True, 0.01))
    clock.advance(1.0)
    w = Watched(series, tl, consecutive=3)
    f = (w.recovers(within=5.0)).evaluate()
    assert f.passed and not f.settled and f.detail["outstanding"] == 1
    series.finish(hung, Sample(0.05, False, 1.5, None, "timeout"))
    f = (w.recovers(within=5.0)).evaluate()
    assert f.settled and f.measured == pytest.approx(0.1)


def test_a_hung_watch_sample_that_returns_late_is_a_failure():
    from chaos import Probe

    clock = FakeClock()

    def slow():
        clock.advance(5.0)  # the call takes 5 s on the probe's clock
        return 1

    p = Probe("slow", slow, Timeline(clock), deadline=1.0)
    s = p.sample_once()
    assert not s.ok and s.error == "late: answered after 5.00 s (deadline 1 s)"


def test_a_recovery_check_judged_after_the_revert_gives_the_answer_it_gave_in_force():
    """Failover to west, then failback to east: judged after the revert, "served by west"
    must still read the samples taken while the fault was in force, not the ones after."""
    clock = FakeClock()
    ctx = RunContext(clock=clock, journal=None)  # type: ignore[arg-type]
    tl = ctx.tl
    series = Series("entry", hz=10)
    tl.attach(series)
    for i in range(10):
        series.append(Sample(i * 0.1, True, 0.01, "east"))
    clock.advance(1.0)
    tl.record("fault.start", "cut east")
    tl.record("fault.verified", "cut east")
    for i in range(10, 30):  # failed over at 1.5 s
        series.append(Sample(i * 0.1, True, 0.01, "east" if i < 15 else "west"))
    w = Watched(series, tl, consecutive=3)
    failover = w.recovers(within=1.0, where=lambda v: v == "west", label="failover to west")
    clock.advance(2.0)
    steady = Steady(ctx)
    steady.wait_for(failover)  # in force: it holds
    tl.record("fault.revert", "cut east")
    tl.record("fault.end", "cut east")
    for i in range(30, 50):  # failback: every sample is east again
        series.append(Sample(i * 0.1, True, 0.01, "east"))
    clock.advance(2.0)
    [f] = steady.expect(failover)
    assert f.passed and f.measured == pytest.approx(0.5)
    assert f.span == (1.0, 3.0)  # the fault's time in force, not the samples after its revert


def test_wait_for_neither_judges_nor_raises():
    steady, w = steady_with([True] * 10 + [False] * 20)
    steady.wait_for(w.recovers(within=0.5))  # never recovers: no verdict yet
    assert steady.findings == []
    with pytest.raises(ConfigError, match=r"wait_for\(\) takes checks"):
        steady.wait_for(w.availability())  # type: ignore[arg-type]


def test_a_condition_never_met_says_what_was_read_instead():
    """ "replaced: never" alone cannot be reviewed: the finding and its sentence carry the
    numbers the watch read (each run once), and no response body."""
    from chaos.wording import sentence

    clock = FakeClock()
    ctx = RunContext(clock=clock, journal=None)  # type: ignore[arg-type]
    tl = ctx.tl
    replicas, orders = Series("replicas elsewhere", hz=10), Series("orders", hz=10)
    tl.attach(replicas)
    tl.attach(orders)
    clock.advance(1.0)
    tl.record("fault.start", "lose host")
    tl.record("fault.verified", "lose host")
    for i in range(10, 40):  # one replica left, then a replacement: two, never the three wanted
        replicas.append(Sample(i * 0.1, True, 0.001, 1 if i < 20 else 2))
        orders.append(Sample(i * 0.1, True, 0.01, {"token": "s3cr3t"}))
    clock.advance(3.0)
    tl.record("fault.revert", "lose host")
    tl.record("fault.end", "lose host")
    steady = Steady(ctx)
    with pytest.raises(SteadyStateViolation) as info:
        steady.expect(
            Watched(replicas, tl).recovers(within=1.0, where=lambda n: n >= 3, label="replaced"),
            Watched(orders, tl).recovers(within=1.0, where=lambda body: "cluster" in body, label="west"),
        )
    found = {f.name: f for f in steady.findings}
    assert found["replicas elsewhere replaced"].detail["seen"] == "1 → 2"
    assert "read 1 → 2 (VIOLATED" in sentence(found["replicas elsewhere replaced"].as_dict())
    assert "seen" not in found["orders west"].detail and "s3cr3t" not in str(info.value)


def test_readings_keep_the_first_and_last_when_a_watch_changed_often():
    from chaos.watched import readings

    assert readings([Sample(i, True, 0.0, i) for i in range(20)]) == "0 → 1 → 2 → 3 → … → 17 → 18 → 19"
    assert (
        readings([Sample(0, True, 0.0, 0.25), Sample(1, False, 0.0, 7), Sample(2, True, 0.0, True)])
        == "0.25 → 1"
    )
