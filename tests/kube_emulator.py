"""A focused Kubernetes API emulator over real HTTP, for testing the kube platform with the
official client unpatched. It implements what the platform uses: pods (list with label and
field selectors, get, delete, eviction honouring PodDisruptionBudgets), deployments and their
scale subresource, a minimal ReplicaSet controller that recreates deleted pods, RBAC denials
answered 403 like a real API server, and a log of every request.

Part 2 adds NetworkPolicies with a model of the CNI (``cni="enforcing"`` evaluates policies
for the framework's probe pods, ``cni="none"`` ignores them as flannel does),
PersistentVolumeClaims (a claim-fill pod turns Ready: the claim is full while it lives), and
Chaos Mesh's NetworkChaos and IOChaos (``chaos_mesh=True``; otherwise their API is absent,
answered 404 as for a CRD that is not installed).

It is also a kubelet for one image: a pod whose command is ``locust`` runs as a real local
Locust process (the installed version), its ConfigMap volumes written to a directory, its IP
an address of its own on loopback (127.1.x.y), and the pod proxy forwarding to it, so the
distributed load engine is tested against real Locust. Deleting the pod stops the process;
so does the end of ``serving``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import urlopen

WRITES = ("POST", "PUT", "PATCH", "DELETE")
ELECTION_S = 1.0  # etcd's election timeout: how long a cluster that lost its leader has none
RESTART_S = 1.5  # how long the kubelet takes to restart a killed static pod


class EtcdSim:
    """Three etcd members as static pods ``etcd-node-N`` in kube-system: who is alive, who
    leads. A killed member comes back after RESTART_S; a killed leader leaves the cluster
    leaderless for ELECTION_S, then the first live member leads if a quorum is alive."""

    def __init__(self, members: int = 3) -> None:
        self.members = [f"etcd-node-{i}" for i in range(1, members + 1)]
        self.down_until = dict.fromkeys(self.members, 0.0)
        self.restarts = dict.fromkeys(self.members, 0)
        self.leader: str | None = self.members[0]
        self.leaderless_until = 0.0

    def alive(self, member: str) -> bool:
        return time.monotonic() >= self.down_until[member]

    def kill(self, member: str) -> None:
        now = time.monotonic()
        self.down_until[member] = now + RESTART_S
        self.restarts[member] += 1
        if member == self.leader:
            self.leader, self.leaderless_until = None, now + ELECTION_S

    def current_leader(self) -> str | None:
        if self.leader is not None and self.alive(self.leader):
            return self.leader
        if time.monotonic() < self.leaderless_until:
            return None
        alive = [m for m in self.members if self.alive(m)]
        self.leader = alive[0] if len(alive) > len(self.members) // 2 else None
        return self.leader


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


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
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
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.statefulsets: dict[tuple[str, str], dict[str, Any]] = {}
        self.priority_classes: dict[str, int] = {}
        self.hpas: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.ready_delay = 0.0  # seconds a deployment's new replicas take to become ready
        self.stuck_terminating = False
        self.changed = threading.Condition(threading.RLock())
        self.etcd = EtcdSim()
        self.denied: set[tuple[str, str, str]] = set()  # (verb, resource, namespace)
        self.requests: list[tuple[str, str]] = []
        self._rv = itertools.count(1)
        self._ips = itertools.count(2)
        self._loopback = itertools.count(0)
        self.cni = "enforcing"  # or "none": policies stored, never enforced (flannel)
        self.chaos_mesh = False
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, namespace, name)
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.pod_specs: dict[tuple[str, str], dict[str, Any]] = {}
        self.probes: list[tuple[str, bool]] = []  # (probe pod, connected)
        self.procs: dict[tuple[str, str], subprocess.Popen[bytes]] = {}  # pods run as local processes
        self.run_dir = Path(tempfile.mkdtemp(prefix="kube-emulator-"))
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
        self,
        ns: str,
        name: str,
        labels: dict[str, str],
        *,
        node: str = "node-1",
        owner: str = "",
        cpu_millis: int = 0,
        priority_class: str = "",
        phase: str = "Running",
        port: int = 0,
        claim: str = "",
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
                "spec": {
                    "nodeName": node,
                    "containers": [
                        {
                            "name": "main",
                            "image": "workload",
                            "resources": {"requests": {"cpu": f"{cpu_millis}m"}} if cpu_millis else {},
                            "ports": [{"containerPort": port}] if port else [],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}] if claim else [],
                        }
                    ],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
                    if claim
                    else [],
                },
                "status": {
                    "phase": phase,
                    "podIP": self._next_ip(),  # data only: nothing connects to it
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
            if priority_class:
                pod["spec"]["priorityClassName"] = priority_class
                pod["spec"]["priority"] = self.priority_classes.get(priority_class, 0)
            self.pods[(ns, name)] = pod
            return pod

    def scale(self, ns: str, name: str, replicas: int) -> None:
        """What a controller inside the cluster (an HPA) does to a deployment's replicas."""
        with self.lock:
            self.deployments[(ns, name)]["spec"]["replicas"] = replicas
            self._reconcile(ns, name)

    def _next_ip(self) -> str:
        n = next(self._ips)
        return f"10.244.{n // 250}.{n % 250}"

    def add_claim(self, ns: str, name: str) -> None:
        with self.lock:
            self.claims[(ns, name)] = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": self._meta(ns, name, {}),
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                "status": {"phase": "Bound"},
            }

    def full_claims(self) -> list[str]:
        """Claims a live fill pod has filled."""
        return sorted(
            v["persistentVolumeClaim"]["claimName"]
            for p in self.pods.values()
            if p["metadata"].get("labels", {}).get("chaos.io/role") == "claim-fill"
            for v in p["spec"].get("volumes", [])
        )

    def add_deployment(
        self,
        ns: str,
        name: str,
        replicas: int,
        labels: dict[str, str],
        *,
        port: int = 0,
        claim: str = "",
        cpu_millis: int = 0,
        priority_class: str = "",
    ) -> None:
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
            self.pod_specs[(ns, name)] = {
                "port": port,
                "claim": claim,
                "cpu_millis": cpu_millis,
                "priority_class": priority_class,
            }
            self._reconcile(ns, name)

    def add_statefulset(self, ns: str, name: str, replicas: int, ready: int) -> None:
        """A StatefulSet whose pods become ready one by one, ``ready_delay`` apart."""
        labels = {"app": name}
        with self.lock:
            self.statefulsets[(ns, name)] = {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": self._meta(ns, name, labels),
                "spec": {
                    "replicas": replicas,
                    "serviceName": name,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "db", "image": "db"}]},
                    },
                },
                "status": {"replicas": replicas, "readyReplicas": ready},
            }
        if ready < replicas:
            threading.Timer(self.ready_delay, self._statefulset_step, (ns, name)).start()

    def _statefulset_step(self, ns: str, name: str) -> None:
        with self.lock:
            sts = self.statefulsets[(ns, name)]
            sts["status"]["readyReplicas"] += 1
            sts["metadata"]["resourceVersion"] = str(next(self._rv))
            more = sts["status"]["readyReplicas"] < sts["spec"]["replicas"]
        with self.changed:
            self.changed.notify_all()
        if more:
            threading.Timer(self.ready_delay, self._statefulset_step, (ns, name)).start()

    def add_node(self, name: str, cpu_millis: int) -> None:
        with self.lock:
            self.nodes[name] = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": self._meta("", name, {}),
                "status": {"allocatable": {"cpu": f"{cpu_millis}m", "memory": "8Gi", "pods": "110"}},
            }

    def add_priority_class(self, name: str, value: int) -> None:
        self.priority_classes[name] = value

    def add_hpa(self, ns: str, name: str, *, current: int, desired: int, lo: int, hi: int) -> None:
        with self.lock:
            self.hpas[(ns, name)] = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": self._meta(ns, name, {}),
                "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": name},
                    "minReplicas": lo,
                    "maxReplicas": hi,
                },
                "status": {"currentReplicas": current, "desiredReplicas": desired},
            }

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
            pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
            self.add_pod(ns, pod_name, labels, owner=name, **self.pod_specs.get((ns, name), {}))
            self._event(ns, "ReplicaSet", f"{name}-rs", "SuccessfulCreate", f"Created pod: {pod_name}")
        ready = min(dep.get("status", {}).get("readyReplicas", 0), want) if self.ready_delay else want
        if self.stuck_terminating:  # the removed pods hang in Terminating and still count as ready
            ready = max(ready, dep.get("status", {}).get("readyReplicas", 0))
        dep["status"] = {"replicas": want, "readyReplicas": ready, "availableReplicas": ready}
        dep["metadata"]["resourceVersion"] = str(next(self._rv))
        if ready < want:
            threading.Timer(self.ready_delay, self._become_ready, (ns, name)).start()
        with self.changed:
            self.changed.notify_all()

    def _become_ready(self, ns: str, name: str) -> None:
        with self.lock:
            dep = self.deployments[(ns, name)]
            want = dep["spec"]["replicas"]
            dep["status"] = {"replicas": want, "readyReplicas": want, "availableReplicas": want}
            dep["metadata"]["resourceVersion"] = str(next(self._rv))
        with self.changed:
            self.changed.notify_all()

    def add_control_plane(self) -> None:
        """The etcd members as static pods, one per control-plane node."""
        for i, member in enumerate(self.etcd.members, 1):
            pod = self.add_pod(
                "kube-system", member, {"component": "etcd", "tier": "control-plane"}, node=f"node-{i}"
            )
            pod["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": f"node-{i}", "uid": f"node-{i}"}
            ]

    def _etcd_status(self, pod: dict[str, Any]) -> None:
        member = pod["metadata"]["name"]
        if member in self.etcd.members:
            ready = self.etcd.alive(member)
            pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
            pod["status"]["containerStatuses"] = [
                {
                    "name": "etcd",
                    "ready": ready,
                    "restartCount": self.etcd.restarts[member],
                    "image": "etcd",
                    "imageID": "",
                    "containerID": "",
                }
            ]

    def _etcd_metrics(self, target: str) -> tuple[int, dict[str, Any]]:
        """The API server's pod proxy to etcd's metrics port (``etcd-node-1:2381``)."""
        member = target.split(":", 1)[0]
        if member not in self.etcd.members:
            return 404, _status(404, "NotFound", f'pods "{member}" not found')
        if not self.etcd.alive(member):
            return 503, _status(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {member}:2381: connect: connection refused",
            )
        leader = self.etcd.current_leader()
        text = f"etcd_server_has_leader {int(leader is not None)}\n"
        text += f"etcd_server_is_leader {int(leader == member)}\n"
        return 200, {"_text": text}

    def _configmaps(
        self, method: str, ns: str, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """ConfigMaps, stored in the emulated etcd: no leader, no write."""
        if method == "POST" and not rest:
            if self.etcd.current_leader() is None:
                return 503, _status(503, "ServiceUnavailable", "etcdserver: no leader")
            obj = json.loads(body)
            meta = obj.setdefault("metadata", {})
            meta.update(uid=str(uuid.uuid4()), namespace=ns, resourceVersion=str(next(self._rv)))
            self.configmaps[(ns, meta["name"])] = obj
            return 201, obj
        if method == "GET" and not rest:
            if self.etcd.current_leader() is None:
                return 504, _status(504, "Timeout", "etcdserver: request timed out")
            items = [
                c
                for (cns, _), c in sorted(self.configmaps.items())
                if cns == ns
                and _matches_labels(c["metadata"].get("labels", {}), query.get("labelSelector", ""))
            ]
            return 200, {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": items}
        if method == "DELETE" and rest:
            obj = self.configmaps.pop((ns, rest[0]), None)
            return (200, obj) if obj else (404, _status(404, "NotFound", f'configmaps "{rest[0]}" not found'))
        return 405, _status(405, "MethodNotAllowed", method)

    def watch(self, raw_path: str) -> Iterator[dict[str, Any]] | None:
        """A watch of deployments (``?watch=true``): ADDED for what matches now, then MODIFIED
        as it changes, until ``timeoutSeconds``; None when the request is not such a watch."""
        url = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        if query.get("watch") not in ("true", "1"):
            return None
        if parts[:2] == ["api", "v1"] and parts[4:] == ["events"]:
            return self._watch_events(parts[3], url.path, float(query.get("timeoutSeconds", 30)))
        if parts[:3] != ["apis", "apps", "v1"] or parts[5:] not in (["deployments"], ["statefulsets"]):
            return None
        store = self.deployments if parts[5] == "deployments" else self.statefulsets
        self.requests.append(("GET", url.path))
        ns, selector = parts[4], query.get("fieldSelector", "")
        deadline = time.monotonic() + float(query.get("timeoutSeconds", 30))

        def events() -> Iterator[dict[str, Any]]:
            seen: dict[str, str] = {}
            while time.monotonic() < deadline:
                with self.lock:
                    current = [
                        json.loads(json.dumps(d))
                        for (dns, _), d in sorted(store.items())
                        if dns == ns and _matches_fields(d, selector)
                    ]
                for d in current:
                    name, rv = d["metadata"]["name"], d["metadata"]["resourceVersion"]
                    if seen.get(name) != rv:
                        yield {"type": "ADDED" if name not in seen else "MODIFIED", "object": d}
                        seen[name] = rv
                with self.changed:
                    self.changed.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))

        return events()

    def _watch_events(self, ns: str, path: str, timeout: float) -> Iterator[dict[str, Any]]:
        self.requests.append(("GET", path))
        deadline = time.monotonic() + timeout

        def events() -> Iterator[dict[str, Any]]:
            sent = 0
            while time.monotonic() < deadline:
                with self.lock:
                    fresh = [e for e in self.events[sent:] if e["metadata"]["namespace"] == ns]
                    sent = len(self.events)
                for e in fresh:
                    yield {"type": "ADDED", "object": e}
                with self.changed:
                    self.changed.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))

        return events()

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in WRITES]

    # -- HTTP ---------------------------------------------------------------------------------------
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
            if parts == ["api", "v1", "nodes"]:
                return 200, {
                    "apiVersion": "v1",
                    "kind": "NodeList",
                    "metadata": {},
                    "items": list(self.nodes.values()),
                }
            if parts == ["api", "v1", "pods"]:
                items = [p for p in self.pods.values() if _matches_fields(p, query.get("fieldSelector", ""))]
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
                return (200, hpa) if hpa else (404, _status(404, "NotFound", f"hpa {parts[6]} not found"))
            if parts[:2] == ["api", "v1"] and len(parts) >= 5 and parts[4] == "configmaps":
                return self._configmaps(method, parts[3], parts[5:], query, body)
            if parts[:2] == ["api", "v1"] and len(parts) == 6 and parts[4] == "persistentvolumeclaims":
                claim = self.claims.get((parts[3], parts[5]))
                return (200, claim) if claim else (404, _status(404, "NotFound", f"pvc {parts[5]} not found"))
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
        return 404, _status(404, "NotFound", f"the emulator does not serve {url.path}")

    def _objects(
        self, method: str, api: tuple[str, str], rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """A plain object store for NetworkPolicies and Chaos Mesh objects."""
        api_version, kind = api
        ns, plural, name = rest[0], rest[1], (rest[2] if len(rest) > 2 else "")
        verb = {"POST": "create", "DELETE": "delete"}.get(method, "get" if name else "list")
        denied = self._deny(verb, plural, ns)
        if denied:
            return denied
        if method == "POST":
            obj = json.loads(body)
            meta = obj["metadata"]
            meta.update(namespace=ns, uid=str(uuid.uuid4()), resourceVersion=str(next(self._rv)))
            meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            if kind != "NetworkPolicy":  # Chaos Mesh's controller injects into the selected pods
                obj["status"] = {"conditions": [{"type": "AllInjected", "status": "True"}]}
            self.objects[(plural, ns, meta["name"])] = obj
            return 201, obj
        if not name:
            items = [
                o
                for (pl, ons, _), o in sorted(self.objects.items())
                if pl == plural
                and ons == ns
                and _matches_labels(o["metadata"].get("labels", {}), query.get("labelSelector", ""))
            ]
            return 200, {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {}, "items": items}
        obj = self.objects.get((plural, ns, name))
        if obj is None:
            return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
        if method == "DELETE":
            del self.objects[(plural, ns, name)]
        return 200, obj

    def policies(self, ns: str | None = None) -> list[dict[str, Any]]:
        return [
            o for (pl, ons, _), o in self.objects.items() if pl == "networkpolicies" and ns in (None, ons)
        ]

    def reachable_from_outside(self, dst: dict[str, Any]) -> bool:
        """Whether traffic from outside the cluster (a load balancer) reaches ``dst``: only a
        policy rule without ``from`` admits a source that is not a pod."""
        return self._admits("", {}, dst, outside=True)

    def _admits(
        self, src_ns: str, src: dict[str, str], dst: dict[str, Any], *, outside: bool = False
    ) -> bool:
        """Whether the CNI lets a pod (namespace, labels) open a connection to ``dst``."""
        if self.cni != "enforcing":
            return True
        ns = dst["metadata"]["namespace"]
        selecting = [
            p["spec"]
            for p in self.policies(ns)
            if _selects(p["spec"].get("podSelector") or {}, dst["metadata"].get("labels", {}))
            and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        ]
        if not selecting:
            return True
        for spec in selecting:
            for rule in spec.get("ingress") or []:
                peers = rule.get("from")
                if not peers:
                    return True
                for peer in [] if outside else peers:
                    ns_ok = (
                        _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": src_ns})
                        if "namespaceSelector" in peer
                        else src_ns == ns
                    )
                    if ns_ok and "podSelector" in peer and _selects(peer["podSelector"], src):
                        return True
                    if ns_ok and "podSelector" not in peer and "namespaceSelector" in peer:
                        return True
        return False

    def _run_probe(self, ns: str, pod: dict[str, Any]) -> str:
        """A netprobe pod runs `nc -z -w N IP PORT`: Succeeded if it connects."""
        *_, ip, port = pod["spec"]["containers"][0]["command"]
        dst = next((p for p in self.pods.values() if p.get("status", {}).get("podIP") == ip), None)
        ports = [
            pt["containerPort"]
            for c in (dst or {}).get("spec", {}).get("containers", [])
            for pt in c.get("ports", [])
        ]
        connected = (
            bool(dst) and int(port) in ports and self._admits(ns, pod["metadata"]["labels"], dst or {})
        )
        self.probes.append((pod["metadata"]["name"], connected))
        return "Succeeded" if connected else "Failed"

    def _run_locust(self, ns: str, pod: dict[str, Any]) -> None:
        """Run the pod's Locust here: volumes from its ConfigMaps, the master at 127.0.0.1."""
        container = pod["spec"]["containers"][0]
        args = list(container["command"][1:])
        for vol in pod["spec"].get("volumes", []):
            cm = self.configmaps.get((ns, vol.get("configMap", {}).get("name", "")))
            mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == vol["name"])
            where = self.run_dir / pod["metadata"]["name"] / vol["name"]
            where.mkdir(parents=True, exist_ok=True)
            for fname, text in (cm or {}).get("data", {}).items():
                (where / fname).write_text(text)
            args = [a.replace(mount.rstrip("/") + "/", f"{where}/") for a in args]
        # each pod its own loopback address, as each pod has its own IP: two masters never clash
        n = next(self._loopback)
        ip = f"127.1.{n // 250}.{n % 250 + 1}"
        if "--master" in args:
            args += ["--web-host", ip, "--master-bind-host", ip]
        env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}}
        log = open(self.run_dir / f"{pod['metadata']['name']}.log", "wb")
        self.procs[(ns, pod["metadata"]["name"])] = subprocess.Popen(
            [sys.executable, "-m", "locust", *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        pod["status"] = {"phase": "Running", "podIP": ip}

    def _proxy(self, ns: str, target: str, path: str) -> tuple[int, dict[str, Any]]:
        name, _, port = target.partition(":")
        if (ns, name) not in self.procs or (ns, name) not in self.pods:
            return 404, _status(404, "NotFound", f'pods "{name}" not found')
        ip = self.pods[(ns, name)]["status"]["podIP"]
        try:
            with urlopen(f"http://{ip}:{port}/{path}", timeout=2) as resp:
                return resp.status, {"_text": resp.read().decode()}
        except (URLError, OSError) as exc:
            return 503, _status(503, "ServiceUnavailable", f"error trying to reach service: {exc}")

    def _pod_phases(self) -> None:
        for key, proc in self.procs.items():
            code = proc.poll()
            if code is not None and key in self.pods:
                self.pods[key]["status"]["phase"] = "Succeeded" if code == 0 else "Failed"

    def stop_processes(self) -> None:
        for proc in self.procs.values():
            _stop(proc)

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

    def _create_pod(self, ns: str, obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A created pod runs at once. An actuator pod (label chaos.io/actuator=etcd-kill) on a
        control-plane node kills that node's etcd, as its `kill -9` would."""
        denied = self._deny("create", "pods", ns)
        if denied:
            return denied
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or f"{meta.get('generateName', 'pod-')}{uuid.uuid4().hex[:5]}"
        meta.update(name=name, namespace=ns, uid=str(uuid.uuid4()), resourceVersion=str(next(self._rv)))
        obj["status"] = {"phase": "Running"}
        if meta.get("labels", {}).get("chaos.io/actuator") == "etcd-kill":
            node = obj.get("spec", {}).get("nodeName", "")
            for member in self.etcd.members:
                if self.pods.get(("kube-system", member), {}).get("spec", {}).get("nodeName") == node:
                    self.etcd.kill(member)
            obj["status"] = {"phase": "Succeeded"}
        role = meta.get("labels", {}).get("chaos.io/role")
        if role == "netprobe":
            obj["status"] = {"phase": self._run_probe(ns, obj)}
        if role == "claim-fill":  # dd wrote until ENOSPC: the readiness probe passes
            obj["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        if obj["spec"]["containers"][0].get("command", [""])[0] == "locust":
            self._run_locust(ns, obj)
        self.pods[(ns, name)] = obj
        return 201, obj

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

    def _delete_pod(self, ns: str, name: str) -> tuple[int, dict[str, Any]]:
        pod = self.pods.pop((ns, name))
        if (ns, name) in self.procs:
            _stop(self.procs[(ns, name)])  # the kubelet stops the container
        self._event(ns, "Pod", name, "Killing", f"Stopping container {name}")
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
                stream = emulator.watch(self.path) if self.command == "GET" else None
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
                status, payload = emulator.handle(self.command, self.path, self.rfile.read(length))
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
            self.stop_processes()
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s, as a kubelet stops a container (a process we started)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
