"""The timeline as a picture: probe latencies and failures, faults shaded."""

from __future__ import annotations

import csv
import io
from typing import Any

from chaos.probes import Sample, Series
from chaos.timeline import Span, Timeline
from chaos.wording import SYMBOL


def timeline_png(timeline: Timeline, title: str = "") -> bytes:
    import matplotlib.pyplot as plt

    fig = timeline_figure(timeline, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def timeline_figure(timeline: Timeline, title: str = "") -> Any:
    """The chart as a matplotlib figure (the caller closes it): one panel per probe, faults
    shaded and labelled above the top panel, each check's bound drawn on the series it bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = timeline.series
    checks = [e.data["finding"] for e in timeline.events if e.kind == "check" and "finding" in e.data]
    rows = max(1, len(series))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows), sharex=True, squeeze=False)
    faults = timeline.spans("fault")
    end = timeline.now()
    panels: list[Series | None] = list(series) or [None]
    names = [s.name for s in series]
    for ax, s in zip(axes[:, 0], panels, strict=False):
        for f in faults:
            _shade_fault(ax, f, end)
        for p in timeline.spans("phase"):
            if p.name == "baseline":
                ax.axvspan(p.start, p.end if p.end is not None else end, color="tab:green", alpha=0.07)
        if s is None:
            ax.text(0.5, 0.5, "no probes", ha="center", transform=ax.transAxes)
            continue
        samples = s.samples()
        mine = [c for c in checks if _series_of(str(c.get("name", "")), names) == s.name]
        if samples and all(hasattr(x.value, "rps") for x in samples):
            _load_panel(ax, s.name, samples)
            _draw_bounds(ax, mine, end, levels="latency")
            continue
        good = [x for x in samples if x.ok]
        if good and all(isinstance(x.value, (int, float)) and not isinstance(x.value, bool) for x in good):
            # a probe that reads a number (replicas, breaker state, headroom): plot the number
            ax.step(
                [x.t for x in good], [float(x.value) for x in good], where="post", color="tab:green", lw=1.2
            )
            bad_t = [x.t for x in samples if not x.ok]
            if bad_t:
                ax.plot(bad_t, [0.0] * len(bad_t), "x", ms=4, color="tab:red", label=f"failed ({len(bad_t)})")
                ax.legend(loc="upper right", fontsize=7)
            ax.set_ylabel(f"{s.name}\nvalue (as read)")
            _draw_bounds(ax, mine, end, levels="value")
            continue
        ok = [(x.t, x.latency * 1000) for x in samples if x.ok]
        bad = [x.t for x in samples if not x.ok]
        if ok:
            ax.plot([t for t, _ in ok], [v for _, v in ok], ".", ms=3, color="tab:blue", label="ok (latency)")
        top = max((v for _, v in ok), default=1.0)
        if bad:
            ax.plot(bad, [top * 1.1] * len(bad), "x", ms=4, color="tab:red", label=f"failed ({len(bad)})")
        ax.set_ylabel(f"{s.name}\nlatency (ms)")
        ax.set_yscale("log" if top > 50 else "linear")
        _draw_bounds(ax, mine, end, levels="latency")
        if ok or bad:  # a series that never sampled (a dry run) has nothing to label
            ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel(
        "time since start (s) — red: fault in force; hatched: being injected or reverted; "
        "green: baseline; dashed: a check's bound"
    )
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    rows = _label_faults(fig, axes[0, 0], faults)
    # room above the top panel for the label rows (and the title), in pixels of this figure
    needed = (LABEL_ROW_PT * rows + (14 if title else 0) + 6) * DPI / 72
    top = axes[0, 0].get_position().y1
    fig.subplots_adjust(top=min(top, 1 - needed / (fig.get_figheight() * DPI)))
    return fig


DPI = 90
LABEL_ROW_PT = 10  # one row of fault labels, in points
MAX_LABEL_ROWS = 8


def _label_faults(fig: Any, ax: Any, faults: list[Span]) -> int:
    """Each fault's name above the top panel, at its start: a label that would overlap one
    already placed goes a row up (measured with the renderer, not guessed from the text's
    length). Returns how many rows were used."""
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    rows = 0
    for f in faults:
        row = 0
        while True:
            text = ax.annotate(
                f.name,
                (f.start, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3 + LABEL_ROW_PT * row),
                textcoords="offset points",
                fontsize=7,
                color="tab:red",
                annotation_clip=False,
            )
            box = text.get_window_extent(renderer)
            if row == MAX_LABEL_ROWS - 1 or not any(box.overlaps(other) for other in placed):
                break  # (a run of more faults at once than rows: the last row takes the rest)
            text.remove()
            row += 1
        placed.append(box)
        rows = max(rows, row + 1)
    return rows


def _series_of(check_name: str, series: list[str]) -> str | None:
    """The probe a check is about: the longest series name its name starts with."""
    matches = [s for s in series if check_name.startswith(s + " ")]
    return max(matches, key=len) if matches else None


def _draw_bounds(ax: Any, checks: list[dict[str, Any]], now: float, levels: str) -> None:
    """Each check's bound on its series: a time bound ("recovers within 5 s") as a vertical line
    where the time runs out; a latency (ms) or value bound as a level over the check's window.
    Green when the check held, red when it was violated."""
    for c in checks:
        bound, unit = c.get("bound"), str(c.get("unit") or "").strip()
        if not isinstance(bound, (int, float)):
            continue
        span = c.get("span") or [None, None]
        start, end = span[0], span[1]
        color = "tab:green" if c.get("passed") else "tab:red"
        name = str(c.get("name", ""))
        symbol = SYMBOL.get(str(c.get("op")), "")
        if unit == "s" and c.get("window") in ("during", "recovery") and start is not None:
            ax.axvline(start + bound, color=color, ls="--", lw=1, label=f"bound: {symbol} {bound:g} s")
            ax.annotate(
                f"{symbol} {bound:g} s",
                (start + bound, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=6,
                color=color,
                rotation=90,
                va="bottom",
            )
        elif (levels == "latency" and unit == "ms" and "latency" in name) or (
            levels == "value" and unit not in ("s", "ms") and name.endswith((" max", " min"))
        ):
            lo = 0.0 if start is None else start
            hi = now if end is None else end
            ax.hlines(bound, lo, hi, colors=color, linestyles="--", lw=1)
            ax.annotate(
                f"{symbol} {bound:g}{' ' + unit if unit else ''}",
                (hi, bound),
                fontsize=6,
                color=color,
                ha="right",
                va="bottom",
            )
            # room above the level for its label, inside the panel
            low, high = ax.get_ylim()
            ax.set_ylim(low, max(high, bound * (1.6 if ax.get_yscale() == "log" else 1.12)))


def _shade_fault(ax: Any, f: Span, now: float) -> None:
    """The injection (until verified) and the revert are drawn apart from the time the fault
    was in force: neither belongs to the "during" window."""
    verified = f.verified if f.verified is not None else (f.end if f.end is not None else now)
    reverting = f.reverting if f.reverting is not None else (f.end if f.end is not None else now)
    end = f.end if f.end is not None else now
    ax.axvspan(f.start, verified, facecolor="none", edgecolor="tab:red", hatch="//", alpha=0.4, lw=0)
    if reverting > verified:
        ax.axvspan(verified, reverting, color="tab:red", alpha=0.15)
    if end > reverting:
        ax.axvspan(reverting, end, facecolor="none", edgecolor="tab:red", hatch="\\\\", alpha=0.4, lw=0)


def _load_panel(ax: Any, name: str, samples: list[Sample]) -> None:
    """Locust's per-second stats: p99 on the left axis, requests/s (and failures/s) on the right."""
    t = [x.t for x in samples]
    p99 = [x.value.p99_ms or 0.0 for x in samples]
    ax.plot(t, p99, "-", color="tab:purple", lw=1.2, label="p99 ms")
    ax.set_ylabel(f"{name}\np99 ms")
    ax.legend(loc="upper left", fontsize=7)
    rps_ax = ax.twinx()
    rps_ax.plot(t, [x.value.rps for x in samples], "-", color="tab:gray", lw=1, label="requests/s")
    fails = [x.value.fail_rps for x in samples]
    if any(fails):
        rps_ax.plot(t, fails, "-", color="tab:red", lw=1, label="failures/s")
    rps_ax.set_ylabel("per second")
    rps_ax.legend(loc="upper right", fontsize=7)


def samples_csv(timeline: Timeline) -> str:
    """Every probe sample as a CSV row, with the number a watch read (``value``): a verdict
    such as "replicas replaced: never" is only reviewable with the counts it was judged on."""
    out = io.StringIO()
    rows = csv.writer(out, lineterminator="\n")
    rows.writerow(["series", "t", "ok", "latency_ms", "value", "error"])
    for s in timeline.series:
        for x in s.samples():
            rows.writerow(
                [s.name, f"{x.t:.4f}", int(x.ok), f"{x.latency * 1000:.3f}", x.reading(), x.error or ""]
            )
    return out.getvalue()
