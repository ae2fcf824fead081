"""The experiment suite itself, run as a user runs it: it must pass on the resilient lab
and fail, saying why, on the fragile one."""

import json
import subprocess
import sys

import pytest

from chaos.lab import Lab
from tests.lab.conftest import ROOT

pytestmark = pytest.mark.lab


def run_experiments(profile, tmp_path, *extra):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "experiments/test_master_ha.py",
            "--lab-profile",
            profile,
            "-p",
            "no:cacheprovider",
            "--chaos-reports",
            str(tmp_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def test_master_ha_passes_on_resilient(tmp_path):
    Lab().down()  # the run brings up its own lab and takes down only what it brought up
    out = run_experiments("resilient", tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "2 passed" in out.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    leader = next(e for e in summary["experiments"] if "leader" in e["nodeid"])
    assert leader["figures"]["writes lost (acknowledged) [all]"] == 0
    assert leader["figures"]["leader changes [during]"] >= 1
    assert leader["figures"]["writes time to recover [during]"] <= 5.0
    assert Lab().state() is None


def test_master_ha_fails_on_fragile_with_the_finding(tmp_path):
    Lab().down()
    out = run_experiments("fragile", tmp_path)
    assert out.returncode == 1
    assert "2 failed" in out.stdout
    assert "masters failure tolerance (all, t=start–now): 0 members < 1 members" in out.stdout
    assert "healthy=1; quorum=1" in out.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [e["outcome"] for e in summary["experiments"]] == ["failed", "failed"]
    assert Lab().state() is None
