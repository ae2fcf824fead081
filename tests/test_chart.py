"""The timeline chart a person reads in the report: fault labels that never print on top of each
other, axes with units, and each check's bound drawn on the series it bounds. Checked on the
rendered figure (the renderer's own text extents), not on the code that draws it."""

import csv
import io
import itertools

from chaos.chart import samples_csv, timeline_figure, timeline_png
from chaos.clock import FakeClock
from chaos.probes import Sample, Series
from chaos.timeline import Timeline

FAULTS = [
    "SIGKILL etcd leader m2",
    "partition m1 | m2, m3",
    "storage io_error on api",
    "degrade east-inv latency 300 ms",
]


def run_with_faults_close_together():
    clock = FakeClock()
    tl = Timeline(clock)
    writes = Series("writes")
    breaker = Series("east breaker state")
    for i in range(200):
        writes.append(Sample(i * 0.05, i < 60 or i > 90, 0.002 + (0.03 if 60 <= i <= 90 else 0)))
        breaker.append(Sample(i * 0.05, True, 0.001, 2 if 70 < i < 120 else 0))
    tl.attach(writes)
    tl.attach(breaker)
    clock.t = 3.0
    for i, name in enumerate(FAULTS):  # four faults within 0.3 s: their labels would collide
        clock.t = 3.0 + 0.1 * i
        tl.record("fault.start", name)
        tl.record("fault.verified", name)
    clock.t = 6.0
    for name in FAULTS:
        tl.record("fault.revert", name)
        tl.record("fault.end", name)
    recover = {"name": "writes time to recover", "window": "during", "span": [3.3, 6.0], "unit": " s"}
    tl.record("check", "writes recovered", finding={**recover, "op": "<=", "bound": 2.0, "passed": True})
    peak = {"name": "east breaker state max", "window": "during", "span": [3.3, 6.0], "unit": ""}
    tl.record("check", "breaker peaked", finding={**peak, "op": ">=", "bound": 2, "passed": True})
    latency = {"name": "writes p99 latency", "window": "during", "span": [3.3, 6.0], "unit": " ms"}
    tl.record("check", "p99", finding={**latency, "op": "<=", "bound": 25, "passed": False})
    clock.t = 10.0
    return tl


def test_fault_labels_never_overlap_and_every_fault_is_named():
    fig = timeline_figure(run_with_faults_close_together(), "t")
    renderer = fig.canvas.get_renderer()
    top = fig.axes[0]
    labels = [t for t in top.texts if t.get_text() in FAULTS]
    assert sorted(t.get_text() for t in labels) == sorted(FAULTS)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    # and they stay inside the figure, above the top panel
    fig_box = fig.bbox
    panel_top = top.get_window_extent(renderer).y1
    for box in boxes:
        assert box.y0 >= panel_top and box.y1 <= fig_box.y1


def test_axes_carry_units_and_bounds_are_drawn_on_the_series_they_bound():
    fig = timeline_figure(run_with_faults_close_together())
    writes, breaker = fig.axes[0], fig.axes[1]
    assert writes.get_ylabel() == "writes\nlatency (ms)"
    assert "(s)" in breaker.get_xlabel()
    # "recovers within 2 s" of the fault in force from 3.3 s: a line at 5.3 s on writes
    verticals = [line.get_xdata()[0] for line in writes.get_lines() if line.get_linestyle() == "--"]
    assert verticals == [5.3]
    assert "≤ 2 s" in [t.get_text() for t in writes.texts]
    # the p99 bound as a level (red: violated) on the latency panel, the peak's on the breaker's
    [level] = [c for c in writes.collections if c.get_linestyle()[0][1]]
    assert level.get_segments()[0][0][1] == 25
    assert "≤ 25 ms" in [t.get_text() for t in writes.texts]
    assert "≥ 2" in [t.get_text() for t in breaker.texts]
    assert not [t for t in breaker.texts if "s" in t.get_text().split()[-1:]]  # no time bound there


def test_the_png_renders():
    png = timeline_png(run_with_faults_close_together(), "four faults")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_the_samples_csv_carries_what_each_watch_read_and_no_response_body():
    """A verdict such as "replicas replaced: never" is reviewable only with the counts it was
    judged on; a response body (which may hold a credential) is not written."""
    tl = Timeline(FakeClock())
    replicas, orders = Series("east replicas, elsewhere"), Series("orders")
    replicas.append(Sample(0.25, True, 0.001, 3))
    replicas.append(Sample(0.5, True, 0.001, 1.5))
    orders.append(Sample(0.25, True, 0.01, {"token": "s3cr3t"}))
    orders.append(Sample(0.5, False, 0.02, "s3cr3t", 'HTTP 503: "busy"'))
    tl.attach(replicas)
    tl.attach(orders)
    rows = list(csv.DictReader(io.StringIO(samples_csv(tl))))
    assert [(r["series"], r["t"], r["value"]) for r in rows] == [
        ("east replicas, elsewhere", "0.2500", "3"),
        ("east replicas, elsewhere", "0.5000", "1.5"),
        ("orders", "0.2500", ""),
        ("orders", "0.5000", ""),
    ]
    assert rows[3]["ok"] == "0" and rows[3]["error"] == 'HTTP 503: "busy"'
    assert "s3cr3t" not in samples_csv(tl)
