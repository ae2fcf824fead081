"""A focused Kubernetes API emulator over real HTTP, for testing the kube platform with the
official client unpatched. It implements what the platform uses: pods (list with label and
field selectors, get, delete, eviction honouring PodDisruptionBudgets), deployments and their
scale subresource, a minimal ReplicaSet controller that recreates deleted pods, RBAC denials
answered 403 like a real API server, and a log of every request.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _matches_labels(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.strip().rstrip("=")) != v.strip().lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        value = str(_field(obj, k.strip().rstrip("=")) or "")
        if (value == v.strip().lstrip("=")) == neg:
            return False
    return True


class Emulator:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.pdbs: dict[tuple[str, str], dict[str, Any]] = {}
        self.denied: set[tuple[str, str, str]] = set()  # (verb, resource, namespace)
        self.requests: list[tuple[str, str]] = []
        self._rv = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- the world --------------------------------------------------------------------------------
    def _meta(self, ns: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.uuid4()),
            "labels": dict(labels),
            "resourceVersion": str(next(self._rv)),
            "creationTimestamp": "2026-01-01T00:00:00Z",
        }

    def add_pod(
        self, ns: str, name: str, labels: dict[str, str], *, node: str = "node-1", owner: str = ""
    ) -> dict[str, Any]:
        with self.lock:
            meta = self._meta(ns, name, labels)
            if owner:
                meta["ownerReferences"] = [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{owner}-rs", "uid": owner}
                ]
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": {"nodeName": node, "containers": [{"name": "main", "image": "workload"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            }
            self.pods[(ns, name)] = pod
            return pod

    def add_deployment(self, ns: str, name: str, replicas: int, labels: dict[str, str]) -> None:
        with self.lock:
            self.deployments[(ns, name)] = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": self._meta(ns, name, labels),
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "main", "image": "workload"}]},
                    },
                },
                "status": {"replicas": replicas, "readyReplicas": replicas},
            }
            self._reconcile(ns, name)

    def add_pdb(self, ns: str, name: str, selector: dict[str, str], min_available: int) -> None:
        with self.lock:
            self.pdbs[(ns, name)] = {"selector": selector, "minAvailable": min_available}

    def _reconcile(self, ns: str, name: str) -> None:
        """The ReplicaSet controller, synchronously: as many pods as the spec asks."""
        dep = self.deployments[(ns, name)]
        labels = dep["spec"]["selector"]["matchLabels"]
        mine = sorted(
            k
            for k, p in self.pods.items()
            if p["metadata"].get("ownerReferences", [{}])[0].get("uid") == name and k[0] == ns
        )
        want = dep["spec"]["replicas"]
        for key in mine[want:]:
            del self.pods[key]
        for _ in range(want - len(mine)):
            self.add_pod(ns, f"{name}-{uuid.uuid4().hex[:5]}", labels, owner=name)
        dep["status"] = {"replicas": want, "readyReplicas": want, "availableReplicas": want}

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in WRITES]

    # -- HTTP ---------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        url = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        with self.lock:
            self.requests.append((method, url.path))
            if parts[:2] == ["api", "v1"] and len(parts) >= 5 and parts[4] == "pods":
                return self._pods(method, parts[3], parts[5:], query, body)
            if parts[:3] == ["apis", "apps", "v1"] and len(parts) >= 6 and parts[5] == "deployments":
                return self._deployments(method, parts[4], parts[6:], body)
        return 404, _status(404, "NotFound", f"the emulator does not serve {url.path}")

    def _deny(self, verb: str, resource: str, ns: str) -> tuple[int, dict[str, Any]] | None:
        if (verb, resource, ns) in self.denied:
            msg = (
                f'{resource} is forbidden: User "system:serviceaccount:chaos:runner" cannot {verb} '
                f'resource "{resource}" in API group "" in the namespace "{ns}"'
            )
            return 403, _status(403, "Forbidden", msg)
        return None

    def _pods(  # noqa: PLR0911  one return per answer, as the API's own table reads
        self, method: str, ns: str, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if not rest:
            denied = self._deny("list", "pods", ns)
            if denied:
                return denied
            items = [
                p
                for (pns, _), p in sorted(self.pods.items())
                if pns == ns
                and _matches_labels(p["metadata"]["labels"], query.get("labelSelector", ""))
                and _matches_fields(p, query.get("fieldSelector", ""))
            ]
            return 200, {
                "apiVersion": "v1",
                "kind": "PodList",
                "metadata": {"resourceVersion": str(next(self._rv))},
                "items": items,
            }
        name = rest[0]
        pod = self.pods.get((ns, name))
        if pod is None:
            return 404, _status(404, "NotFound", f'pods "{name}" not found')
        if len(rest) == 2 and rest[1] == "eviction" and method == "POST":
            denied = self._deny("create", "pods/eviction", ns)
            if denied:
                return denied
            for pdb in self.pdbs.values():
                sel = pdb["selector"]
                if _matches_labels(pod["metadata"]["labels"], ",".join(f"{k}={v}" for k, v in sel.items())):
                    healthy = sum(
                        1
                        for (pns, _), p in self.pods.items()
                        if pns == ns and all(p["metadata"]["labels"].get(k) == v for k, v in sel.items())
                    )
                    if healthy - 1 < pdb["minAvailable"]:
                        return 429, _status(
                            429,
                            "TooManyRequests",
                            "Cannot evict pod as it would violate the pod's disruption budget.",
                        )
            return self._delete_pod(ns, name)
        if method == "GET":
            denied = self._deny("get", "pods", ns)
            return denied or (200, pod)
        if method == "DELETE":
            denied = self._deny("delete", "pods", ns)
            return denied or self._delete_pod(ns, name)
        return 405, _status(405, "MethodNotAllowed", method)

    def _delete_pod(self, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        pod = self.pods.pop((ns, name))
        owner = pod["metadata"].get("ownerReferences", [{}])[0].get("uid")
        if owner and (ns, owner) in self.deployments:
            self._reconcile(ns, owner)
        return 200, pod

    def _deployments(self, method: str, ns: str, rest: list[str], body: bytes) -> tuple[int, dict[str, Any]]:
        if not rest:
            items = [d for (dns, _), d in sorted(self.deployments.items()) if dns == ns]
            return 200, {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": items}
        dep = self.deployments.get((ns, rest[0]))
        if dep is None:
            return 404, _status(404, "NotFound", f'deployments.apps "{rest[0]}" not found')
        if len(rest) == 1:
            return 200, dep
        if rest[1] == "scale":
            if method == "PATCH":
                denied = self._deny("patch", "deployments/scale", ns)
                if denied:
                    return denied
                patch = json.loads(body or b"{}")
                dep["spec"]["replicas"] = int(patch.get("spec", {}).get("replicas", dep["spec"]["replicas"]))
                dep["metadata"]["resourceVersion"] = str(next(self._rv))
                self._reconcile(ns, rest[0])
            return 200, {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {
                    "name": rest[0],
                    "namespace": ns,
                    "resourceVersion": dep["metadata"]["resourceVersion"],
                },
                "spec": {"replicas": dep["spec"]["replicas"]},
                "status": {"replicas": dep["status"]["replicas"]},
            }
        return 404, _status(404, "NotFound", "/".join(rest))

    @contextmanager
    def serving(self, tmp: Path) -> Iterator[Path]:
        """Serve on loopback; yields a kubeconfig with contexts ``emu-east`` and ``emu-west``
        (both this emulator)."""
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload = emulator.handle(self.command, self.path, self.rfile.read(length))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _do

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        kubeconfig = tmp / "kubeconfig"
        contexts = ["emu-east", "emu-west"]
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emu", "cluster": {"server": url}}],
                    "users": [{"name": "runner", "user": {"token": "emulator"}}],
                    "contexts": [
                        {"name": c, "context": {"cluster": "emu", "user": "runner"}} for c in contexts
                    ],
                    "current-context": contexts[0],
                }
            )
        )
        try:
            yield kubeconfig
        finally:
            server.shutdown()
            server.server_close()


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
