"""Kubernetes events on the experiment's timeline: one watch per namespace of the blast
radius, each event a note ("k8s: Killing pod shop/gateway-x: ..."), so the report shows what
the cluster did around each fault."""

from __future__ import annotations

import threading
from typing import Any

from chaos.kube.connect import Cluster
from chaos.timeline import Timeline

WATCH_S = 1  # each watch request's server-side timeout: how soon a stop is noticed


class EventRecorder:
    def __init__(self, cluster: Cluster, namespaces: tuple[str, ...], timeline: Timeline) -> None:
        self.cluster, self.namespaces, self.timeline = cluster, namespaces, timeline
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.recorded = 0

    def start(self) -> EventRecorder:
        for ns in self.namespaces:
            t = threading.Thread(target=self._watch, args=(ns,), name=f"k8s-events:{ns}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=WATCH_S + 5)

    def _watch(self, namespace: str) -> None:
        from kubernetes import watch as untyped_watch

        watch: Any = untyped_watch  # the watch helper is untyped
        since = ""
        while not self._stop.is_set():
            try:
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
            except Exception as exc:  # noqa: BLE001  events are context for the report; a failed watch must not fail the experiment
                self.timeline.note("k8s events unavailable", namespace=namespace, error=str(exc)[:200])
                self._stop.wait(1.0)
