"""The lab autoscaler against a real HAProxy on loopback (its runtime API, real traffic)."""

import contextlib
import subprocess
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import httpx
import pytest

from chaos import ConfigError
from chaos.lab.autoscaler import Scaler, SetupError, stats
from chaos.lab.profiles import Profile
from chaos.ports import free_port
from chaos.wait import wait_until
from tests.conftest import require


class Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def serve(port=0):
    backend = ThreadingHTTPServer(("127.0.0.1", port), Ok)
    Thread(target=backend.serve_forever, daemon=True).start()
    return backend


@pytest.fixture
def router(tmp_path):
    backend = serve()
    with haproxy(tmp_path, [backend.server_port] * 4, in_rotation=1) as running:
        yield running
    backend.shutdown()


@contextlib.contextmanager
def haproxy(tmp_path, ports, in_rotation):
    """A real HAProxy on loopback: servers s1.. at ``ports``, the first ``in_rotation`` enabled."""
    port, sock = free_port(), tmp_path / "admin.sock"
    servers = "\n".join(
        f"    server s{i} 127.0.0.1:{p} check" + (" disabled" if i > in_rotation else "")
        for i, p in enumerate(ports, start=1)
    )
    (tmp_path / "h.cfg").write_text(
        f"global\n    stats socket {sock} mode 600 level admin\n"
        "defaults\n    mode http\n    timeout connect 1s\n"
        f"    timeout client 5s\n    timeout server 5s\n    default-server inter 200ms fall 2 rise 2\n"
        f"frontend f\n    bind 127.0.0.1:{port}\n    default_backend gateways\n"
        f"backend gateways\n    option httpchk GET /\n{servers}\n"
    )
    proc = subprocess.Popen([require("haproxy"), "-db", "-f", str(tmp_path / "h.cfg")])
    try:
        wait_until(sock.exists, timeout=10, interval=0.05, what="haproxy")
        yield f"http://127.0.0.1:{port}", str(sock)
    finally:
        proc.kill()
        proc.wait()


def in_rotation(sock):
    st = stats(sock)
    return sorted(n for n, r in st.items() if n.startswith("s") and "MAINT" not in r["status"])


def test_scales_out_on_load_at_once_and_in_after_the_window(router, tmp_path):
    url, sock = router
    scaler = Scaler(
        sock,
        ["s1", "s2", "s3", "s4"],
        1,
        4,
        target_rps=20,
        state_path=tmp_path / "state.json",
        scale_in_after=0.5,
        window=0.1,  # the rate of the last step alone
    )
    scaler.step()
    assert in_rotation(sock) == ["s1"]
    with httpx.Client() as c:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            c.get(url)
    scaler.step()  # well over 20 req/s: out at once, to the cap
    assert in_rotation(sock) == ["s1", "s2", "s3", "s4"]
    time.sleep(0.3)
    scaler.step()  # idle, but not for long enough yet
    assert len(in_rotation(sock)) == 4
    time.sleep(0.6)
    scaler.step()
    assert in_rotation(sock) == ["s1"]
    events = scaler.events
    assert [(e["from"], e["to"]) for e in events] == [(1, 4), (4, 1)]
    assert '"desired": 1' in (tmp_path / "state.json").read_text()


def test_a_burst_shorter_than_the_window_is_not_load(router, tmp_path):
    url, sock = router
    scaler = Scaler(sock, ["s1", "s2"], 1, 2, target_rps=20, state_path=tmp_path / "s.json", window=2.0)
    scaler.step()
    time.sleep(1.5)
    with httpx.Client() as c:
        for _ in range(20):  # a burst: ~13 req/s since the last reading, under the target
            c.get(url)
    scaler.step()
    assert in_rotation(sock) == ["s1"]
    assert scaler.events == []


def test_a_backend_or_server_the_balancer_lacks_is_a_set_up_mistake_not_a_load_of_zero(router, tmp_path):
    _, sock = router
    with pytest.raises(SetupError, match=r"backend 'web' on .* does not exist"):
        Scaler(sock, ["s1"], 1, 1, 10.0, tmp_path / "s.json", backend="web").step()
    with pytest.raises(SetupError, match="backend 'gateways' on .* has no server s9, s10"):
        Scaler(sock, ["s1", "s9", "s10"], 1, 3, 10.0, tmp_path / "s.json").step()
    assert not (tmp_path / "s.json").exists()  # nothing decided on a set-up it does not have


def test_a_lost_replica_is_replaced_at_once_and_the_surplus_trimmed_when_it_returns(tmp_path):
    """Like a ReplicaSet: a replica its router marks down is replaced from the slots out of
    rotation without waiting for load (even with a scale-out delay); when it serves again, the
    surplus goes after the scale-in window, a serving replica never swapped for a down one."""
    live, lost_port = serve(), free_port()
    with haproxy(tmp_path, [lost_port, live.server_port, live.server_port, live.server_port], 2) as (_, sock):
        scaler = Scaler(
            sock,
            ["s1", "s2", "s3", "s4"],
            2,
            4,
            target_rps=20,
            state_path=tmp_path / "s.json",
            scale_in_after=0.5,
            scale_out_after=30.0,
        )
        wait_until(lambda: stats(sock)["s1"]["status"] == "DOWN", timeout=5, interval=0.05, what="s1 down")
        scaler.step()
        assert in_rotation(sock) == ["s1", "s2", "s3"]  # s1 stays: it serves again when it is back
        assert scaler.events[-1]["replacing"] == 1
        wait_until(lambda: stats(sock)["s3"]["status"] == "UP", timeout=5, interval=0.05, what="s3 up")
        scaler.step()  # two serve, as wanted: nothing more
        assert in_rotation(sock) == ["s1", "s2", "s3"] and len(scaler.events) == 1
        back = serve(lost_port)  # the lost host returns
        wait_until(lambda: stats(sock)["s1"]["status"] == "UP", timeout=5, interval=0.05, what="s1 up")
        scaler.step()
        time.sleep(0.6)
        scaler.step()
        assert in_rotation(sock) == ["s1", "s2"]
        back.shutdown()
    live.shutdown()


def test_a_rate_within_the_tolerance_keeps_the_count_so_a_boundary_does_not_flap(tmp_path):
    """As the HPA's 10 % tolerance: 30-33 requests/s keep 2 replicas of 15/s (without it 30.4
    meant 3, and 29.9 back to 2), above that 3, and 3 stay down to 30 (ratio 0.67: out of the
    band, the ceiling decides)."""
    scaler = Scaler("unused", ["s1", "s2", "s3", "s4", "s5"], 2, 5, 15.0, tmp_path / "s.json")
    assert [scaler.wanted(r, 2) for r in (29.9, 30.4, 32.9, 33.1, 50)] == [2, 2, 2, 3, 4]
    assert [scaler.wanted(r, 3) for r in (45.0, 40.6, 30.4, 29.9, 5)] == [3, 3, 3, 2, 2]
    assert scaler.wanted(90, 5) == 5 and scaler.wanted(0, 1) == 2  # the capacity, the minimum


def test_a_replacement_avoids_the_host_its_lost_replica_ran_on(tmp_path):
    """A lost host's free slot is as dead as its replicas: the replacement goes to a slot on
    another host first, as a scheduler avoids a node that is not ready (before, the first free
    slot was taken, here one on the lost host, and the replacement waited another round)."""
    live, lost, lost_too = serve(), free_port(), free_port()
    ports = [lost, live.server_port, lost_too, live.server_port]
    with haproxy(tmp_path, ports, 2) as (_, sock):
        scaler = Scaler(
            sock,
            ["s1", "s2", "s3", "s4"],
            2,
            4,
            target_rps=20,
            state_path=tmp_path / "s.json",
            hosts={"s1": "a", "s3": "a", "s2": "b", "s4": "b"},
        )
        wait_until(lambda: stats(sock)["s1"]["status"] == "DOWN", timeout=5, interval=0.05, what="s1 down")
        scaler.step()
        assert in_rotation(sock) == ["s1", "s2", "s4"]
        assert scaler.events[-1]["replacing"] == 1
    live.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reserve": 0.95}, "reserve=0.95"),
        ({"reserve": -0.1}, "reserve=-0.1"),
        ({"min_replicas": 6, "gateway_slots": 5}, "min_replicas=6 with 5 slots"),
        ({"target_rps": 0}, "target_rps=0"),
    ],
)
def test_bad_capacity_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Profile("x", masters=1, clusters=("east",), breaker=True, description="", **kwargs)
