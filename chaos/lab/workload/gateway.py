"""Gateway: takes orders, reserves stock at inventory through a circuit breaker (with a
fallback), and persists each order in the etcd masters before acknowledging it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pybreaker
from prometheus_client import Counter, Gauge

from chaos.durability import WriteTimeout
from chaos.errors import PlatformError
from chaos.lab.etcd_http import EtcdClient
from chaos.lab.workload.server import App, Response, json_response

BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}
# With a breaker: fail fast. pybreaker runs every call under one lock, so calls through a
# breaker are serialised: until it opens, a slow dependency queues callers (fail_max x timeout).
INVENTORY_TIMEOUT = 0.2
FAIL_MAX = 3
INVENTORY_TIMEOUT_NO_BREAKER = 5.0  # without one, callers wait out a slow dependency


class _StateGauge(pybreaker.CircuitBreakerListener):
    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.gauge.set(BREAKER_STATES.get(new_state.name, -1))


def build(*, cluster: str, replica: str, inventory_url: str, etcd_urls: list[str], breaker: bool) -> App:
    app = App("gateway")
    reg = app.metrics.registry
    state = Gauge("workload_breaker_state", "0 closed, 1 half-open, 2 open", ["service"], registry=reg)
    fallbacks = Counter(
        "workload_fallbacks_total", "Orders served by the fallback", ["service"], registry=reg
    )
    state.labels("gateway").set(0)
    cb = (
        pybreaker.CircuitBreaker(
            fail_max=FAIL_MAX, reset_timeout=3, listeners=[_StateGauge(state.labels("gateway"))]
        )
        if breaker
        else None
    )
    http = httpx.Client(timeout=INVENTORY_TIMEOUT if breaker else INVENTORY_TIMEOUT_NO_BREAKER)
    etcd = EtcdClient(etcd_urls)
    me = {"cluster": cluster, "replica": replica}

    def reserve(sku: str, order: str) -> dict[str, Any]:
        resp = http.post(f"{inventory_url}/reserve", params={"sku": sku, "order": order})
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    @app.route("GET", "/healthz")
    def healthz(_q: dict[str, str], _b: bytes) -> Response:
        return json_response(200, {"ok": True, **me})

    @app.route("GET", "/")
    def index(_q: dict[str, str], _b: bytes) -> Response:
        return json_response(200, {"service": "gateway", **me})

    @app.route("POST", "/orders")
    def order(q: dict[str, str], _b: bytes) -> Response:
        sku = q.get("sku", "sku-1")
        order_id = uuid.uuid4().hex
        reserved: dict[str, Any] | None
        try:
            reserved = cb.call(reserve, sku, order_id) if cb is not None else reserve(sku, order_id)
        except (httpx.HTTPError, pybreaker.CircuitBreakerError) as exc:
            if cb is None:
                return json_response(502, {"error": f"inventory failed: {exc}", **me})
            fallbacks.labels("gateway").inc()
            reserved = None  # fallback: take the order now, reserve stock later
        try:
            etcd.put(f"/orders/{order_id}", sku, timeout=1.0)
        except (WriteTimeout, PlatformError) as exc:
            return json_response(503, {"error": f"order not stored: {exc}", **me})
        return json_response(
            200,
            {
                "order": order_id,
                "sku": sku,
                "reserved": reserved is not None,
                "fallback": reserved is None,
                **me,
            },
        )

    return app
