"""The package as a team installs it: the wheel and sdist carry the suite, the load tests, the
plans, the manifests and the types; installed into a fresh virtual environment, used from an
empty directory far from this checkout, `chaos init` gives a project whose experiment runs on
the lab to a passed verdict and a report, the shipped suite runs with `pytest --pyargs`, and
mypy checks the user's experiment against the installed package's types."""

import json
import os
import re
import shutil
import site
import subprocess
import sys
import tarfile
import tomllib
import zipfile

import pytest

from chaos.lab import Lab
from tests.lab.conftest import ROOT

pytestmark = pytest.mark.lab


def _run(argv, cwd, env=None, timeout=300):
    out = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert out.returncode == 0, f"{argv}: {out.stdout[-3000:]}{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(dist directory, the fresh environment's bin directory): the package built from this
    checkout and installed, without its dependencies, into a new virtual environment that
    borrows them from the development one (a path, not a site directory: this checkout's
    editable install is not seen there)."""
    base = tmp_path_factory.mktemp("package")
    dist = base / "dist"
    build = (
        # build_meta rewrites sys.argv while it builds: the directory is read first
        "import sys; from setuptools import build_meta as b; "
        "out = sys.argv[1]; b.build_wheel(out); b.build_sdist(out)"
    )
    # built from a copy: a build leaves build/ and egg-info behind, and never in the checkout
    src = base / "src"
    skip = shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "reports", "build", "*.egg-info", "__pycache__", ".*_cache"
    )
    shutil.copytree(ROOT, src, ignore=skip)
    _run([sys.executable, "-c", build, dist], src)
    env = base / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", env], base)
    [wheel] = dist.glob("*.whl")
    _run([env / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], base)
    [fresh_site] = (env / "lib").glob("python3*/site-packages")
    (fresh_site / "dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    return dist, env / "bin"


def test_the_wheel_and_sdist_carry_everything_and_check_clean(installed):
    dist, bin_dir = installed
    [wheel] = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "chaos/py.typed",
        "chaos/loadtests/workload.py",
        "chaos/loadtests/shapes/spike.py",
        "chaos/experiments/test_master_ha.py",
        "chaos/plans/smoke.yaml",
        "chaos/deploy/rbac.yaml",
        "chaos/scaffold/experiments/test_writes_survive_a_leader_loss.py.tmpl",
    ):
        assert shipped in names, shipped
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"experiments/test_master_ha.py", "loadtests/shapes/spike.py", "setup.py"} <= in_sdist
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", wheel, sdist], dist)
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    # the installed package is the wheel's, not this checkout's
    where = _run([bin_dir / "python", "-c", "import chaos.load as l; print(l.SHAPES_DIR)"], dist)
    assert where.stdout.strip().startswith(str(bin_dir.parent)), where.stdout
    version = _run([bin_dir / "chaos", "--version"], dist)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version.stdout.strip() == f"chaos {declared}"
    assert f"## {declared}" in (ROOT / "CHANGELOG.md").read_text()  # every release has its entry


def test_an_empty_project_gets_a_first_verdict_from_chaos_init(installed, tmp_path):
    _, bin_dir = installed
    project = tmp_path / "payments"
    project.mkdir()
    created = _run([bin_dir / "chaos", "init"], project)
    assert "created" in created.stdout and (project / "experiments").is_dir()
    assert (project / ".github" / "workflows" / "chaos.yml").exists()
    assert (project / "deploy" / "rbac.yaml").read_text() == (ROOT / "deploy" / "rbac.yaml").read_text()
    # the project installs as its README says (its dependencies are here already)
    pip = [bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    _run([*pip, "-e", "."], project)
    # mypy checks the user's experiment against the installed package's own types
    typed = _run([bin_dir / "python", "-m", "mypy", "--strict", "experiments", "loadtests"], project)
    assert "Success" in typed.stdout
    Lab().down()
    ran = _run(
        [
            bin_dir / "python",
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--alluredir",
            "reports/allure-results",
        ],
        project,
    )
    assert "1 passed" in ran.stdout
    [record] = json.loads((project / "reports" / "summary.json").read_text())["experiments"]
    assert record["outcome"] == "passed" and record["figures"]["writes lost (acknowledged) [all]"] == 0
    assert record["figures"]["load availability [all]"] >= 0.95  # the project's own locustfile
    # the report, with Allure 3 on PATH as a user would have it
    path = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
    _run([bin_dir / "chaos", "report"], project, env={"PATH": path})
    assert (project / "reports" / "allure-report" / "index.html").exists()
    assert (project / "reports" / "summary.md").exists()
    assert Lab().state() is None


def test_the_shipped_suite_runs_from_outside_the_checkout(installed, tmp_path):
    _, bin_dir = installed
    pytest = [bin_dir / "python", "-m", "pytest", "-p", "no:cacheprovider"]
    listed = _run([*pytest, "--pyargs", "chaos.experiments", "--collect-only", "-q"], tmp_path)
    # as many as the checkout's experiments/ holds: every one of them is shipped
    here = _run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "experiments", "--collect-only", "-q"],
        ROOT,
    )
    [count] = re.findall(r"(\d+) tests collected", here.stdout)
    assert int(count) >= 24 and f"{count} tests collected" in listed.stdout, listed.stdout[-2000:]
    assert str(ROOT) not in listed.stdout
    # and one of them runs, from the installed package, on the lab, to a verdict
    Lab().down()
    ran = _run([*pytest, "--pyargs", "chaos.experiments.test_master_ha", "-k", "follower"], tmp_path)
    assert "1 passed" in ran.stdout
    [record] = json.loads((tmp_path / "reports" / "summary.json").read_text())["experiments"]
    assert record["outcome"] == "passed" and record["verifies"] == "HA"
    assert Lab().state() is None
