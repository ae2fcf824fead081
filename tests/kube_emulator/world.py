"""The cluster's objects and the controllers that move them: pods, deployments and their
ReplicaSet controller, statefulsets, claims, nodes, HPAs, PDBs, etcd's members and watches."""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.kube_emulator.answers import WRITES, status_body
from tests.kube_emulator.etcd import EtcdSim
from tests.kube_emulator.images import Images
from tests.kube_emulator.selectors import field_problem, label_problem, matches_fields, matches_labels


class World(Images):
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
        self.pod_start_s = 0.3  # seconds a created pod is Pending (scheduling, image pull)
        self.stuck_terminating = False
        self.terminating_s = 0.3  # the longest a deleted pod stays Terminating (its grace, capped)
        self.controller_s = 0.05  # how long the ReplicaSet controller takes to act on a change
        self.placement = "spread"  # where the scheduler puts a deployment's pods (see _schedule)
        self.registry: tuple[str, str] | None = None  # the deployment serving images (see images.py)
        self.images: dict[str, set[str]] = {}  # node -> images cached there
        self.progress_deadline_s = 600.0  # a Deployment's progressDeadlineSeconds
        self.rollout_started: dict[tuple[str, str], float] = {}
        self.changed = threading.Condition(threading.RLock())
        self.etcd = EtcdSim()
        self.denied: set[tuple[str, str, str]] = set()  # (verb, resource, namespace)
        self.requests: list[tuple[str, str]] = []
        self._rv = itertools.count(1)
        self.throttle = 0  # the next requests API priority and fairness rejects (429, Retry-After: 1)
        self.throttle_methods = {"GET", "POST", "PATCH", "DELETE"}
        self.compacted_rv = 0  # a watch from an older resourceVersion is answered 410 Gone
        self.watch_drop_s: float | None = None  # the server ends every watch after this long
        self.watches: list[dict[str, str]] = []  # the query of each deployment/statefulset watch
        self.gone = 0  # watches answered 410 Gone
        self.bookmarks = True  # sent where asked for (a server may send none: they are a hint)
        self._ips = itertools.count(2)
        self._loopback = itertools.count(0)
        self.cni = "enforcing"  # or "none": policies stored, never enforced (flannel)
        self.chaos_mesh = False
        self.chaos_mesh_delay = 0.2  # seconds its controller takes to select and inject
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
        image: str = "workload",
        pull_policy: str = "IfNotPresent",
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
                            "image": image,
                            "imagePullPolicy": pull_policy,
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
        image: str = "workload",
        pull_policy: str = "IfNotPresent",
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
                        "spec": {
                            "containers": [{"name": "main", "image": image, "imagePullPolicy": pull_policy}]
                        },
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
                "spec": {},
                "status": {"allocatable": {"cpu": f"{cpu_millis}m", "memory": "8Gi", "pods": "110"}},
            }

    def _schedule(self, owner: str) -> str | None:
        """Where a new pod of ``owner`` goes: without nodes, node-1 (the emulator's default);
        else, of the nodes not cordoned, the one with fewest of the owner's pods ("spread", as
        a topology spread constraint or anti-affinity makes it), or only the first node
        ("packed", as a nodeSelector pinning every replica to one host). None: nowhere (Pending)."""
        if not self.nodes:
            return "node-1"
        names = sorted(self.nodes)
        if self.placement == "packed":
            names = names[:1]
        free = [n for n in names if not self.nodes[n].get("spec", {}).get("unschedulable")]
        if not free:
            return None

        def load(node: str) -> int:
            return sum(
                1
                for p in self.active()
                if p["spec"].get("nodeName") == node
                and (p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == owner
            )

        return min(free, key=lambda n: (load(n), n))

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

    def add_pdb(
        self,
        ns: str,
        name: str,
        selector: dict[str, str],
        min_available: int | str | None = None,
        *,
        max_unavailable: int | str | None = None,
    ) -> None:
        """A PodDisruptionBudget: ``min_available`` or ``max_unavailable``, a count or "N%"."""
        with self.lock:
            self.pdbs[(ns, name)] = {
                "name": name,
                "selector": {"matchLabels": selector},
                "minAvailable": min_available,
                "maxUnavailable": max_unavailable,
            }

    def _reconcile_later(self, ns: str, name: str) -> None:
        """The ReplicaSet controller acts on a change asynchronously, as a real one does from
        its watch: ``controller_s`` later."""
        if self.controller_s <= 0:
            self._reconcile(ns, name)
            return

        def act() -> None:
            with self.lock:
                if (ns, name) in self.deployments:
                    self._reconcile(ns, name)

        threading.Timer(self.controller_s, act).start()

    def _reconcile(self, ns: str, name: str) -> None:
        """The ReplicaSet controller: as many active pods (not Terminating) as the spec asks;
        the surplus is deleted with its grace period. A new image in the template is rolled
        out first (see images.py)."""
        dep = self.deployments[(ns, name)]
        labels = dep["spec"]["selector"]["matchLabels"]
        want = dep["spec"]["replicas"]
        rolling = self._roll(ns, name)
        mine = self._owned(ns, name)
        # scaling down, a ReplicaSet deletes first the pods sharing a node with most of their
        # siblings (and unscheduled ones before all): what is left stays spread
        on_node: dict[str, int] = {}
        for k in mine:
            node = self.pods[k]["spec"].get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1

        def rank(k: tuple[str, str]) -> tuple[bool, int, tuple[str, str]]:
            node = self.pods[k]["spec"].get("nodeName") or ""
            return (bool(node), -on_node[node], k)

        if not rolling:
            surplus = sorted(mine, key=rank)[: max(0, len(mine) - want)]
            mine = [k for k in mine if k not in surplus]
            for key in surplus:
                self._delete_pod(*key)  # type: ignore[attr-defined]  # the Emulator's
        for key in mine:  # a pod that waited for room (Pending) gets a node once one frees
            pod = self.pods[key]
            if not pod["spec"].get("nodeName") and (node := self._schedule(name)) is not None:
                pod["spec"]["nodeName"] = node
                pod["status"].update(phase="Running", conditions=[{"type": "Ready", "status": "True"}])
                self._start_image(pod)
        for _ in range(0 if rolling else want - len(mine)):
            self._add_replica(ns, name, labels)
        ready = min(dep.get("status", {}).get("readyReplicas", 0), want) if self.ready_delay else want
        # a pod no node took, or waiting on its image, is not ready, whatever else holds
        ready = min(ready, self._ready_pods(ns, name))
        if self.stuck_terminating:  # the removed pods hang in Terminating and still count as ready
            ready = max(ready, dep.get("status", {}).get("readyReplicas", 0))
        starting = rolling and (ns, name) not in self.rollout_started
        dep["status"] = {
            "replicas": want,
            "readyReplicas": ready,
            "availableReplicas": ready,
            **self._rollout_status(ns, name, self._updated(ns, name), not rolling),
        }
        dep["metadata"]["resourceVersion"] = str(next(self._rv))
        if ready < want:
            threading.Timer(self.ready_delay, self._become_ready, (ns, name)).start()
        if starting:  # the deadline passing changes the status: look again then, once
            deadline = threading.Timer(self.progress_deadline_s + 0.05, self._reconcile_later, (ns, name))
            deadline.daemon = True  # never keeps a finished test's process waiting
            deadline.start()
        with self.changed:
            self.changed.notify_all()
        for other in self._retry_pulls():
            self._reconcile(*other)

    def _add_replica(self, ns: str, name: str, labels: dict[str, str]) -> None:
        container = self._template(ns, name)
        spec = {**self.pod_specs.get((ns, name), {}), "image": container["image"]}
        spec["pull_policy"] = container.get("imagePullPolicy", "IfNotPresent")
        pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
        node = self._schedule(name)
        if node is None:  # no node takes it: Pending, not ready, until one does
            self.add_pod(ns, pod_name, labels, owner=name, node="", phase="Pending", **spec)
            self.pods[(ns, pod_name)]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
            return
        pod = self.add_pod(ns, pod_name, labels, owner=name, node=node, **spec)
        self._start_image(pod)
        self._event(ns, "ReplicaSet", f"{name}-rs", "SuccessfulCreate", f"Created pod: {pod_name}")

    def _image_of(self, key: tuple[str, str]) -> str:
        image: str = self.pods[key]["spec"]["containers"][0]["image"]
        return image

    def _updated(self, ns: str, name: str) -> int:
        image = self._template(ns, name)["image"]
        return sum(1 for k in self._owned(ns, name) if self._image_of(k) == image)

    def _ready_pods(self, ns: str, name: str) -> int:
        return sum(
            1
            for k in self._owned(ns, name)
            if self.pods[k]["spec"].get("nodeName") and self.is_ready(self.pods[k])
        )

    def _roll(self, ns: str, name: str) -> bool:
        """One step of a rollout (maxSurge 1, maxUnavailable 0), repeated while it makes
        progress; True while pods of another version are left."""
        want = self.deployments[(ns, name)]["spec"]["replicas"]
        image = self._template(ns, name)["image"]
        while True:
            mine = self._owned(ns, name)
            old = [k for k in mine if self._image_of(k) != image]
            if not old:
                return False
            recreate = self.deployments[(ns, name)]["spec"].get("strategy", {}).get("type") == "Recreate"
            # a Recreate rollout takes every old replica away first; otherwise one that is not
            # ready serves nothing and goes at once
            for k in [k for k in old if recreate or not self.is_ready(self.pods[k])]:
                self._delete_pod(*k, grace=0)  # type: ignore[attr-defined]
            mine = self._owned(ns, name)
            old = [k for k in mine if self._image_of(k) != image]
            new = [k for k in mine if self._image_of(k) == image]
            ready_new = [k for k in new if self.is_ready(self.pods[k])]
            # an old replica goes only when a new one is ready in its place
            for k in old[: max(0, len(old) + len(ready_new) - want)]:
                self._delete_pod(*k)  # type: ignore[attr-defined]
            old = old[max(0, len(old) + len(ready_new) - want) :]
            if not old:
                return False
            room = min(want + 1 - len(old) - len(new), want - len(new))
            if room <= 0:
                return True
            for _ in range(room):
                self._add_replica(ns, name, self.deployments[(ns, name)]["spec"]["selector"]["matchLabels"])

    def _owned(self, ns: str, name: str) -> list[tuple[str, str]]:
        """The deployment's pods that are not being deleted."""
        return sorted(
            k
            for k, p in self.pods.items()
            if (p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == name
            and k[0] == ns
            and not p["metadata"].get("deletionTimestamp")
        )

    def _become_ready(self, ns: str, name: str) -> None:
        with self.lock:
            dep = self.deployments[(ns, name)]
            want = dep["spec"]["replicas"]
            ready = min(want, self._ready_pods(ns, name))
            dep["status"].update(readyReplicas=ready, availableReplicas=ready, replicas=want)
            dep["metadata"]["resourceVersion"] = str(next(self._rv))
            for other in self._retry_pulls():
                self._reconcile(*other)
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
            pod["spec"]["hostNetwork"] = True
            metrics = "0.0.0.0" if self.etcd.metrics_exposed else "127.0.0.1"
            pod["spec"]["containers"] = [
                {
                    "name": "etcd",
                    "image": "registry.k8s.io/etcd:3.5.15-0",
                    "command": [  # as kubeadm writes it
                        "etcd",
                        f"--name=node-{i}",
                        "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
                        "--key-file=/etc/kubernetes/pki/etcd/server.key",
                        "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
                        "--client-cert-auth=true",
                        f"--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.{i}:2379",
                        f"--listen-metrics-urls=http://{metrics}:2381",
                    ],
                }
            ]

    def _etcd_status(self, pod: dict[str, Any]) -> None:
        member = pod["metadata"]["name"]
        if member in self.etcd.members:
            ready = self.etcd.alive(member)
            pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
            restarts = self.etcd.restarts[member]
            pod["status"]["containerStatuses"] = [
                {
                    "name": "etcd",
                    "ready": ready,
                    "restartCount": restarts,
                    "state": {"running": {}} if ready else {"waiting": {"reason": "CrashLoopBackOff"}},
                    "image": "registry.k8s.io/etcd:3.5.15-0",
                    "imageID": "",
                    "containerID": f"containerd://{member}-{restarts}",
                }
            ]

    def _etcd_metrics(self, target: str) -> tuple[int, dict[str, Any]]:
        """The API server's pod proxy to etcd's metrics port (``etcd-node-1:2381``)."""
        member = target.split(":", 1)[0]
        if member not in self.etcd.members:
            return 404, status_body(404, "NotFound", f'pods "{member}" not found')
        if not self.etcd.alive(member) or not self.etcd.metrics_exposed:
            return 503, status_body(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {member}:2381: connect: connection refused",
            )
        leader = self.etcd.current_leader()
        text = f"etcd_server_has_leader {int(leader is not None)}\n"
        text += f"etcd_server_is_leader {int(leader == member)}\n"
        return 200, {"_text": text}

    def _configmaps(  # noqa: PLR0911  one return per answer, as the API's own table reads
        self, method: str, ns: str, rest: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """ConfigMaps, stored in the emulated etcd: no leader, no write."""
        if method == "POST" and not rest:
            if self.etcd.current_leader() is None:
                # the API server's etcd client gave up waiting for a leader (await_leader)
                return 504, status_body(504, "Timeout", "etcdserver: request timed out")
            obj = json.loads(body)
            meta = obj.setdefault("metadata", {})
            if (ns, meta.get("name")) in self.configmaps:
                return 409, status_body(409, "AlreadyExists", f'configmaps "{meta["name"]}" already exists')
            meta.update(uid=str(uuid.uuid4()), namespace=ns, resourceVersion=str(next(self._rv)))
            self.configmaps[(ns, meta["name"])] = obj
            self.etcd.acknowledged((ns, meta["name"]))
            self.etcd.raft_index += 1
            return 201, obj
        if method == "GET" and not rest:
            if self.etcd.current_leader() is None:
                return 504, status_body(504, "Timeout", "etcdserver: request timed out")
            items = [
                c
                for (cns, _), c in sorted(self.configmaps.items())
                if cns == ns
                and matches_labels(c["metadata"].get("labels", {}), query.get("labelSelector", ""))
            ]
            return 200, {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": items}
        if method == "DELETE" and rest:
            obj = self.configmaps.pop((ns, rest[0]), None)
            return (
                (200, obj)
                if obj
                else (404, status_body(404, "NotFound", f'configmaps "{rest[0]}" not found'))
            )
        return 405, status_body(405, "MethodNotAllowed", method)

    def bad_selector(self, raw_path: str) -> dict[str, Any] | None:
        """The 400 a real API server gives a list or watch whose label selector does not parse
        or whose field selector names a field the resource does not index."""
        url = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        resource = url.path.rstrip("/").rsplit("/", 1)[-1]
        problem = label_problem(query.get("labelSelector", "")) or field_problem(
            resource, query.get("fieldSelector", "")
        )
        return status_body(400, "BadRequest", problem) if problem else None

    def throttled(self, method: str) -> bool:
        """Whether API priority and fairness rejects this request: the next ``throttle``
        requests of a method in ``throttle_methods`` are."""
        with self.lock:
            if self.throttle > 0 and method in self.throttle_methods:
                self.throttle -= 1
                self.requests.append((method, "429"))
                return True
        return False

    def await_leader(self, method: str, raw_path: str) -> None:
        """A write reaching etcd while it has no leader waits for one (up to the API server's
        etcd request timeout, ``etcd.write_wait_s``) and then commits: the client may have given up
        on a write that is stored. Called outside the lock, before ``handle``."""
        if method != "POST" or not urlsplit(raw_path).path.endswith("/configmaps"):
            return
        deadline = time.monotonic() + self.etcd.write_wait_s
        while self.etcd.current_leader() is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def watch(self, raw_path: str) -> Iterator[dict[str, Any]] | tuple[int, dict[str, Any]] | None:
        """A watch (``?watch=true``) of events, deployments or statefulsets; None when the
        request is not one, ``(status, body)`` when RBAC refuses it. Deployments and statefulsets
        as a real server streams them: from no ``resourceVersion``, ADDED for what matches now;
        from a version, the changes after it (MODIFIED), or one ERROR 410 when it was compacted
        away; BOOKMARKs while quiet when the client allows them; the stream ends at
        ``timeoutSeconds`` or, as a restarting API server or an idle proxy ends it, after
        ``watch_drop_s``."""
        url = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        if query.get("watch") not in ("true", "1"):
            return None
        if parts[:2] == ["api", "v1"] and parts[4:] == ["events"]:
            return self._watch_events(
                parts[3], url.path, float(query.get("timeoutSeconds", 30)), query.get("resourceVersion", "")
            )
        if parts[:3] != ["apis", "apps", "v1"] or parts[5:] not in (["deployments"], ["statefulsets"]):
            return None
        store = self.deployments if parts[5] == "deployments" else self.statefulsets
        ns, selector, since = parts[4], query.get("fieldSelector", ""), query.get("resourceVersion", "")
        self.requests.append(("GET", url.path))
        self.watches.append(query)
        denied = self._deny("watch", parts[5], ns, "apps")  # type: ignore[attr-defined]  # the Emulator's
        if denied:
            return denied
        lasts = float(query.get("timeoutSeconds", 30))
        if self.watch_drop_s is not None:
            lasts = min(lasts, self.watch_drop_s)
        deadline = time.monotonic() + lasts
        bookmarks = self.bookmarks and query.get("allowWatchBookmarks") in ("true", "1")
        kind = "Deployment" if parts[5] == "deployments" else "StatefulSet"

        def events() -> Iterator[dict[str, Any]]:
            if since not in ("", "0") and int(since) < self.compacted_rv:
                gone = status_body(410, "Expired", f"too old resource version: {since} ({self.compacted_rv})")
                self.gone += 1
                yield {"type": "ERROR", "object": gone}
                return
            seen: dict[str, str] = {}
            after = int(since) if since not in ("", "0") else None
            while time.monotonic() < deadline:
                with self.lock:
                    current = [
                        json.loads(json.dumps(d))
                        for (dns, _), d in sorted(store.items())
                        if dns == ns and matches_fields(d, selector)
                    ]
                    now = str(next(self._rv))
                sent = False
                for d in current:
                    name, rv = d["metadata"]["name"], d["metadata"]["resourceVersion"]
                    if after is not None and name not in seen:
                        seen[name] = rv if int(rv) <= after else ""  # what the client already had
                    if seen.get(name) != rv:
                        yield {"type": "MODIFIED" if name in seen else "ADDED", "object": d}
                        seen[name], sent = rv, True
                if bookmarks and not sent:
                    yield {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": kind,
                            "apiVersion": "apps/v1",
                            "metadata": {"resourceVersion": now},
                        },
                    }
                with self.changed:
                    self.changed.wait(timeout=max(0.0, min(0.2, deadline - time.monotonic())))

        return events()

    def _watch_events(self, ns: str, path: str, timeout: float, since: str) -> Iterator[dict[str, Any]]:
        """Events after resourceVersion ``since`` (every one when it is empty), or ``410 Gone``
        when ``since`` is older than the watch window (``compact()``), as a real server ends a
        watch it cannot resume."""
        self.requests.append(("GET", path))
        deadline = time.monotonic() + timeout

        def events() -> Iterator[dict[str, Any]]:
            last = int(since or 0)
            if since and last < self.compacted_rv:
                gone = status_body(410, "Expired", f"too old resource version: {since} ({self.compacted_rv})")
                yield {"type": "ERROR", "object": gone}
                return
            while time.monotonic() < deadline:
                with self.lock:
                    fresh = [
                        e
                        for e in self.events
                        if e["metadata"]["namespace"] == ns and int(e["metadata"]["resourceVersion"]) > last
                    ]
                for e in fresh:
                    last = max(last, int(e["metadata"]["resourceVersion"]))
                    yield {"type": "ADDED", "object": e}
                with self.changed:
                    self.changed.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))

        return events()

    def compact(self) -> None:
        """etcd compacted and the watch cache moved on: a watch from any version until now is
        answered 410 Gone."""
        with self.lock:
            self.compacted_rv = next(self._rv)

    def list_events(self, ns: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            items = [e for e in self.events if e["metadata"]["namespace"] == ns]
            rv = str(next(self._rv))
        return 200, {
            "apiVersion": "v1",
            "kind": "EventList",
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in WRITES]
