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
    assert threads == {"probe:bg"}
    times = [s.t for s in samples]
    assert times == sorted(times)
    n = len(p.series)
    threading.Event().wait(0.05)
    assert len(p.series) == n  # stopped means stopped


def test_slow_sampler_skips_ticks_instead_of_bursting():
    clock_tl = Timeline()
    gate = threading.Event()
    p = Probe("slow", lambda: gate.wait(0.05), clock_tl, hz=100).start()
    threading.Event().wait(0.3)
    p.stop()
    gaps = [b.t - a.t for a, b in zip(p.series.samples(), p.series.samples()[1:], strict=False)]
    assert gaps and min(gaps) >= 0.045  # no catch-up burst after a slow sample


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
        SteadyStateViolation, match=r"acknowledged writes lost .*1 != 0.*lost_keys=\['/chaos/"
    ):
        steady.expect(writes.lost() == 0)
