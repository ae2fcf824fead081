"""Lab tests: real etcd, namespaces and loop mounts. They need root and take the lab up and
down as they go, so they run one at a time and leave the lab down at the end."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos import Journal, RunContext
from chaos.lab import Lab, LabPlatform
from chaos.lab import procs as lab_procs

ROOT = Path(__file__).resolve().parents[2]
CHAOS = [sys.executable, "-m", "chaos"]


def chaos_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHAOS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def ensure_lab(profile: str) -> Lab:
    lab = Lab()
    st = lab.state()
    if st is not None and (st.profile != profile or st.topology):
        lab.down()
    lab.up(profile)
    return lab


@pytest.fixture
def resilient_lab() -> Iterator[Lab]:
    yield ensure_lab("resilient")


@pytest.fixture
def plat(resilient_lab: Lab, tmp_path: Path) -> LabPlatform:
    """The resilient lab, healthy, behind a platform with a journal of the test's own."""
    ctx = RunContext(journal=Journal(tmp_path / "journal.json"), rng=random.Random(0), fault_ttl=120)
    p = LabPlatform(resilient_lab, ctx)
    p.wait_healthy()
    return p


@pytest.fixture
def fragile_lab() -> Iterator[Lab]:
    lab = ensure_lab("fragile")
    yield lab
    lab.down()  # the next test expects the default profile


@pytest.fixture(scope="session", autouse=True)
def lab_down_at_the_end() -> Iterator[None]:
    yield
    if os.geteuid() == 0:
        Lab().down()


def machine_snapshot() -> dict[str, object]:
    """Everything the lab could leave behind, as seen from the root namespace."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    procs = set()
    started = set(lab_procs.with_role())  # every process a lab starts carries its role
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                exe = os.readlink(p / "exe")
            except OSError:
                continue
            try:
                cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            role = int(p.name) in started
            ours = os.path.basename(exe) in ("etcd", "haproxy", "prometheus", "nginx")
            # not the dead man's switches: they end on their own once their fault is reverted
            lab_python = ("chaos.lab.workload", "chaos.lab.faultfs", "-m locust")
            if role or ours or any(marker in cmdline for marker in lab_python):
                procs.add((p.name, exe))
    return {
        "netns": sorted(line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()),
        "links": sorted(line.split(":")[1].strip() for line in run("ip", "-o", "link").splitlines()),
        "mounts": sorted(Path("/proc/self/mounts").read_text().splitlines()),
        "loops": sorted(run("losetup", "--noheadings", "--list", "--output", "NAME,BACK-FILE").splitlines()),
        "iptables": run("iptables-save").count("\n-A "),
        "processes": sorted(procs),
    }


def start_a_run(tmp_path: Path, test_source: str, *extra: str) -> subprocess.Popen[bytes]:
    """Run ``test_source`` (formatted with ``{ready}``, a file it writes once its fault is in
    force) under pytest in its own session, and return once that file exists."""
    import textwrap

    from chaos.wait import wait_until

    ready = tmp_path / "ready"
    test_file = tmp_path / "test_killed.py"
    test_file.write_text(textwrap.dedent(test_source.format(ready=str(ready))))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-p",
            "no:cacheprovider",
            "-q",
            "--chaos-reports",
            str(tmp_path),
            *extra,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            ready.exists,
            timeout=60,
            interval=0.1,
            what="the run to put its fault in force",
            abort=lambda: None if proc.poll() is None else f"run exited with {proc.returncode}",
        )
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc


def kill_a_run_when_ready(tmp_path: Path, test_source: str, *extra: str) -> int:
    """Start ``test_source`` (see ``start_a_run``), SIGKILL the whole run once its fault is
    in force, and return its pid."""
    proc = start_a_run(tmp_path, test_source, *extra)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.pid
