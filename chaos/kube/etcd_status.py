"""Each etcd member's own state on a cluster, read where it can be read without reconfiguring
the cluster, and a clear line between "this member does not answer" and "we cannot see it".

Two paths:

- ``metrics``: the member's ``/metrics`` through the API server's pod proxy (port 2381). Only
  where etcd's metrics listen on the node's address; kubeadm and kind bind them to 127.0.0.1,
  where the proxy is refused exactly as it would be for a dead member.
- ``exec``: ``etcdctl endpoint status -w json`` run in the member's own container (``pods/exec``)
  against its local client port with the certificates its command line names. Works on a
  default cluster; a killed member's container answers "not created or running".

``auto`` (the default) takes the metrics path when every member whose container is ready
answers it, and the exec path otherwise. A 403, a timeout or an answer it cannot read raises
``ObservationError`` naming the fix; it is never counted as a member down.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chaos.errors import ObservationError
from chaos.kube.connect import Cluster, api_message

ETCD_NAMESPACE = "kube-system"
METRICS_PORT = 2381  # etcd's --listen-metrics-urls on kubeadm control planes
DOCS = "docs/kube.md#seeing-etcd"
# what the two paths ask of RBAC in kube-system (made without Cluster.call: a refusal here is
# an ObservationError, not a Forbidden fault)
RIGHTS = (("get", "pods/proxy"), ("create", "pods/exec"), ("get", "pods/exec"))
# kubeadm's layout, for a member whose command line does not say
KUBEADM_PKI = {
    "cacert": "/etc/kubernetes/pki/etcd/ca.crt",
    "cert": "/etc/kubernetes/pki/etcd/server.crt",
    "key": "/etc/kubernetes/pki/etcd/server.key",
}
# what the kubelet, the container runtime and etcdctl say when the member's process is gone or
# does not serve: positive evidence of a member down, unlike a refusal or a timeout of our own
DOWN = re.compile(
    r"not created or running|container not found|is not running|no such container|"
    r"connection refused|deadline exceeded",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class MemberStatus:
    name: str
    answering: bool
    is_leader: bool = False
    has_leader: bool = False
    raft_index: int | None = None
    why: str = ""  # what was seen when the member did not answer


def etcdctl_argv(pod: Any) -> list[str]:
    """``etcdctl endpoint status`` against the member's own client URL and certificates."""
    container = _etcd_container(pod)
    own = [*(container.command or []), *(container.args or [])]

    def flag(name: str) -> str:
        prefix = f"--{name}="
        return next((a[len(prefix) :] for a in own if a.startswith(prefix)), "")

    urls = [u for u in flag("listen-client-urls").split(",") if u]
    endpoint = next((u for u in urls if "127.0.0.1" in u or "localhost" in u), urls[0] if urls else "")
    argv = ["etcdctl", f"--endpoints={endpoint or 'https://127.0.0.1:2379'}"]
    if not endpoint.startswith("http://"):
        argv += [
            f"--cacert={flag('trusted-ca-file') or KUBEADM_PKI['cacert']}",
            f"--cert={flag('cert-file') or KUBEADM_PKI['cert']}",
            f"--key={flag('key-file') or KUBEADM_PKI['key']}",
        ]
    return [*argv, "--dial-timeout=1s", "--command-timeout=1s", "endpoint", "status", "-w", "json"]


def _etcd_container(pod: Any) -> Any:
    containers = pod.spec.containers or []
    return next((c for c in containers if c.name == "etcd"), containers[0])


def container_ready(pod: Any) -> bool:
    statuses = pod.status.container_statuses or []
    return any(s.ready for s in statuses)


def container_identity(pod: Any) -> tuple[int, str]:
    """(restart count, container ID) of the member's container: either changing is positive
    evidence that its process was killed."""
    statuses = pod.status.container_statuses or []
    s = next((s for s in statuses if s.name == "etcd"), statuses[0] if statuses else None)
    return (0, "") if s is None else (int(s.restart_count or 0), str(s.container_id or ""))


def parse_metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return out


class EtcdReader:
    def __init__(self, cluster: Cluster, path: str = "auto", timeout: float = 2.0) -> None:
        if path not in ("auto", "metrics", "exec"):
            raise ValueError(path)
        self.cluster, self.timeout = cluster, timeout
        self.path: str | None = None if path == "auto" else path

    def read_all(self, pods: list[Any]) -> list[MemberStatus]:
        if self.path is None:
            self.path = self._choose(pods)
        read = self._metrics if self.path == "metrics" else self._exec
        return [read(p) for p in pods]

    def _choose(self, pods: list[Any]) -> str:
        """Metrics where every member that is up answers them; exec otherwise (a default
        kubeadm or kind cluster, where the proxy is refused for members that are up)."""
        ready = [p for p in pods if container_ready(p)]
        try:
            if ready and all(self._metrics(p).answering for p in ready):
                return "metrics"
        except ObservationError:
            pass  # e.g. pods/proxy not granted: the exec path may be
        return "exec"

    # -- the metrics path ------------------------------------------------------------------
    def _metrics(self, pod: Any) -> MemberStatus:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        name = pod.metadata.name
        try:
            text = self.cluster.core.connect_get_namespaced_pod_proxy_with_path(
                f"{name}:{METRICS_PORT}", ETCD_NAMESPACE, "metrics", _request_timeout=self.timeout
            )
        except ApiException as exc:
            said = api_message(exc)
            if exc.status == 503 and DOWN.search(said):
                return MemberStatus(name, False, why=_short(said))
            forbidden = exc.status in (401, 403)
            raise self._cannot_see(
                name, f"HTTP {exc.status} {_short(said)}", "get pods/proxy" if forbidden else ""
            ) from exc
        except HTTPError as exc:
            raise self._cannot_see(name, f"{type(exc).__name__}: {exc}") from exc
        m = parse_metrics(str(text))
        if "etcd_server_is_leader" not in m:
            raise self._cannot_see(name, "its /metrics has no etcd_server_is_leader")
        return MemberStatus(name, True, m["etcd_server_is_leader"] == 1, m.get("etcd_server_has_leader") == 1)

    # -- the exec path ---------------------------------------------------------------------
    def _exec(self, pod: Any) -> MemberStatus:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream

        name = pod.metadata.name
        # stream() swaps its ApiClient's call_api for a websocket call while it runs and puts
        # back what it found: two threads sharing one client can leave it swapped for good,
        # sending every later request through a websocket. An ApiClient of its own, per call
        api: Any = client.ApiClient(self.cluster.api.configuration)
        try:
            ws = stream(
                client.CoreV1Api(api).connect_get_namespaced_pod_exec,
                name,
                ETCD_NAMESPACE,
                command=etcdctl_argv(pod),
                container=_etcd_container(pod).name,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except ApiException as exc:
            # the websocket client reports a refused upgrade as status 0 with the HTTP status in its text
            text = str(exc.reason or exc.body)
            status = re.search(r"Handshake status (\d+)", text)
            code = int(status.group(1)) if status else exc.status
            if code == 404 and "not found" in text:
                return MemberStatus(name, False, why=f"pod {name} not found")
            if code not in (401, 403) and DOWN.search(text):
                return MemberStatus(name, False, why=_short(text))
            forbidden = code in (401, 403)
            raise self._cannot_see(
                name, f"HTTP {code}: {_short(text)}", "create pods/exec" if forbidden else ""
            ) from exc
        finally:
            api.close()
        try:
            ws.run_forever(timeout=self.timeout)
            if ws.is_open():
                raise self._cannot_see(name, f"pods/exec gave no answer within {self.timeout:g} s")
            out, err, final = (ws.read_channel(c) for c in (1, 2, 3))
        finally:
            ws.close()
        return self._status_from(name, out, err, final)

    def _status_from(self, name: str, out: str, err: str, final: str) -> MemberStatus:
        try:
            verdict = json.loads(final) if final else {"status": "Failure", "message": "no status"}
        except ValueError:
            verdict = {"status": "Failure", "message": final}
        if verdict.get("status") != "Success":
            said = f"{verdict.get('message', '')} {err}".strip()
            if DOWN.search(said):
                return MemberStatus(name, False, why=_short(said))
            raise self._cannot_see(name, f"etcdctl failed: {_short(said)}")
        try:
            status = json.loads(out)[0]["Status"]
            me, leader = int(status["header"]["member_id"]), int(status.get("leader") or 0)
            index = int(status.get("raftIndex") or 0)
        except (ValueError, LookupError, TypeError) as exc:
            raise self._cannot_see(name, f"unreadable etcdctl output {out[:120]!r}") from exc
        return MemberStatus(name, True, leader == me, leader != 0, index)

    def _cannot_see(self, name: str, what: str, forbidden: str = "") -> ObservationError:
        fix = (
            f"grant {forbidden} in {ETCD_NAMESPACE} (deploy/rbac.yaml, Role chaos-etcd-observer)"
            if forbidden
            else "etcd's metrics listen on 127.0.0.1 on default kubeadm and kind clusters, so the "
            "framework runs etcdctl in the member's container instead"
        )
        return ObservationError(
            f"cannot observe etcd member {name} on {self.cluster.role} ({self.path or 'auto'} path): "
            f"{what}. This is not evidence that it is down: {fix}; see {DOCS}",
            lasting=bool(forbidden),
        )


def _short(text: str) -> str:
    return " ".join(text.split())[:240]
