"""Gateway: takes orders, reserves stock at inventory through a circuit breaker (with a
fallback), and persists each order in the etcd masters before acknowledging it. Serves the
catalogue (stock read from inventory, retried out of a retry budget, the last known stock when
inventory does not answer).

Its defects for the lab's weaknesses are options, off by default: no breaker, no fallback, a
long timeout, a breaker that stays open; a gray failure its health check does not see
(``--flaw``); a cold start when it is taken from the reserve (``--cold``)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import httpx
import pybreaker
from prometheus_client import Counter, Gauge

from chaos.durability import WriteTimeout
from chaos.errors import PlatformError
from chaos.lab.etcd_http import EtcdClient
from chaos.lab.workload.server import App, Response, Route, json_response

BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}
# With a breaker: fail fast. pybreaker runs every call under one lock, so calls through a
# breaker are serialised: until it opens, a slow dependency queues callers (fail_max x timeout).
INVENTORY_TIMEOUT = 0.2
FAIL_MAX = 3
RESET_S = 3.0
SLOW_FLAW_S = 0.5  # a gray failure: every answer this much late, the health check still fast
FLAKY_FLAW_SHARE = 0.3  # of page requests (GET /) only: orders stay healthy
WARMUP_S = 10.0  # a replica taken from a cold reserve is slow or unready this long
COLD_EXTRA_S = 0.8
READ_TIMEOUT_S = 0.1  # a catalogue read of inventory's stock
RETRY_RATIO = 0.1  # with a budget: retries add at most this share to the first attempts
RETRY_CAP = 2.0  # retries a quiet gateway may have saved up
RETRY_BACKOFF_S = (0.02, 0.06)  # jittered, so callers that failed together do not retry together
UNBOUNDED_TRIES = 6  # the storm: every failed read tried again at once, up to five times
RECOMMEND_S = 0.4  # a recommendation's work (a model call elsewhere): non-critical, and slow
RECOMMEND_SLOTS = 2  # bulkhead: recommendations computed at once; more are shed (429)
SHARED_SLOTS = 2  # without bulkheads: requests of every kind handled at once, the rest queue
CONFIG_KEY = "/config/catalog"  # the catalogue's configuration, kept in the masters (the config centre)
CONFIG_REFRESH_S = 1.0
CONFIG_STALE_S = 3.0  # fail-closed: no configuration read this long ago, no catalogue


class ConfigCache:
    """The configuration the gateway serves with, refreshed from the config centre every
    CONFIG_REFRESH_S. ``last-known`` keeps serving the last value read while the centre is
    unreachable and picks changes up when it returns; ``fail-closed`` refuses once its value is
    CONFIG_STALE_S old; ``frozen`` stops refreshing after its first failed read once it has a
    value, for good."""

    def __init__(self, etcd: EtcdClient, mode: str) -> None:
        self.etcd, self.mode = etcd, mode
        self.value: str | None = None
        self.read_at = 0.0
        self.frozen = False
        threading.Thread(target=self._refresh, name="config", daemon=True).start()

    def _refresh(self) -> None:
        while not self.frozen:
            try:
                # serializable: a member's own copy, no quorum round, so ten gateways polling
                # add no raft traffic to the masters the other experiments measure
                self.value = self.etcd.get(CONFIG_KEY, timeout=0.3, serializable=True) or "default"
                self.read_at = time.monotonic()
            except PlatformError:
                # frozen once it has served a value: a gateway started while the masters were
                # still electing their first leader would otherwise never serve at all, and the
                # weakness would fail its experiment's precondition, not its hypothesis
                self.frozen = self.mode == "frozen" and self.value is not None
            time.sleep(CONFIG_REFRESH_S)

    def current(self) -> str | None:
        """The value to serve with; None when there is none to serve (fail-closed, stale)."""
        if self.mode == "fail-closed" and time.monotonic() - self.read_at > CONFIG_STALE_S:
            return None
        return self.value


class RetryBudget:
    """Retries paid for out of a budget (gRPC's retry throttling, Finagle's retry budgets):
    each first attempt earns ``ratio`` of a retry, up to ``cap``, and a retry spends one. However
    the dependency fails, retries add at most ``ratio`` to the load sent to it."""

    def __init__(self, ratio: float = RETRY_RATIO, cap: float = RETRY_CAP) -> None:
        self.ratio, self.cap, self.tokens = ratio, cap, cap
        self._lock = threading.Lock()

    def earn(self) -> None:
        with self._lock:
            self.tokens = min(self.cap, self.tokens + self.ratio)

    def spend(self) -> bool:
        with self._lock:
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class Warmup:
    """A replica that starts cold: from its first order on, for WARMUP_S, orders are slow
    ("slow") or refused ("fail"); after that it is warm for good."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._first: float | None = None
        self._lock = threading.Lock()

    def cold(self) -> bool:
        if not self.mode:
            return False
        now = time.monotonic()
        with self._lock:
            if self._first is None:
                self._first = now
        return now - self._first < WARMUP_S


class _StateGauge(pybreaker.CircuitBreakerListener):
    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.gauge.set(BREAKER_STATES.get(new_state.name, -1))


def build(
    *,
    cluster: str,
    replica: str,
    inventory_url: str,
    etcd_urls: list[str],
    breaker: bool,
    fallback: bool = True,
    inventory_timeout: float = INVENTORY_TIMEOUT,
    fail_max: int = FAIL_MAX,
    reset_s: float = RESET_S,
    flaw: str = "",
    cold: str = "",
    retries: str = "budget",
    pools: str = "bulkhead",
    config: str = "last-known",
) -> App:
    app = App("gateway")
    reg = app.metrics.registry
    state = Gauge("workload_breaker_state", "0 closed, 1 half-open, 2 open", ["service"], registry=reg)
    fallbacks = Counter(
        "workload_fallbacks_total", "Orders served by the fallback", ["service"], registry=reg
    )
    state.labels("gateway").set(0)
    cb = (
        pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_s, listeners=[_StateGauge(state.labels("gateway"))]
        )
        if breaker
        else None
    )
    http = httpx.Client(timeout=inventory_timeout)
    etcd = EtcdClient(etcd_urls)
    me = {"cluster": cluster, "replica": replica}
    warmup = Warmup(cold)
    dice = random.Random(replica)  # the flaky flaw fails the same requests in every run
    attempts = Counter(
        "workload_upstream_attempts_total",
        "Requests sent to a dependency, retries included",
        ["service", "path"],
        registry=reg,
    )
    budget = RetryBudget()
    jitter = random.Random(f"{replica}-retries")
    known: dict[str, Any] = {}  # sku -> the last stock inventory reported
    settings = ConfigCache(etcd, config)
    recommending = threading.BoundedSemaphore(RECOMMEND_SLOTS)
    shared = threading.BoundedSemaphore(SHARED_SLOTS)

    def pooled(fn: Route) -> Route:
        """Without bulkheads, every request kind waits for a slot of one shared pool: a flood
        of slow requests of one kind holds up the others."""
        if pools == "bulkhead":
            return fn

        def queued(q: dict[str, str], b: bytes) -> Response:
            with shared:
                return fn(q, b)

        return queued

    def reserve(sku: str, order: str) -> dict[str, Any]:
        resp = http.post(f"{inventory_url}/reserve", params={"sku": sku, "order": order})
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    @app.route("GET", "/healthz")
    def healthz(_q: dict[str, str], _b: bytes) -> Response:
        return json_response(200, {"ok": True, **me})

    def gray() -> None:
        """The slow ``--flaw``: every answer late, the health check still fast."""
        if flaw == "slow":
            time.sleep(SLOW_FLAW_S)

    @app.route("GET", "/")
    @pooled
    def index(_q: dict[str, str], _b: bytes) -> Response:
        gray()
        if flaw == "flaky" and dice.random() < FLAKY_FLAW_SHARE:  # pages fail, health checks pass
            return json_response(500, {"error": "internal error", **me})
        return json_response(200, {"service": "gateway", **me})

    if flaw == "no-metrics":
        app.route("GET", "/metrics")(lambda _q, _b: json_response(500, {"error": "metrics broken"}))

    def read_stock(sku: str) -> Any:
        """One read of inventory's stock; raises when it does not answer within READ_TIMEOUT_S
        (its own timeout, not the reservations': a stale catalogue beats a slow one)."""
        attempts.labels("gateway", "/stock").inc()
        resp = http.get(f"{inventory_url}/stock", params={"sku": sku}, timeout=READ_TIMEOUT_S)
        resp.raise_for_status()
        return resp.json()["stock"]

    @app.route("GET", "/catalog")
    @pooled
    def catalog(q: dict[str, str], _b: bytes) -> Response:
        gray()
        sku = q.get("sku", "sku-1")
        settings_now = settings.current()
        if settings_now is None:
            return json_response(503, {"error": "no configuration: the config centre is unreachable", **me})
        served = {"config": settings_now, **me}
        budget.earn()
        tries = UNBOUNDED_TRIES if retries == "unbounded" else 2
        for attempt in range(tries):
            if attempt and retries == "budget":
                if not budget.spend():
                    break
                time.sleep(jitter.uniform(*RETRY_BACKOFF_S))
            try:
                known[sku] = read_stock(sku)
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            return json_response(200, {"sku": sku, "stock": known[sku], "stale": False, **served})
        if fallback and sku in known:  # inventory did not answer: the last stock it reported, stale
            return json_response(200, {"sku": sku, "stock": known[sku], "stale": True, **served})
        return json_response(503, {"error": "inventory did not answer", **me})

    @app.route("GET", "/recommendations")
    @pooled
    def recommendations(_q: dict[str, str], _b: bytes) -> Response:
        """Non-critical: with bulkheads, computed in a few slots of its own and shed (429) when
        they are taken, so a flood of it cannot hold up orders."""
        if pools == "bulkhead":
            if not recommending.acquire(blocking=False):
                return json_response(429, {"shed": True, "error": "recommendations are busy", **me})
            try:
                time.sleep(RECOMMEND_S)
            finally:
                recommending.release()
        else:
            time.sleep(RECOMMEND_S)
        return json_response(200, {"shed": False, "items": ["sku-1", "sku-2", "sku-3"], **me})

    @app.route("POST", "/orders")
    @pooled
    def order(q: dict[str, str], _b: bytes) -> Response:
        gray()
        if warmup.cold():
            if cold == "fail":
                return json_response(503, {"error": "warming up", **me})
            time.sleep(COLD_EXTRA_S)
        sku = q.get("sku", "sku-1")
        order_id = uuid.uuid4().hex
        reserved: dict[str, Any] | None
        try:
            reserved = cb.call(reserve, sku, order_id) if cb is not None else reserve(sku, order_id)
        except (httpx.HTTPError, pybreaker.CircuitBreakerError) as exc:
            if not fallback:
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
