"""The `chaos` command's own behaviour (no lab needed)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def chaos(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_help_lists_every_command():
    out = chaos("--help")
    assert out.returncode == 0
    for cmd in ("lab", "recover", "report"):
        assert cmd in out.stdout


def test_report_without_results_says_how_to_get_them(tmp_path):
    out = chaos("report", "--results", str(tmp_path / "none"))
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"chaos: error: no Allure results in {tmp_path / 'none'}: "
        f"run the experiments with --alluredir {tmp_path / 'none'} first"
    )


@pytest.mark.skipif(
    not (ROOT / "node_modules" / ".bin" / "allure").exists() or shutil.which("npx") is None,
    reason="the npm package allure is not installed (./run setup installs it)",
)
def test_report_renders_allure_html_from_an_experiment_run(pytester):
    pytester.makepyfile(
        """
        from chaos import experiment

        @experiment(verifies="steady state", hypothesis="h")
        def test_ok(steady):
            p = steady.watch("fn", lambda: 1, hz=50)
            steady.baseline(seconds=0.2)
        """
    )
    results = pytester.path / "results"
    pytester.runpytest_subprocess("--alluredir", str(results)).assert_outcomes(passed=1)
    out = chaos("report", "--results", str(results), "--output", str(pytester.path / "html"))
    assert out.returncode == 0, out.stderr
    index = pytester.path / "html" / "index.html"
    assert index.exists()
    assert "Allure" in index.read_text()
    data = json.loads(next((pytester.path / "html").rglob("summary.json")).read_text())
    assert data["stats"]["passed"] == 1
