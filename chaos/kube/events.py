"""Kubernetes events on the experiment's timeline: one watch per namespace of the blast
radius, each event a note ("k8s: Killing pod shop/gateway-x: ..."), so the report shows what
the cluster did around each fault."""

from __future__ import annotations

import threading
from typing import Any

from chaos.kube.connect import Cluster
from chaos.timeline import Timeline

RIGHTS = (("list", "events"), ("watch", "events"))  # what recording them needs (deploy/rbac.yaml)
WATCH_S = 1  # each watch request's server-side timeout: how soon a stop is noticed


class EventRecorder:
    def __init__(self, cluster: Cluster, namespaces: tuple[str, ...], timeline: Timeline) -> None:
        self.cluster, self.namespaces, self.timeline = cluster, namespaces, timeline
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.recorded = 0

    def start(self) -> EventRecorder:
        """Record every event from now on (each namespace listed here, before returning)."""
        for ns in self.namespaces:
            try:
                since = self._now(ns)
            except Exception as exc:  # noqa: BLE001  as below: context, never a failure
                self.timeline.note("k8s events unavailable", namespace=ns, error=str(exc)[:200])
                since = ""
            t = threading.Thread(target=self._watch, args=(ns, since), name=f"k8s-events:{ns}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=WATCH_S + 5)

    def _now(self, namespace: str) -> str:
        listed = self.cluster.core.list_namespaced_event(namespace, limit=1, _request_timeout=5)
        return str(listed.metadata.resource_version or "")

    def _watch(self, namespace: str, since: str) -> None:
        """List once for a resourceVersion (so events from before the run are not replayed as
        new), then watch from it. A watch the server can no longer resume (410 Gone: the
        version left its window, which a quiet namespace's last event does within minutes) starts
        again from a fresh list, saying that events in between may be missing."""
        from kubernetes import watch as untyped_watch
        from kubernetes.client.exceptions import ApiException

        watch: Any = untyped_watch  # the watch helper is untyped
        while not self._stop.is_set():
            try:
                since = since or self._now(namespace)
                stream = watch.Watch().stream(
                    self.cluster.core.list_namespaced_event,
                    namespace,
                    timeout_seconds=WATCH_S,
                    resource_version=since or None,
                )
                for event in stream:
                    obj = event["object"]
                    since = obj.metadata.resource_version or since
                    involved = obj.involved_object
                    self.timeline.note(
                        "k8s",
                        reason=obj.reason,
                        object=f"{(involved.kind or '').lower()} {namespace}/{involved.name}",
                        message=obj.message,
                        cluster=self.cluster.role,
                    )
                    self.recorded += 1
                    if self._stop.is_set():
                        return
            except ApiException as exc:
                if exc.status != 410:
                    self._unavailable(namespace, exc)
                    continue
                self.timeline.note(
                    "k8s events resumed",
                    namespace=namespace,
                    why=f"the watch from version {since} expired (410 Gone); events between may be missing",
                )
                since = ""
            except Exception as exc:  # noqa: BLE001  events are context for the report; a failed watch must not fail the experiment
                self._unavailable(namespace, exc)

    def _unavailable(self, namespace: str, exc: BaseException) -> None:
        self.timeline.note("k8s events unavailable", namespace=namespace, error=str(exc)[:200])
        self._stop.wait(1.0)
