import threading

import pytest

from chaos import ConfigError, FakeClock, Probe, RunContext, Steady, SteadyStateViolation, Timeline
from chaos.durability import DurabilityProbe
from tests.helpers import MemoryKV


def test_a_failing_sampler_yields_failed_samples_not_a_crash():
    calls = iter([1, ValueError("boom"), 3])

    def sampler():
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    p = Probe("p", sampler, Timeline(FakeClock()))
    got = [p.sample_once() for _ in range(3)]
    assert [s.ok for s in got] == [True, False, True]
    assert got[1].error == "ValueError: boom"
    assert [s.value for s in got] == [1, None, 3]


@pytest.mark.parametrize("hz", [0, -1, 101, 1000])
def test_rate_out_of_range_is_refused(hz):
    with pytest.raises(ConfigError, match="out of range"):
        Probe("p", lambda: None, Timeline(), hz=hz)


def test_background_probe_samples_on_its_own_thread_in_time_order():
    threads = set()

    def sampler():
        threads.add(threading.current_thread().name)

    p = Probe("bg", sampler, Timeline(), hz=100).start()
    try:
        ticks = threading.Event()
        ticks.wait(0.3)
    finally:
        p.stop()
    samples = p.series.samples()
    assert not p.running
    assert len(samples) >= 5
    assert threads and all(name.startswith("probe:bg") for name in threads)
    times = [s.t for s in samples]
    assert times == sorted(times)
    n = len(p.series)
    threading.Event().wait(0.05)
    assert len(p.series) == n  # stopped means stopped


def test_a_hanging_target_does_not_slow_the_probe_down():
    """No coordinated omission: samples keep their rate while earlier ones hang."""
    release = threading.Event()
    calls = []

    def hang():
        calls.append(1)
        release.wait(5)

    p = Probe("hang", hang, Timeline(), hz=50, max_in_flight=40).start()
    threading.Event().wait(0.4)
    started_while_hanging = len(calls)
    release.set()
    p.stop()
    assert started_while_hanging >= 10  # ~20 ticks in 0.4 s, none finished: all must have started
    assert len(p.series) == len(calls)
    assert all(s.ok for s in p.series.samples())


def test_a_saturated_probe_records_failures_instead_of_skipping_ticks():
    release = threading.Event()
    p = Probe("stuck", lambda: release.wait(5), Timeline(), hz=100, max_in_flight=2).start()
    threading.Event().wait(0.2)
    release.set()
    p.stop()
    errors = [s.error for s in p.series.samples() if not s.ok]
    assert errors and all(e == "probe saturated: 2 samples still waiting" for e in errors)


def test_durability_reports_lost_acknowledged_writes_by_key():
    kv = MemoryKV()
    kv.drop = {3}
    kv.fail = {1}
    kv.timeout = {2}
    d = DurabilityProbe(kv, Timeline(FakeClock()))
    for _ in range(6):
        d.probe.sample_once()
    assert d.counts() == {"ack": 4, "fail": 1, "timeout": 1}
    lost = d.lost_keys()
    assert lost == [f"{d.prefix}00000003"]
    # a timed-out write is indeterminate: never counted as lost
    assert f"{d.prefix}00000002" not in lost
    ops = d.history()
    assert [o.outcome for o in ops] == ["ack", "fail", "timeout", "ack", "ack", "ack"]
    assert all(o.completed >= o.invoked for o in ops)


def test_lost_write_fails_the_experiment_with_the_key_named(tmp_path):
    from chaos import Journal

    kv = MemoryKV()
    kv.drop = {0}

    class Target:
        def kv(self):
            return kv

    ctx = RunContext(journal=Journal(tmp_path / "j.json"), clock=FakeClock())
    steady = Steady(ctx)
    writes = steady.durability(Target())
    writes.probe.stop()
    for _ in range(3):
        writes.probe.probe.sample_once()
    with pytest.raises(
        SteadyStateViolation, match=r"writes lost \(acknowledged\) .*1 != 0.*lost_keys=\['/chaos/"
    ):
        steady.expect(writes.lost() == 0)
