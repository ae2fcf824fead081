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


class _Prometheus:
    """Prometheus's query API as far as a PromQL probe uses it: no series for the first
    ``empty`` queries (targets not scraped yet), then ``value``; ``bad`` answers bad_data."""

    def __init__(self, *, empty: int, value: float = 0.0, bad: bool = False) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.queries = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/api/v1/query"):
                    outer.queries += 1
                    if bad:
                        body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
                    elif outer.queries <= empty:
                        body = {"status": "success", "data": {"resultType": "vector", "result": []}}
                    else:
                        series = [{"metric": {}, "value": [0, str(value)]}]
                        body = {"status": "success", "data": {"resultType": "vector", "result": series}}
                    data = json.dumps(body).encode()
                else:
                    data = b"ready"
                self.send_response(400 if bad and self.path.startswith("/api") else 200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_promql_probe_counts_from_its_first_value_not_from_before_its_series_exist():
    """A `rate` has no series until its targets were scraped twice: that emptiness is not a
    failed baseline sample (it made a healthy run red in CI)."""
    prom = _Prometheus(empty=3, value=0.0)
    steady = Steady(RunContext(clock=FakeClock()))
    try:
        breaker = steady.promql("breaker", "max(state)", prom.url, hz=20)
        threading.Event().wait(0.3)
        steady.stop()
    finally:
        prom.close()
    samples = breaker.series.samples()
    assert prom.queries > 3 and samples
    assert all(s.ok and s.value == 0.0 for s in samples)  # 0.0 is a value, not "nothing yet"
    waited = [e for e in steady.ctx.tl.events if e.name == "probe ready"]
    assert waited and waited[0].data["probe"] == "breaker"


def test_a_promql_probe_that_never_has_a_value_cannot_observe_and_says_what_to_check():
    from chaos import ObservationError

    prom = _Prometheus(empty=10**6)
    steady = Steady(RunContext(clock=FakeClock()))
    try:
        with pytest.raises(ObservationError, match=r"'breaker' had no value within 15 s .*no series.*labels"):
            steady.promql("breaker", "max(state)", prom.url)
    finally:
        prom.close()
    assert not steady._probes  # nothing started that would sample on


def test_a_query_prometheus_cannot_parse_is_refused_at_once():
    prom = _Prometheus(empty=0, bad=True)
    steady = Steady(RunContext(clock=FakeClock()))
    try:
        with pytest.raises(ConfigError, match="parse error; fix the query"):
            steady.promql("breaker", "max(", prom.url)
    finally:
        prom.close()
    assert prom.queries == 1
