"""A small etcd v3 client over etcd's JSON gateway (real HTTP on kept-alive connections, no
generated stubs: probes write through it at up to 100 Hz).

It knows every member's client URL and fails over between them the way etcd's own client
does: a connection that cannot be made moves on to the next member; a request that was sent
but not answered is indeterminate (it may have been applied) and is reported as such.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any

from chaos.durability import WriteTimeout
from chaos.errors import PlatformError
from chaos.keepalive import KeepAlive, NoAnswer, NotSent

CONNECT_TIMEOUT = 0.25


def _b64(s: str | bytes) -> str:
    raw = s.encode() if isinstance(s, str) else s
    return base64.b64encode(raw).decode()


def _unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def prefix_end(prefix: str) -> bytes:
    """The key just past every key that starts with ``prefix`` (etcd's range_end)."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"


@dataclass(frozen=True)
class MemberStatus:
    url: str
    member_id: int
    leader_id: int
    raft_term: int
    raft_index: int


class EtcdClient:
    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise PlatformError("etcd client needs at least one member URL")
        self.urls = list(urls)
        self._preferred = 0
        self._lock = threading.Lock()
        self._http = KeepAlive(CONNECT_TIMEOUT)

    def close(self) -> None:
        self._http.close()

    def _post(self, url: str, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        resp = self._http.post_json(f"{url}{path}", body, timeout=timeout)
        try:
            data: dict[str, Any] = resp.json() if resp.body else {}
        except ValueError as exc:
            raise PlatformError(
                f"etcd {url}{path}: HTTP {resp.status}: not JSON: {resp.body[:200]!r}"
            ) from exc
        if resp.status != 200:
            raise PlatformError(
                f"etcd {url}{path}: HTTP {resp.status}: "
                f"{data.get('error') or data.get('message') or resp.body[:200].decode(errors='replace')}"
            )
        return data

    def _order(self) -> list[str]:
        with self._lock:
            i = self._preferred
        return self.urls[i:] + self.urls[:i]

    def _prefer(self, url: str) -> None:
        with self._lock:
            self._preferred = self.urls.index(url)

    def put(self, key: str, value: str, timeout: float) -> None:
        """Acknowledged write, or WriteTimeout when the outcome is unknown, or PlatformError
        when no member could be reached at all (certainly not applied)."""
        self._change("/v3/kv/put", {"key": _b64(key), "value": _b64(value)}, timeout)

    def cas(self, key: str, expected: str | None, new: str, timeout: float) -> bool:
        """Set ``key`` to ``new`` if it holds ``expected`` (None: absent), in one transaction;
        False when the comparison failed (nothing was written). Errors as for ``put``."""
        k = _b64(key)
        compare: dict[str, Any] = (
            {"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
            if expected is None
            else {"key": k, "target": "VALUE", "result": "EQUAL", "value": _b64(expected)}
        )
        body = {"compare": [compare], "success": [{"request_put": {"key": k, "value": _b64(new)}}]}
        return bool(self._change("/v3/kv/txn", body, timeout).get("succeeded", False))

    def _change(self, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        errors: list[str] = []
        for url in self._order():
            try:
                data = self._post(url, path, body, timeout)
            except NotSent as exc:
                errors.append(f"{url}: {exc}")
                continue
            except PlatformError as exc:
                # The request reached a member: it may have been proposed and committed.
                # Try another member next time: this one may be cut off from its quorum.
                self._prefer(self.urls[(self.urls.index(url) + 1) % len(self.urls)])
                raise WriteTimeout(f"{url}: outcome unknown: {exc}") from exc
            self._prefer(url)
            return data
        raise PlatformError("no etcd member reachable: " + "; ".join(errors))

    def get(self, key: str, timeout: float, *, serializable: bool = False) -> str | None:
        """The value of ``key`` (None: absent): linearizable (the member confirms with a
        quorum that it is current) unless ``serializable`` (whatever the member has)."""
        body: dict[str, Any] = {"key": _b64(key)}
        if serializable:
            body["serializable"] = True
        errors: list[str] = []
        for url in self._order():
            try:
                data = self._post(url, "/v3/kv/range", body, timeout)
            except NotSent as exc:
                errors.append(f"{url}: {exc}")
                continue
            except NoAnswer as exc:
                raise PlatformError(f"{url}: read failed: {exc}") from exc
            kvs = data.get("kvs") or []
            return _unb64(kvs[0].get("value", "")) if kvs else None
        raise PlatformError("no etcd member reachable: " + "; ".join(errors))

    def read_prefix(self, prefix: str, timeout: float) -> dict[str, str]:
        errors: list[str] = []
        for url in self._order():
            try:
                data = self._post(
                    url, "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}, timeout
                )
            except PlatformError as exc:
                errors.append(f"{url}: {exc}")
                continue
            return {_unb64(kv["key"]): _unb64(kv.get("value", "")) for kv in data.get("kvs", [])}
        raise PlatformError("could not read back from any etcd member: " + "; ".join(errors))

    def status(self, url: str, timeout: float = 1.0) -> MemberStatus:
        data = self._post(url, "/v3/maintenance/status", {}, timeout)
        return MemberStatus(
            url=url,
            member_id=int(data["header"]["member_id"]),
            leader_id=int(data.get("leader", 0)),
            raft_term=int(data.get("raftTerm", data["header"].get("raft_term", 0))),
            raft_index=int(data.get("raftIndex", 0)),
        )

    def healthy(self, url: str, timeout: float = 1.0) -> bool:
        try:
            resp = self._http.request("GET", f"{url}/health", timeout=timeout)
            return resp.status == 200 and resp.json().get("health") == "true"
        except (PlatformError, ValueError):
            return False


class EtcdRegisters:
    """Registers on the masters (``RegisterStore``): through one member, or any (failover)."""

    def __init__(self, urls: list[str], member: str | None, *, serializable: bool = False) -> None:
        self.member = member
        self.serializable = serializable
        self._client = EtcdClient(urls)

    def read(self, key: str, timeout: float) -> str | None:
        return self._client.get(key, timeout, serializable=self.serializable)

    def write(self, key: str, value: str, timeout: float) -> None:
        self._client.put(key, value, timeout)

    def cas(self, key: str, expected: str | None, new: str, timeout: float) -> bool:
        return self._client.cas(key, expected, new, timeout)
