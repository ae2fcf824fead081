"""The report a person opens, opened in a real browser: Debian's headless Chromium renders the
Allure HTML (`chaos report`) and the one-page review over HTTP, as `allure open` serves them, and
the rendered page (not the files behind it) must show the overview, one experiment's steps with
its checks read as sentences, its timeline attachment, and the review's verdicts. Screenshots
are kept in reports/browser/ for a person to look at."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import require
from tests.lab.conftest import ROOT

EXPERIMENTS = """
from chaos import experiment


@experiment(verifies="steady state", hypothesis="a healthy function stays healthy")
def test_healthy(steady):
    probe = steady.watch("fn", lambda: 1, hz=50)
    steady.baseline(seconds=0.5)
    steady.expect(probe.availability() >= 0.99, probe.latency(90) <= 1000)


@experiment(verifies="steady state", hypothesis="a bound no system meets goes red")
def test_impossible(steady):
    probe = steady.watch("fn", lambda: 1, hz=50)
    steady.baseline(seconds=0.5)
    steady.expect(probe.availability() >= 1.01)
"""
SHOTS = ROOT / "reports" / "browser"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A run of two experiments (one passes, one fails), its Allure HTML and review, served on
    loopback."""
    here = tmp_path_factory.mktemp("browser")
    (here / "test_two.py").write_text(EXPERIMENTS)
    run = [sys.executable, "-m", "pytest", str(here / "test_two.py"), "-p", "no:cacheprovider", "-q"]
    run += ["--alluredir", str(here / "results"), "--chaos-reports", str(here / "reports")]
    ran = subprocess.run(run, cwd=here, capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 1, ran.stdout[-2000:]  # one of the two fails, as meant
    build = [sys.executable, "-m", "chaos", "report", "--results", str(here / "results")]
    build += ["--output", str(here / "html"), "--summary", str(here / "reports" / "summary.json")]
    built = subprocess.run(
        build,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    quiet = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=str(here)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", here
    finally:
        server.shutdown()
        server.server_close()


def render(url: str, shot: str) -> str:
    """The page as the browser built it (scripts run, data fetched), with its screenshot."""
    browser = shutil.which("chromium-headless-shell") or require("chromium")
    # --headless: the full chromium needs it; the headless shell takes it and is headless anyway
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    flags += ["--window-size=1280,1000"]
    subprocess.run(
        [browser, *flags, f"--screenshot={SHOTS / shot}", url], capture_output=True, timeout=120, check=True
    )
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    )
    return re.sub(r"<(script|style)\b.*?</\1>", "", dom.stdout, flags=re.S)  # what is shown, not the code


def painted(png: Path) -> bool:
    """A screenshot with something on it: not one flat colour."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))
    return bool(pixels.std() > 0.02)


def test_the_allure_report_shows_the_overview_the_steps_and_the_timeline(served):
    base, here = served
    overview = render(f"{base}/html/index.html", "overview.png")
    titles = re.findall(r'data-testid="tree-leaf-title"[^>]*>([^<]+)<', overview)
    assert sorted(titles) == ["test_healthy", "test_impossible"]
    assert painted(SHOTS / "overview.png")

    results = {
        json.loads(p.read_text())["name"]: p.stem
        for p in (here / "html" / "data" / "test-results").glob("*.json")
    }
    page = render(f"{base}/html/index.html#/{results['test_impossible']}", "experiment.png")
    for shown in (
        "baseline",
        "verify",
        "fn available 100 % of the time over the run (VIOLATED, bound ≥ 101 %)",
    ):
        assert shown in page, shown
    assert re.search(r">timeline</span>", page), "the timeline attachment is not listed"
    assert painted(SHOTS / "experiment.png")
    # the attachment the page lists is there to open: a PNG, served
    attachments = here / "html" / "data" / "attachments"
    pngs = [p for p in attachments.iterdir() if p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"]
    assert pngs and all(p.stat().st_size > 10_000 for p in pngs)


def test_the_review_shows_each_verdict_and_what_failed_first(served):
    base, _ = served
    review = render(f"{base}/reports/summary.html", "review.png")
    assert "Score" in review and "test_healthy" in review and "test_impossible" in review
    assert "fn available 100 % of the time over the run (VIOLATED, bound ≥ 101 %)" in review
    assert painted(SHOTS / "review.png")
