"""The API server: routing of every request the platform makes, RBAC denials answered 403,
the request log, and serving it all over real HTTP."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.kube_emulator.answers import status_body
from tests.kube_emulator.execs import PROTOCOL, Execs, accept_key, frame
from tests.kube_emulator.kubelet import Kubelet, _stop
from tests.kube_emulator.network import NetworkModel
from tests.kube_emulator.selectors import matches_fields, matches_labels, selects
from tests.kube_emulator.world import World


class Emulator(World, NetworkModel, Kubelet, Execs):
    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any]]:  # noqa: PLR0911  a route table
        url = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        with self.lock:
            self.requests.append((method, url.path))
            if parts == ["version"]:
                return 200, {
                    "major": "1",
                    "minor": "31",
                    "gitVersion": "v1.31.0-emulator",
                    "gitCommit": "emulator",
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            if parts[:2] == ["api", "v1"] and len(parts) >= 5 and parts[4] == "pods":
                if len(parts) == 8 and parts[6] == "proxy" and parts[7] == "metrics":
                    return self._etcd_metrics(parts[5])
                if len(parts) >= 7 and parts[6] == "proxy":
                    return self._proxy(parts[3], parts[5], "/".join(parts[7:]))
                return self._pods(method, parts[3], parts[5:], query, body)
            if parts[:3] == ["api", "v1", "nodes"] and len(parts) == 4:
                return self._node(method, parts[3], body)
            if parts == ["api", "v1", "nodes"]:
                return 200, {
                    "apiVersion": "v1",
                    "kind": "NodeList",
                    "metadata": {},
                    "items": list(self.nodes.values()),
                }
            if parts == ["api", "v1", "pods"]:
                items = [p for p in self.pods.values() if matches_fields(p, query.get("fieldSelector", ""))]
                return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
            if parts == ["apis", "scheduling.k8s.io", "v1", "priorityclasses"]:
                items = [
                    {
                        "apiVersion": "scheduling.k8s.io/v1",
                        "kind": "PriorityClass",
                        "metadata": {"name": n},
                        "value": v,
                    }
                    for n, v in self.priority_classes.items()
                ]
                return 200, {
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClassList",
                    "metadata": {},
                    "items": items,
                }
            if parts[:3] == ["apis", "autoscaling", "v2"] and len(parts) == 7:
                hpa = self.hpas.get((parts[4], parts[6]))
                return (200, hpa) if hpa else (404, status_body(404, "NotFound", f"hpa {parts[6]} not found"))
            if parts[:2] == ["api", "v1"] and parts[4:] == ["events"] and method == "GET":
                return self.list_events(parts[3])
            if parts[:2] == ["api", "v1"] and len(parts) >= 5 and parts[4] == "configmaps":
                return self._configmaps(method, parts[3], parts[5:], query, body)
            if parts[:2] == ["api", "v1"] and len(parts) == 6 and parts[4] == "persistentvolumeclaims":
                claim = self.claims.get((parts[3], parts[5]))
                return (
                    (200, claim)
                    if claim
                    else (404, status_body(404, "NotFound", f"pvc {parts[5]} not found"))
                )
            if parts[:3] == ["apis", "networking.k8s.io", "v1"] and len(parts) >= 6:
                return self._objects(
                    method, ("networking.k8s.io/v1", "NetworkPolicy"), parts[4:], query, body
                )
            if parts[:3] == ["apis", "chaos-mesh.org", "v1alpha1"] and len(parts) >= 6 and self.chaos_mesh:
                kind = {"networkchaos": "NetworkChaos", "iochaos": "IOChaos"}.get(parts[5], "")
                if kind:
                    return self._objects(method, ("chaos-mesh.org/v1alpha1", kind), parts[4:], query, body)
            if parts[:3] == ["apis", "apps", "v1"] and len(parts) >= 6 and parts[5] == "deployments":
                return self._deployments(method, parts[4], parts[6:], body)
        return 404, status_body(404, "NotFound", f"the emulator does not serve {url.path}")

    def _objects(
        self, method: str, api: tuple[str, str], rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """A plain object store for NetworkPolicies and Chaos Mesh objects."""
        api_version, kind = api
        ns, plural, name = rest[0], rest[1], (rest[2] if len(rest) > 2 else "")
        verb = {"POST": "create", "DELETE": "delete"}.get(method, "get" if name else "list")
        denied = self._deny(verb, plural, ns, api_version.split("/")[0])
        if denied:
            return denied
        if method == "POST":
            obj = json.loads(body)
            meta = obj["metadata"]
            if (plural, ns, meta["name"]) in self.objects:
                return 409, status_body(409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists')
            meta.update(namespace=ns, uid=str(uuid.uuid4()), resourceVersion=str(next(self._rv)))
            meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            if kind != "NetworkPolicy":  # Chaos Mesh's controller injects into the selected pods
                obj["status"] = {"conditions": []}
                threading.Timer(self.chaos_mesh_delay, self._chaos_mesh_injects, (obj,)).start()
            self.objects[(plural, ns, meta["name"])] = obj
            return 201, obj
        if not name:
            items = [
                o
                for (pl, ons, _), o in sorted(self.objects.items())
                if pl == plural
                and ons == ns
                and matches_labels(o["metadata"].get("labels", {}), query.get("labelSelector", ""))
            ]
            return 200, {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {}, "items": items}
        obj = self.objects.get((plural, ns, name))
        if obj is None:
            return 404, status_body(404, "NotFound", f'{plural} "{name}" not found')
        if method == "DELETE":
            del self.objects[(plural, ns, name)]
        return 200, obj

    def _chaos_mesh_injects(self, obj: dict[str, Any]) -> None:
        """What Chaos Mesh 2.x's controller reports once it has run: a record per selected
        running pod, ``Selected`` only if there is one, and ``AllInjected`` over the records,
        so True when none was selected (vacuously), as the real one does."""
        sel = obj["spec"].get("selector") or {}
        wanted = ",".join(f"{k}={v}" for k, v in (sel.get("labelSelectors") or {}).items())
        with self.lock:
            records = [
                {"id": f"{pns}/{name}", "phase": "Injected", "selectorKey": "."}
                for (pns, name), pod in sorted(self.pods.items())
                if pns in (sel.get("namespaces") or [])
                and (pod.get("status") or {}).get("phase") == "Running"
                and not pod["metadata"].get("deletionTimestamp")
                and matches_labels(pod["metadata"].get("labels", {}), wanted)
            ]
            obj["status"] = {
                "conditions": [
                    {"type": "Selected", "status": "True" if records else "False"},
                    {"type": "AllInjected", "status": "True"},
                    {"type": "AllRecovered", "status": "False"},
                ],
                "experiment": {"desiredPhase": "Run", "containerRecords": records},
            }

    def _deny(self, verb: str, resource: str, ns: str, group: str = "") -> tuple[int, dict[str, Any]] | None:
        """RBAC: ``denied`` holds (verb, resource, namespace) refused in any API group, and
        (verb, "resource.group", namespace) refused in that group only, as a Role's rule
        grants a resource of one group and not its namesake in another."""
        qualified = f"{resource}.{group}" if group else resource
        if (verb, resource, ns) in self.denied or (verb, qualified, ns) in self.denied:
            msg = (
                f'{qualified} is forbidden: User "system:serviceaccount:chaos:runner" cannot {verb} '
                f'resource "{resource}" in API group "{group}" in the namespace "{ns}"'
            )
            return 403, status_body(403, "Forbidden", msg)
        return None

    def _pods(  # noqa: PLR0911  one return per answer, as the API's own table reads
        self, method: str, ns: str, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        for pod in self.pods.values():
            self._etcd_status(pod)
        self._pod_phases()
        if not rest and method == "POST":
            return self._create_pod(ns, json.loads(body))
        if not rest:
            denied = self._deny("list", "pods", ns)
            if denied:
                return denied
            items = [
                p
                for (pns, _), p in sorted(self.pods.items())
                if pns == ns
                and matches_labels(p["metadata"]["labels"], query.get("labelSelector", ""))
                and matches_fields(p, query.get("fieldSelector", ""))
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
            return 404, status_body(404, "NotFound", f'pods "{name}" not found')
        if len(rest) == 2 and rest[1] == "eviction" and method == "POST":
            denied = self._deny("create", "pods/eviction", ns)
            if denied:
                return denied
            refused = self._disruption_refused(ns, pod)
            if refused:
                return refused
            if query.get("dryRun") == "All":  # judged, not done
                return 201, {"apiVersion": "v1", "kind": "Status", "status": "Success"}
            return self._delete_pod(ns, name)
        if method == "GET":
            denied = self._deny("get", "pods", ns)
            return denied or (200, pod)
        if method == "DELETE":
            denied = self._deny("delete", "pods", ns)
            grace = query.get("gracePeriodSeconds")
            if grace is None and body:  # DeleteOptions in the body, as some clients send them
                grace = json.loads(body).get("gracePeriodSeconds")
            return denied or self._delete_pod(ns, name, None if grace is None else int(grace))
        return 405, status_body(405, "MethodNotAllowed", method)

    def _disruption_refused(self, ns: str, pod: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The eviction API's judgement: several budgets over one pod is a 500; one budget
        allows the eviction while the pods it counts healthy (ready, not terminating) stay at
        or above what it demands (``minAvailable``, or the pods it selects less
        ``maxUnavailable``; percentages of those pods, rounded up)."""
        labels = pod["metadata"].get("labels", {})
        budgets = [
            b for (bns, _), b in sorted(self.pdbs.items()) if bns == ns and selects(b["selector"], labels)
        ]
        if len(budgets) > 1:
            return 500, status_body(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, "
                "which the eviction subresource does not support.",
            )
        if not budgets:
            return None
        budget = budgets[0]
        counted = [
            p
            for (pns, _), p in self.pods.items()
            if pns == ns
            and selects(budget["selector"], p["metadata"].get("labels", {}))
            and not p["metadata"].get("deletionTimestamp")  # on its way out: no longer expected
        ]
        healthy = sum(1 for p in counted if _healthy(p))
        if budget.get("minAvailable") is not None:
            demanded = _of(budget["minAvailable"], len(counted))
        else:
            demanded = len(counted) - _of(budget["maxUnavailable"], len(counted))
        if healthy - (1 if _healthy(pod) else 0) >= demanded:
            return None
        return 429, status_body(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget "
            f"{budget['name']} needs {demanded} healthy pods and has {healthy} currently",
        )

    def _create_pod(self, ns: str, obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A created pod is Pending for ``pod_start_s`` (scheduling, image pull), then runs. An
        actuator pod (label chaos.io/actuator=etcd-kill) on a control-plane node kills that
        node's etcd, as its `kill -9` would."""
        denied = self._deny("create", "pods", ns)
        if denied:
            return denied
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or f"{meta.get('generateName', 'pod-')}{uuid.uuid4().hex[:5]}"
        if (ns, name) in self.pods:
            return 409, status_body(409, "AlreadyExists", f'pods "{name}" already exists')
        meta.update(name=name, namespace=ns, uid=str(uuid.uuid4()), resourceVersion=str(next(self._rv)))
        obj["status"] = {"phase": "Pending"}
        self.pods[(ns, name)] = obj
        if self.pod_start_s > 0:
            threading.Timer(self.pod_start_s, self._start_pod, (ns, name, obj["metadata"]["uid"])).start()
        else:
            self._start_pod(ns, name, obj["metadata"]["uid"])
        return 201, obj

    def _start_pod(self, ns: str, name: str, uid: str) -> None:
        with self.lock:
            obj = self.pods.get((ns, name))
            if obj is None or obj["metadata"]["uid"] != uid:
                return  # deleted before it started
            ready = [{"type": "Ready", "status": "True"}]  # no readiness probe: ready once running
            obj["status"] = {"phase": "Running", "podIP": self._next_ip(), "conditions": ready}
            meta = obj["metadata"]
            if meta.get("labels", {}).get("chaos.io/actuator") == "etcd-kill":
                node = obj.get("spec", {}).get("nodeName", "")
                for member in self.etcd.members:
                    on_node = (
                        self.pods.get(("kube-system", member), {}).get("spec", {}).get("nodeName") == node
                    )
                    if on_node and self.etcd.actuator_works:
                        for key in self.etcd.kill(member):
                            self.configmaps.pop(key, None)
                obj["status"] = {"phase": "Succeeded"}
            role = meta.get("labels", {}).get("chaos.io/role")
            if role == "netprobe":
                obj["status"] = {"phase": self._run_probe(ns, obj)}
            if role == "claim-fill":  # dd wrote until ENOSPC: the readiness probe passes
                obj["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            if obj["spec"]["containers"][0].get("command", [""])[0] == "locust":
                self._run_locust(ns, obj)

    def _event(self, ns: str, kind: str, name: str, reason: str, message: str) -> None:
        self.events.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": self._meta(ns, f"{name}.{uuid.uuid4().hex[:8]}", {}),
                "involvedObject": {"kind": kind, "name": name, "namespace": ns},
                "reason": reason,
                "message": message,
                "type": "Normal",
            }
        )
        with self.changed:
            self.changed.notify_all()

    def _delete_pod(self, ns: str, name: str, grace: int | None = None) -> tuple[int, dict[str, Any]]:
        """A pod deleted with a grace period is Terminating (``deletionTimestamp`` set, still
        listed) for that long, capped at ``terminating_s``, and then gone unless finalizers
        hold it; with grace 0 and no finalizer it is gone at once. Its controller replaces it
        from the moment it is Terminating, after ``controller_s``."""
        pod = self.pods[(ns, name)]
        meta = pod["metadata"]
        if grace is None:
            grace = int(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))
        first = not meta.get("deletionTimestamp")
        if first:
            self._event(ns, "Pod", name, "Killing", f"Stopping container {name}")
        if grace == 0 and not meta.get("finalizers"):
            self._gone(ns, name, meta["uid"])
        elif first:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            meta["deletionGracePeriodSeconds"] = grace
            meta["resourceVersion"] = str(next(self._rv))
            when = min(float(grace), self.terminating_s)
            threading.Timer(when, self._terminated, (ns, name, meta["uid"])).start()
        owner = (meta.get("ownerReferences") or [{}])[0].get("uid")
        if first and owner and (ns, owner) in self.deployments:
            self._reconcile_later(ns, owner)
        return 200, pod

    def _terminated(self, ns: str, name: str, uid: str) -> None:
        """The grace period is over: the container is stopped; the object goes once no
        finalizer holds it."""
        with self.lock:
            pod = self.pods.get((ns, name))
            if pod is None or pod["metadata"]["uid"] != uid:
                return
            if (ns, name) in self.procs:
                _stop(self.procs[(ns, name)])
            pod["status"]["phase"] = "Succeeded"
            pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
            pod["metadata"]["terminated"] = True
            if not pod["metadata"].get("finalizers"):
                self._gone(ns, name, uid)

    def _gone(self, ns: str, name: str, uid: str) -> None:
        pod = self.pods.get((ns, name))
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        del self.pods[(ns, name)]
        if (ns, name) in self.procs:
            _stop(self.procs[(ns, name)])  # the kubelet stops the container
        with self.changed:
            self.changed.notify_all()

    def active(self, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Pods not being deleted (what a controller counts), with exactly ``labels`` if given."""
        with self.lock:
            return [
                p
                for p in self.pods.values()
                if not p["metadata"].get("deletionTimestamp")
                and (labels is None or p["metadata"].get("labels") == labels)
            ]

    def finalize(self, ns: str, name: str) -> None:
        """What a finalizer's controller does when its work is done: remove its finalizers; a
        pod whose deletion was asked and whose grace period is over is then gone."""
        with self.lock:
            pod = self.pods[(ns, name)]
            pod["metadata"]["finalizers"] = []
            if pod["metadata"].get("terminated"):
                self._gone(ns, name, pod["metadata"]["uid"])

    def _node(self, method: str, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """One node: read, or patched (cordoned: ``spec.unschedulable``, which the scheduler heeds)."""
        node = self.nodes.get(name)
        if node is None:
            return 404, status_body(404, "NotFound", f'nodes "{name}" not found')
        denied = self._deny("patch" if method == "PATCH" else "get", "nodes", "")
        if denied:
            return denied
        if method == "PATCH":
            spec = json.loads(body or b"{}").get("spec", {})
            node.setdefault("spec", {}).update(spec)
            node["metadata"]["resourceVersion"] = str(next(self._rv))
            if not node["spec"].get("unschedulable"):
                for ns, dep in list(self.deployments):  # pods waiting for room get a node now
                    self._reconcile(ns, dep)
        return 200, node

    def _deployment_patched(self, ns: str, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """A strategic merge patch of the template: containers merged by name (only their
        images change here), rolled out by the controller."""
        denied = self._deny("patch", "deployments", ns, "apps")
        if denied:
            return denied
        dep = self.deployments[(ns, name)]
        patch = json.loads(body or b"{}").get("spec", {}).get("template", {}).get("spec", {})
        mine = {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}
        for change in patch.get("containers", []):
            if change.get("name") in mine and "image" in change:
                mine[change["name"]]["image"] = change["image"]
        dep["metadata"]["generation"] = dep["metadata"].get("generation", 1) + 1
        dep["metadata"]["resourceVersion"] = str(next(self._rv))
        self._reconcile_later(ns, name)
        return 200, dep

    def _deployments(self, method: str, ns: str, rest: list[str], body: bytes) -> tuple[int, dict[str, Any]]:
        if not rest:
            items = [d for (dns, _), d in sorted(self.deployments.items()) if dns == ns]
            return 200, {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": items}
        dep = self.deployments.get((ns, rest[0]))
        if dep is None:
            return 404, status_body(404, "NotFound", f'deployments.apps "{rest[0]}" not found')
        if len(rest) == 1:
            return self._deployment_patched(ns, rest[0], body) if method == "PATCH" else (200, dep)
        if rest[1] == "scale":
            if method == "PATCH":
                denied = self._deny("patch", "deployments/scale", ns, "apps")
                if denied:
                    return denied
                patch = json.loads(body or b"{}")
                dep["spec"]["replicas"] = int(patch.get("spec", {}).get("replicas", dep["spec"]["replicas"]))
                dep["metadata"]["resourceVersion"] = str(next(self._rv))
                self._reconcile_later(ns, rest[0])
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
        return 404, status_body(404, "NotFound", "/".join(rest))

    @contextmanager
    def serving(self, tmp: Path, west: Emulator | None = None) -> Iterator[Path]:
        """Serve on loopback; yields a kubeconfig with contexts ``emu-east`` (this emulator) and
        ``emu-west`` (``west``, an API server of its own with its own objects, RBAC and etcd;
        this one again when not given)."""
        servers = {"east": self._serve()}
        if west is not None:
            servers["west"] = west._serve()
        urls = {role: f"http://127.0.0.1:{srv.server_address[1]}" for role, srv in servers.items()}
        urls.setdefault("west", urls["east"])
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": f"emu-{r}", "cluster": {"server": u}} for r, u in urls.items()],
                    "users": [{"name": "runner", "user": {"token": "emulator"}}],
                    "contexts": [
                        {"name": f"emu-{r}", "context": {"cluster": f"emu-{r}", "user": "runner"}}
                        for r in urls
                    ],
                    "current-context": "emu-east",
                }
            )
        )
        try:
            yield kubeconfig
        finally:
            for emulator, server in ((self, servers["east"]), (west, servers.get("west"))):
                if emulator is None or server is None:
                    continue
                server.shutdown()
                server.server_close()
                emulator.stop_processes()
                shutil.rmtree(emulator.run_dir, ignore_errors=True)

    def _serve(self) -> ThreadingHTTPServer:
        """This emulator's API server on a loopback port of its own, serving from a thread."""
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def _send(
                self, status: int, payload: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _upgrade(self) -> None:
                """pods/exec: refused before the upgrade, or run and streamed on channels."""
                with emulator.lock:
                    answer = emulator.exec_request(self.path)
                if isinstance(answer, tuple):
                    self._send(*answer)
                    return
                self.send_response(101, "Switching Protocols")
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept_key(self.headers["Sec-WebSocket-Key"]))
                self.send_header("Sec-WebSocket-Protocol", PROTOCOL)
                self.end_headers()
                for channel, data in answer:
                    self.wfile.write(frame(0x2, bytes([channel]) + data))
                self.wfile.write(frame(0x8, (1000).to_bytes(2, "big")))
                self.wfile.flush()
                self.close_connection = True
                # the client answers a close with its own; read it so it is not sent into a reset
                self.connection.settimeout(2)
                with contextlib.suppress(OSError):
                    self.connection.recv(64)

            def _do(self) -> None:
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self._upgrade()
                    return
                bad = emulator.bad_selector(self.path) if self.command == "GET" else None
                if bad is not None:
                    self._send(400, bad)
                    return
                stream = emulator.watch(self.path) if self.command == "GET" else None
                if isinstance(stream, tuple):
                    self._send(*stream)
                    return
                if stream is not None:
                    # chunked, as a real API server streams a watch: each event arrives as it happens
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        for event in stream:
                            line = json.dumps(event).encode() + b"\n"
                            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client had what it wanted and hung up: a watch's usual end
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if emulator.throttled(self.command):
                    # API priority and fairness: rejected before it runs, with when to come back
                    busy = status_body(429, "TooManyRequests", "Too many requests, please try again later.")
                    self._send(429, busy, (("Retry-After", "1"),))
                    return
                emulator.await_leader(self.command, self.path)
                status, payload = emulator.handle(self.command, self.path, body)
                text = payload.get("_text")
                data = text.encode() if text is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _do
            protocol_version = "HTTP/1.1"  # keep-alive, and chunked watches

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def _healthy(pod: dict[str, Any]) -> bool:
    """What a budget counts: a ready pod that is not being deleted."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not pod["metadata"].get("deletionTimestamp")


def _of(value: int | str, total: int) -> int:
    """A budget's number: as given, or a percentage of ``total`` rounded up."""
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)
    return int(value)
