"""The Platform Protocol is the contract mypy checks: an experiment annotated with
``chaos.Platform`` that calls a method the Protocol lacks fails ``mypy --strict``, the same
experiment calling only what the Protocol has passes, and so does every shipped platform."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
from chaos import Platform, Steady, kill_master


def test_leader(platform: Platform, steady: Steady) -> None:
    writes = steady.durability(platform.masters)
    leader: str = platform.masters.require_leader()
    with kill_master(platform, pick=leader):
        steady.expect(writes.recovers(within=5.0))
    steady.expect(writes.lost() == 0)
    headroom: float | None = platform.capacity("east").headroom
    assert headroom is not None and headroom >= 0.2
"""


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "snippet.py").write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            str(tmp_path / "snippet.py"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_a_snippet_using_only_the_protocol_passes(tmp_path):
    done = _mypy(tmp_path, GOOD)
    assert done.returncode == 0, done.stdout


def test_a_method_the_protocol_lacks_fails_type_checking(tmp_path):
    done = _mypy(tmp_path, GOOD.replace("platform.masters.require_leader()", "platform.masters.elect_now()"))
    assert done.returncode == 1
    assert '"Masters" has no attribute "elect_now"' in done.stdout


def test_a_capacity_figure_has_one_type_on_every_platform(tmp_path):
    done = _mypy(tmp_path, GOOD.replace('("east").headroom\n', '("east").headroom.upper()\n'))
    assert done.returncode == 1
    assert 'Item "float" of "float | None" has no attribute "upper"' in done.stdout


def test_the_shipped_platforms_and_experiments_satisfy_the_protocol():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "chaos/lab/platform.py",
            "chaos/kube/platform.py",
            "chaos/testing/memory.py",
            "experiments",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout
