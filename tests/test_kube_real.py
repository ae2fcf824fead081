"""Real-cluster tests: they run when a cluster is given, e.g. a kind cluster in CI
(docs/kube.md), and skip otherwise.

    CHAOS_KUBE_CONTEXT=kind-chaos CHAOS_KUBE_NAMESPACE=chaos .venv/bin/pytest -m kube tests

With a kube topology (``CHAOS_KUBE_TOPOLOGY=topology.yaml``, and ``CHAOS_KUBE_WEST_CONTEXT``
for a second cluster) every experiment runs against the real clusters and must pass or skip
saying why: partitions by NetworkPolicy fail loudly where the CNI does not enforce them.
"""

import os
import subprocess
import sys

import pytest

from tests.lab.conftest import ROOT

CONTEXT = os.environ.get("CHAOS_KUBE_CONTEXT")
WEST = os.environ.get("CHAOS_KUBE_WEST_CONTEXT")
TOPOLOGY = os.environ.get("CHAOS_KUBE_TOPOLOGY")
pytestmark = [
    pytest.mark.kube,
    pytest.mark.skipif(
        not CONTEXT, reason="no real cluster given: set CHAOS_KUBE_CONTEXT (see docs/kube.md)"
    ),
]


def run_on_cluster(target, tmp_path, *extra):
    argv = [sys.executable, "-m", "pytest", target, "-p", "no:cacheprovider", "-rs", "--platform", "kube"]
    argv += ["--kube-context", f"east={CONTEXT}", "--kube-control-plane"]
    argv += ["--kube-namespace", os.environ.get("CHAOS_KUBE_NAMESPACE", "chaos")]
    if WEST:
        argv += ["--kube-context", f"west={WEST}"]
    return subprocess.run(
        [*argv, "--chaos-reports", str(tmp_path), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_the_ha_experiment_holds_on_a_real_cluster(tmp_path):
    out = run_on_cluster("experiments/test_master_ha.py", tmp_path)
    assert out.returncode == 0, out.stdout[-4000:]


@pytest.mark.skipif(not TOPOLOGY, reason="no kube topology given: set CHAOS_KUBE_TOPOLOGY (docs/kube.md)")
def test_every_experiment_passes_or_skips_saying_why_on_real_clusters(tmp_path):
    out = run_on_cluster("experiments", tmp_path, "--kube-topology", str(TOPOLOGY))
    assert out.returncode == 0, out.stdout[-4000:]
    skipped = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED [")]
    assert all("not on platform kube: " in line for line in skipped)
