"""Samplers for HTTP endpoints and PromQL queries (real HTTP through httpx).

A sampler raises on a bad sample (the probe records the reason) and returns the observed
value on a good one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from chaos.errors import ConfigError, PlatformError
from chaos.keepalive import KeepAlive
from chaos.redact import redact_url


class HTTPProbeError(Exception):
    """A request that completed with the wrong status."""


def answered(**fields: object) -> Callable[[object], bool]:
    """A ``where=`` for an HTTP probe whose answers are JSON objects: true of an answer whose
    named fields all have these values (``answered(cluster="west")``: west served it)."""
    if not fields:
        raise ConfigError("answered() needs a field to compare, e.g. answered(cluster='west')")

    def holds(body: object) -> bool:
        return isinstance(body, dict) and all(body.get(k) == v for k, v in fields.items())

    return holds


def http_sampler(
    url: str, *, method: str = "GET", timeout: float = 1.0, expect: int | tuple[int, ...] = 200
) -> Callable[[], Any]:
    """One request per sample; the sample is good when the status is ``expect`` (or one of
    them). Its value is the decoded JSON body (or the status code for non-JSON answers)."""
    shown = redact_url(url)  # errors become evidence: no password in them
    good = (expect,) if isinstance(expect, int) else tuple(expect)

    def judged(status: int, decode: Callable[[], Any]) -> Any:
        if status not in good:
            raise HTTPProbeError(f"HTTP {status} from {shown}")
        try:
            return decode()
        except ValueError:
            return status

    if _plain(url):
        # the lab's endpoints and most in-cluster ones: a third of httpx's CPU per sample
        kept = KeepAlive(connect_timeout=timeout)

        def sample_plain() -> Any:
            try:
                resp = kept.request(method, url, timeout=timeout)
            except PlatformError as exc:  # NotSent or NoAnswer: the sample's reason names which
                raise type(exc)(str(exc).replace(url, shown)) from None
            return judged(resp.status, resp.json)

        return sample_plain

    client = httpx.Client(timeout=timeout)

    def sample() -> Any:
        resp = client.request(method, url)
        return judged(resp.status_code, resp.json)

    return sample


def _plain(url: str) -> bool:
    """http:// with no credentials in it: what the kept-alive client serves (https, and
    basic auth in the URL, stay with httpx)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and bool(parts.hostname) and parts.username is None


class PrometheusUnavailable(PlatformError):
    """Prometheus did not answer; says where it was looked for."""


class PromQL:
    """Evaluates an instant query; the sample's value is the result as a float (the sum of
    the series when the query returns several)."""

    def __init__(self, base_url: str, query: str, *, timeout: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown = redact_url(self.base_url)
        self.query = query
        self.timeout = timeout
        self._client = httpx.Client(timeout=timeout)
        self._kept = KeepAlive(connect_timeout=timeout) if _plain(self.base_url) else None
        self._path = f"{self.base_url}/api/v1/query?{urlencode({'query': query})}"

    def check_reachable(self) -> None:
        try:
            resp = self._client.get(f"{self.base_url}/-/ready")
        except httpx.HTTPError as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self.shown} is unavailable ({type(exc).__name__}): PromQL probes "
                "need it; is the lab up (`chaos lab status`), or is the platform's prometheus_url right "
                "(on kube: `prometheus_url` in the --kube-topology file)?"
            ) from exc
        if resp.status_code != 200:
            raise PrometheusUnavailable(f"Prometheus at {self.shown} is not ready (HTTP {resp.status_code})")

    def _ask(self) -> tuple[Any, bytes]:
        """Prometheus's answer, decoded, and its raw text (for an error message)."""
        try:
            if self._kept is not None:  # a probe asks up to 100 times a second: kept alive
                kept = self._kept.request("GET", self._path, timeout=self.timeout)
                return kept.json(), kept.body
            resp = self._client.get(f"{self.base_url}/api/v1/query", params={"query": self.query})
            return resp.json(), resp.content
        except (httpx.HTTPError, PlatformError) as exc:
            shown = str(exc).replace(self.base_url, self.shown)
            raise PrometheusUnavailable(f"Prometheus at {self.shown} unreachable: {shown}") from None

    def __call__(self) -> float:
        body, raw = self._ask()
        if body.get("status") != "success":
            error = f"PromQL {self.query!r} failed: {body.get('error', raw[:200].decode(errors='replace'))}"
            if body.get("errorType") == "bad_data":  # the query does not parse: asking again cannot help
                raise ConfigError(error + "; fix the query")
            raise PlatformError(error)
        data = body["data"]
        if data["resultType"] == "scalar":
            return float(data["result"][1])
        series = data["result"]
        if not series:
            raise PlatformError(f"PromQL {self.query!r} returned no series (yet)")
        total = sum(float(s["value"][1]) for s in series)
        if math.isnan(total):
            raise PlatformError(f"PromQL {self.query!r} is NaN (no data in its range yet)")
        return total
