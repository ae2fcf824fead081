"""Real-cluster tests: they run when a cluster is given, e.g. a kind cluster in CI
(docs/kube.md), and skip otherwise.

    CHAOS_KUBE_CONTEXT=kind-chaos CHAOS_KUBE_NAMESPACE=chaos .venv/bin/pytest -m kube tests
"""

import os
import subprocess
import sys

import pytest

from tests.lab.conftest import ROOT

CONTEXT = os.environ.get("CHAOS_KUBE_CONTEXT")
pytestmark = [
    pytest.mark.kube,
    pytest.mark.skipif(
        not CONTEXT, reason="no real cluster given: set CHAOS_KUBE_CONTEXT (see docs/kube.md)"
    ),
]


def test_the_ha_experiment_holds_on_a_real_cluster(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "experiments/test_master_ha.py",
            "-p",
            "no:cacheprovider",
            "--platform",
            "kube",
            "--kube-context",
            f"east={CONTEXT}",
            "--kube-control-plane",
            "--kube-namespace",
            os.environ.get("CHAOS_KUBE_NAMESPACE", "chaos"),
            "--chaos-reports",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:]
