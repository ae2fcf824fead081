"""The fault proxy on loopback: bytes arrive intact and in order, with the asked latency."""

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import chaos
from chaos.ports import free_port
from chaos.wait import wait_until


class EchoServer:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)


@pytest.fixture
def proxy():
    echo = EchoServer()
    started = []

    def start(latency=0.0, jitter=0.0, upstream=None):
        port = free_port()
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaos.lab.faultproxy",
                "--listen",
                f"127.0.0.1:{port}",
                "--upstream",
                f"127.0.0.1:{upstream or echo.port}",
                "--latency",
                str(latency),
                "--jitter",
                str(jitter),
            ]
        )
        started.append(p)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(listening, timeout=10, interval=0.05, what="the proxy")
        return port

    yield start
    for p in started:
        p.kill()
        p.wait()
    echo.sock.close()


def roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = bytearray()
        while chunk := s.recv(1 << 20):
            got += chunk
        sender.join()
    return bytes(got)


@pytest.mark.parametrize(("latency", "jitter"), [(0.0, 0.0), (0.02, 0.015)])
def test_no_byte_is_lost_reordered_or_changed(proxy, latency, jitter):
    port = proxy(latency, jitter)
    payload = os.urandom(8 * 1024 * 1024)
    got = roundtrip(port, payload)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_latency_is_added_to_each_request(proxy):
    port = proxy(0.2)
    with socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.perf_counter()
        s.sendall(b"ping")
        assert s.recv(16) == b"ping"
        took = time.perf_counter() - t0
    assert 0.2 <= took < 0.4


@pytest.mark.parametrize("latency", [0.0, 0.02])
def test_a_client_whose_upstream_refuses_sees_its_connection_closed(proxy, latency):
    """Closed or reset (the splice path never read the request, so the kernel resets), never
    left hanging."""
    port = proxy(latency, upstream=free_port())
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"ping")
        try:
            got = s.recv(16)
        except ConnectionResetError:
            got = b""
        assert got == b""


def test_bad_arguments_say_what_is_wrong_and_exit_2():
    path = Path(chaos.__file__).parent / "lab" / "faultproxy.py"
    for argv, said in (
        (["--listen", "127.0.0.1:1"], "--upstream required"),
        (["--listen=127.0.0.1:1", "--upstream", "127.0.0.1:2", "--latency", "soon"], "could not convert"),
        (["--listen", "127.0.0.1:1", "--upstream", "127.0.0.1:2", "--fast"], "unknown argument '--fast'"),
        (["--listen", "127.0.0.1:1", "--upstream"], "--upstream needs a value"),
    ):
        out = subprocess.run([sys.executable, "-I", "-S", str(path), *argv], capture_output=True, text=True)
        assert out.returncode == 2 and said in out.stderr and "Traceback" not in out.stderr, out.stderr
