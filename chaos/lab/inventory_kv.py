"""The workload's inventory as a store the durability probe writes to: each write is a
reservation (order = key, sku = value), read back from the inventory's ledger."""

from __future__ import annotations

import httpx

from chaos.durability import WriteTimeout
from chaos.errors import PlatformError


class WriteRefused(PlatformError):
    """The store answered and said no: the write certainly did not happen."""


class InventoryKV:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client()

    def put(self, key: str, value: str, timeout: float) -> None:
        try:
            r = self._http.post(f"{self.url}/reserve", params={"sku": value, "order": key}, timeout=timeout)
        except httpx.TimeoutException as exc:
            # the request may have reached the inventory and been applied
            raise WriteTimeout(f"{self.url}: no answer within {timeout:g} s") from exc
        if r.status_code != 200:
            try:
                why = r.json().get("error", r.text)
            except ValueError:
                why = r.text[:200]
            raise WriteRefused(f"{r.status_code} {why}".strip())

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        r = self._http.get(f"{self.url}/reservations", params={"prefix": prefix}, timeout=timeout)
        if r.status_code != 200:
            raise PlatformError(f"reading reservations from {self.url}: HTTP {r.status_code} {r.text[:200]}")
        found: dict[str, str] = r.json()["reservations"]
        return found


class Inventory:
    """A write target for ``steady.durability``: the inventory of one cluster."""

    def __init__(self, url: str) -> None:
        self.url = url

    def kv(self) -> InventoryKV:
        return InventoryKV(self.url)
