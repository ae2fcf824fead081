"""The timeline as a picture: probe latencies and failures, faults shaded."""

from __future__ import annotations

import io
from typing import Any

from chaos.probes import Sample, Series
from chaos.timeline import Span, Timeline


def timeline_png(timeline: Timeline, title: str = "") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = timeline.series
    rows = max(1, len(series))
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 * rows), sharex=True, squeeze=False)
    faults = timeline.spans("fault")
    end = timeline.now()
    panels: list[Series | None] = list(series) or [None]
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
        if samples and all(hasattr(x.value, "rps") for x in samples):
            _load_panel(ax, s.name, samples)
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
            ax.set_ylabel(f"{s.name}\nvalue")
            continue
        ok = [(x.t, x.latency * 1000) for x in samples if x.ok]
        bad = [x.t for x in samples if not x.ok]
        if ok:
            ax.plot([t for t, _ in ok], [v for _, v in ok], ".", ms=3, color="tab:blue", label="ok (latency)")
        top = max((v for _, v in ok), default=1.0)
        if bad:
            ax.plot(bad, [top * 1.1] * len(bad), "x", ms=4, color="tab:red", label=f"failed ({len(bad)})")
        ax.set_ylabel(f"{s.name}\nlatency ms")
        ax.set_yscale("log" if top > 50 else "linear")
        if ok or bad:  # a series that never sampled (a dry run) has nothing to label
            ax.legend(loc="upper right", fontsize=7)
    for i, f in enumerate(faults):
        # staggered, so faults close together do not print on top of each other
        axes[0, 0].annotate(
            f.name,
            (f.start, 1.02 + 0.09 * (i % 3)),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            color="tab:red",
        )
    axes[-1, 0].set_xlabel(
        "seconds since start (red: fault in force; hatched: being injected or reverted; green: baseline)"
    )
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


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
    out = io.StringIO()
    out.write("series,t,ok,latency_ms,error\n")
    for s in timeline.series:
        for x in s.samples():
            err = (x.error or "").replace('"', "'")
            out.write(f'{s.name},{x.t:.4f},{int(x.ok)},{x.latency * 1000:.3f},"{err}"\n')
    return out.getvalue()
