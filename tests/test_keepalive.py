"""The probes' kept-alive HTTP client, against real sockets on loopback: connections are
reused, one the server closed while idle is replaced without turning an answer into an
unknown outcome, and "never sent" stays apart from "sent, no answer" (a durability verdict
depends on it, through the etcd client's failover)."""

import socket
import threading
import time

import pytest

from chaos.durability import WriteTimeout
from chaos.errors import ConfigError, PlatformError
from chaos.http_probes import HTTPProbeError, answered, http_sampler
from chaos.keepalive import KeepAlive, NoAnswer, NotSent
from chaos.lab.etcd_http import EtcdClient
from chaos.ports import free_port

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": "1"}'


class Server:
    """Accepts connections and answers each request as ``behaviour`` says: "answer",
    "close-when-idle" (closes the connection a little after its answer, without saying so),
    or "hang" (reads, never answers)."""

    def __init__(self, behaviour: str = "answer") -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.requests = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                buf = buf[length:]
                self.requests += 1
                if self.behaviour == "hang":
                    continue
                conn.sendall(OK)
                if self.behaviour == "close-when-idle":
                    time.sleep(0.05)  # as a server's idle timeout (or its restart) does, later
                    conn.close()
                    return

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def server():
    made: list[Server] = []

    def make(behaviour: str = "answer") -> Server:
        made.append(Server(behaviour))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_requests_reuse_one_connection(server):
    srv, http = server(), KeepAlive()
    answers = [http.post_json(f"{srv.url}/v3/kv/put", {"k": i}, timeout=1.0) for i in range(5)]
    assert [a.status for a in answers] == [200] * 5
    assert answers[0].json() == {"ok": "1"}
    assert (srv.requests, srv.connections) == (5, 1)


def test_a_connection_the_server_closed_while_idle_is_replaced_not_reported_unanswered(server):
    srv, http = server("close-when-idle"), KeepAlive()
    for _ in range(3):
        assert http.request("GET", f"{srv.url}/health", timeout=1.0).status == 200
        time.sleep(0.2)
    assert (srv.requests, srv.connections) == (3, 3)


def test_a_refused_connection_is_not_sent_and_a_silent_server_is_no_answer(server):
    http = KeepAlive()
    with pytest.raises(NotSent, match="ConnectionRefusedError"):
        http.request("GET", f"http://127.0.0.1:{free_port()}/", timeout=1.0)
    srv = server("hang")
    with pytest.raises(NoAnswer, match="timed out"):
        http.request("GET", f"{srv.url}/", timeout=0.2)
    assert srv.requests == 1  # it arrived: whatever it did may have been applied
    with pytest.raises(PlatformError, match="only plain http:// URLs"):
        http.request("GET", "https://127.0.0.1/", timeout=0.2)


def test_a_write_fails_over_only_when_it_was_never_sent(server):
    """A member that refuses the connection is skipped (the write never arrived); one that
    took the request and never answered makes the write indeterminate, never "failed"."""
    good = server()
    refused = f"http://127.0.0.1:{free_port()}"
    EtcdClient([refused, good.url]).put("k", "v", 1.0)
    assert good.requests == 1
    silent = server("hang")
    with pytest.raises(WriteTimeout, match="outcome unknown"):
        EtcdClient([silent.url, good.url]).put("k", "v", 0.2)
    assert good.requests == 1


def test_the_http_probe_samples_plain_urls_on_one_connection(server):
    srv = server()
    sample = http_sampler(f"{srv.url}/healthz", timeout=0.5)
    assert [sample() for _ in range(3)] == [{"ok": "1"}] * 3
    assert srv.connections == 1
    with pytest.raises(HTTPProbeError, match=r"HTTP 200 from http://127\.0\.0\.1:\d+/healthz"):
        http_sampler(f"{srv.url}/healthz", expect=204)()
    silent = server("hang")
    with pytest.raises(NoAnswer, match="/healthz: TimeoutError"):
        http_sampler(f"{silent.url}/healthz", timeout=0.2)()


def test_answered_compares_the_named_fields_of_a_json_answer(server):
    body = http_sampler(f"{server().url}/healthz", timeout=0.5)()
    assert answered(ok="1")(body) and not answered(ok="0")(body)
    assert not answered(ok="1", cluster="west")(body)  # every field named must match
    assert not answered(ok="1")(200) and not answered(ok="1")(None)  # not a JSON object
    with pytest.raises(ConfigError, match="answered\\(\\) needs a field"):
        answered()


class Scripted:
    """Answers the n-th request with the n-th canned reply (raw bytes), closing the connection
    after a reply when told to; records every request as it arrived."""

    def __init__(self, replies: list[tuple[bytes, bool]]) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        while self.replies:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = int(
                next(
                    (
                        v
                        for k, _, v in (x.partition(b":") for x in head.split(b"\r\n"))
                        if k.lower() == b"content-length"
                    ),
                    b"0",
                )
            )
            while len(buf) < length:
                buf += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + buf[:length])
            buf = buf[length:]
            reply, close = self.replies.pop(0)
            conn.sendall(reply)
            if close:
                return

    def close(self) -> None:
        self.sock.close()


def test_every_way_an_answer_can_be_framed_is_read_whole():
    """A chunked body (with an extension and a trailer), an interim 100 before the answer, an
    HTTP/1.0 body that ends with the connection, and a server that says it closes: each is read
    whole, and only a connection that can carry another request is reused."""
    srv = Scripted(
        [
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
                False,
            ),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", False),
            (b"HTTP/1.1 204 No Content\r\n\r\n", False),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye", True),
            (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", True),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", False),
        ]
    )
    http = KeepAlive()
    try:
        got = [http.request("GET", f"{srv.url}/a", timeout=1.0)]
        got.append(http.request("PUT", f"{srv.url}/b?x=1", body=b"12345", timeout=1.0))
        got += [http.request("DELETE", f"{srv.url}/c", timeout=1.0) for _ in range(4)]
    finally:
        srv.close()
    assert [(r.status, r.body) for r in got] == [
        (200, b"hello world"),
        (201, b"ok"),
        (204, b""),
        (200, b"bye"),
        (200, b"until the end"),
        (200, b"z"),
    ]
    assert srv.connections == 3  # the first four on one; "close" and the 1.0 body each end theirs
    port = srv.url.rsplit(":", 1)[1]
    assert srv.requests[0].startswith(f"GET /a HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    assert srv.requests[1].startswith(b"PUT /b?x=1 HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 5\r\n\r\n12345" in srv.requests[1]


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_an_answer_that_is_not_http_or_is_cut_short_is_no_answer(reply):
    srv = Scripted([(reply, True)])
    try:
        with pytest.raises(NoAnswer, match=srv.url.replace(".", r"\.")):
            KeepAlive().request("POST", f"{srv.url}/put", body=b"{}", timeout=1.0)
    finally:
        srv.close()
    assert len(srv.requests) == 1  # it arrived, so its outcome is unknown, never "not sent"
