"""The sample workload (system under test), run for real on loopback against a real etcd."""

import socket

import httpx
import pytest

from chaos.lab.etcd_http import EtcdClient
from chaos.ports import free_port


def metric(url: str, name: str) -> float | None:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_an_order_is_reserved_durably_and_stored_in_etcd(workload, local_etcd):
    workload.start_inventory()
    gw = workload.start_gateway()
    resp = httpx.post(f"{gw}/orders", params={"sku": "sku-7"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["reserved"] is True and body["fallback"] is False and body["cluster"] == "east"
    stored = EtcdClient([local_etcd]).read_prefix("/orders/", 2.0)
    assert stored == {f"/orders/{body['order']}": "sku-7"}
    ledger = (workload.tmp / "inv" / "ledger.log").read_text()
    assert ledger == f"sku-7 {body['order']}\n"


def test_inventory_state_survives_a_restart(workload):
    inv = workload.start_inventory()
    for i in range(3):
        assert httpx.post(f"{inv}/reserve", params={"sku": "a", "order": str(i)}).status_code == 200
    workload.stop("inventory")
    workload.start_inventory()
    assert httpx.get(f"{inv}/stock", params={"sku": "a"}).json()["stock"] == 1_000_000 - 3


def test_breaker_opens_and_the_fallback_is_served_when_inventory_dies(workload):
    workload.start_inventory()
    gw = workload.start_gateway(breaker=True)
    workload.stop("inventory")
    answers = [httpx.post(f"{gw}/orders", timeout=5) for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 8
    assert all(r.json()["fallback"] for r in answers)
    assert metric(gw, 'workload_breaker_state{service="gateway"}') == 2.0
    assert metric(gw, 'workload_fallbacks_total{service="gateway"}') == 8.0


def test_without_a_breaker_or_fallback_inventory_failures_reach_the_caller(workload):
    workload.start_inventory()
    gw = workload.start_gateway("--no-fallback", "--inventory-timeout", "5", breaker=False)
    workload.stop("inventory")
    resp = httpx.post(f"{gw}/orders", timeout=10)
    assert resp.status_code == 502
    assert "inventory failed" in resp.json()["error"]
    assert metric(gw, 'workload_breaker_state{service="gateway"}') == 0.0


def test_an_order_that_cannot_be_stored_is_not_acknowledged(workload):
    workload.start_inventory()
    workload.etcd_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gw = workload.start_gateway()
    resp = httpx.post(f"{gw}/orders")
    assert resp.status_code == 503
    assert resp.json()["error"].startswith("order not stored: no etcd member reachable")


def test_metrics_and_keep_alive(workload):
    workload.start_inventory()
    gw = workload.start_gateway()
    host, port = gw.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        for _ in range(2):  # two requests on one connection: HTTP/1.1 keep-alive
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            data = s.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"Connection: keep-alive" in data
    text = httpx.get(f"{gw}/metrics").text
    for name in ("workload_requests_total", "workload_request_seconds_bucket", "workload_breaker_state"):
        assert name in text


@pytest.mark.parametrize("path", ["/nope", "/orders"])
def test_unknown_routes_and_methods(workload, path):
    workload.start_inventory()
    gw = workload.start_gateway()
    resp = httpx.get(f"{gw}{path}")
    assert resp.status_code == (404 if path == "/nope" else 405)


def test_timeouts_and_a_fallback_without_a_breaker_serve_but_never_open(workload):
    """The no-breaker weakness: callers are served, but every order still calls inventory."""
    workload.start_inventory()
    gw = workload.start_gateway(breaker=False)
    workload.stop("inventory")
    answers = [httpx.post(f"{gw}/orders", timeout=5) for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 5 and all(r.json()["fallback"] for r in answers)
    assert metric(gw, 'workload_breaker_state{service="gateway"}') == 0.0  # never opened


def test_gray_failures_pass_the_health_check(workload):
    workload.start_inventory()
    flaky = workload.start_gateway("--flaw", "flaky", name="flaky")
    broken = workload.start_gateway("--flaw", "no-metrics", name="broken")
    pages = [httpx.get(f"{flaky}/").status_code for _ in range(60)]
    assert 5 <= pages.count(500) <= 35 and pages.count(200) + pages.count(500) == 60  # ~30% fail
    assert httpx.get(f"{flaky}/healthz").status_code == 200
    assert httpx.post(f"{flaky}/orders").status_code == 200  # orders stay healthy
    assert httpx.get(f"{broken}/metrics").status_code == 500
    assert httpx.get(f"{broken}/healthz").status_code == 200
