"""The objects the framework creates on a cluster (pods, ConfigMaps, NetworkPolicies, Chaos
Mesh experiments), created and deleted one way: each creation is journaled first with what
deletes it, carries the managed label and its expiry, and is reaped once expired."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.context import RunContext
from chaos.errors import PlatformError, RollbackError
from chaos.journal import Entry, register_undo, undo_steps
from chaos.kube.connect import Cluster, NotFound, locator, reconnect
from chaos.kube.masters import MANAGED
from chaos.wait import WaitTimeout, wait_until

DELETE = "kube.object.delete"


@dataclass(frozen=True)
class Kind:
    name: str
    resource: str  # the plural RBAC grants on
    api: str  # core, networking or custom
    snake: str = ""  # the client's method suffix (core and networking)
    group: str = ""
    version: str = "v1"


KINDS = {
    k.name: k
    for k in (
        Kind("Pod", "pods", "core", "pod"),
        Kind("ConfigMap", "configmaps", "core", "config_map"),
        Kind("NetworkPolicy", "networkpolicies", "networking", "network_policy", "networking.k8s.io"),
        Kind("NetworkChaos", "networkchaos", "custom", group="chaos-mesh.org", version="v1alpha1"),
        Kind("IOChaos", "iochaos", "custom", group="chaos-mesh.org", version="v1alpha1"),
    )
}
VERBS = ("create", "get", "delete", "list")


def _api(cluster: Cluster, kind: Kind) -> Any:
    from kubernetes import client

    if kind.api == "core":
        return cluster.core
    if kind.api == "networking":
        return client.NetworkingV1Api(cluster.api)
    return client.CustomObjectsApi(cluster.api)


def _method(cluster: Cluster, kind: Kind, verb: str) -> tuple[Any, tuple[Any, ...]]:
    """The client method for ``verb`` on ``kind`` and the arguments it takes before the namespace."""
    api = _api(cluster, kind)
    if kind.api == "custom":
        return getattr(api, f"{verb}_namespaced_custom_object"), (kind.group, kind.version)
    return getattr(api, f"{verb}_namespaced_{kind.snake}"), ()


def create(cluster: Cluster, kind_name: str, namespace: str, body: dict[str, Any]) -> Any:
    kind = KINDS[kind_name]
    fn, lead = _method(cluster, kind, "create")
    if kind.api == "custom":
        return cluster.call("create", kind.resource, namespace, fn, *lead, namespace, kind.resource, body)
    return cluster.call("create", kind.resource, namespace, fn, namespace, body)


def get(cluster: Cluster, kind_name: str, namespace: str, name: str) -> Any:
    kind = KINDS[kind_name]
    fn, lead = _method(cluster, kind, "get" if kind.api == "custom" else "read")
    if kind.api == "custom":
        return cluster.call("get", kind.resource, namespace, fn, *lead, namespace, kind.resource, name)
    return cluster.call("get", kind.resource, namespace, fn, name, namespace)


def delete(cluster: Cluster, kind_name: str, namespace: str, name: str, *, grace: int | None = None) -> bool:
    """Delete it; False if it was already gone (an earlier undo, the reaper)."""
    kind = KINDS[kind_name]
    fn, lead = _method(cluster, kind, "delete")
    extra = {} if grace is None else {"grace_period_seconds": grace}
    try:
        if kind.api == "custom":
            cluster.call("delete", kind.resource, namespace, fn, *lead, namespace, kind.resource, name)
        else:
            cluster.call("delete", kind.resource, namespace, fn, name, namespace, **extra)
    except NotFound:
        return False
    return True


def list_managed(cluster: Cluster, kind_name: str, namespace: str) -> list[dict[str, Any]]:
    """The framework's own objects of ``kind`` in ``namespace``: name and annotations."""
    kind = KINDS[kind_name]
    fn, lead = _method(cluster, kind, "list")
    selector = f"{MANAGED}=true"
    if kind.api == "custom":
        listed = cluster.call(
            "list", kind.resource, namespace, fn, *lead, namespace, kind.resource, label_selector=selector
        )
        return [
            {"name": o["metadata"]["name"], "annotations": o["metadata"].get("annotations") or {}}
            for o in listed.get("items", [])
        ]
    listed = cluster.call("list", kind.resource, namespace, fn, namespace, label_selector=selector)
    return [{"name": o.metadata.name, "annotations": o.metadata.annotations or {}} for o in listed.items]


def await_gone(cluster: Cluster, kind_name: str, namespace: str, name: str, *, grace: int | None) -> None:
    """Wait until a deleted object is gone, not merely Terminating: a pod keeps running (and
    serving, loading, filling) through its grace period, and a finalizer can hold any object.
    Waits the grace period (30 s when not given) and 10 s more, then says what holds it."""
    seen: dict[str, Any] = {}

    def gone() -> bool:
        try:
            seen["obj"] = get(cluster, kind_name, namespace, name)
        except NotFound:
            return True
        return False

    within = (30 if grace is None else grace) + 10.0
    try:
        wait_until(gone, timeout=within, interval=0.1, what=f"{kind_name} {namespace}/{name} to be gone")
    except WaitTimeout as exc:
        obj = seen.get("obj")
        meta = obj.get("metadata", {}) if isinstance(obj, dict) else getattr(obj, "metadata", None)
        finalizers = (
            meta.get("finalizers") if isinstance(meta, dict) else getattr(meta, "finalizers", None)
        ) or []
        held = f"its finalizers {finalizers} hold it" if finalizers else "it is still Terminating"
        raise PlatformError(
            f"{kind_name} {namespace}/{name} on {cluster.role} was deleted but is still there after "
            f"{within:g} s: {held}; its journal entry stays, so `chaos recover` tries again"
        ) from exc


@register_undo(DELETE)
def _delete(undo: dict[str, Any]) -> None:
    cluster = reconnect(undo)
    kind, ns, name, grace = undo["kind"], undo["namespace"], undo["name"], undo.get("grace")
    if delete(cluster, kind, ns, name, grace=grace) and kind == "Pod":
        await_gone(cluster, kind, ns, name, grace=grace)


class Journaling(Protocol):
    def journaled(self, kind: str, undo: dict[str, Any], description: str) -> None: ...


@dataclass
class Owned:
    """Objects that are not a fault (a distributed load's pods) journaled the same way: each
    undo is recorded before its creation and run, newest first, by ``release``."""

    ctx: RunContext
    steps: list[Entry] = field(default_factory=list)

    def journaled(self, kind: str, undo: dict[str, Any], description: str) -> None:
        self.steps.append(self.ctx.journal.add(kind, undo, description, ttl=self.ctx.fault_ttl))

    def release(self) -> None:
        failures = undo_steps(self.ctx.journal, self.steps)
        if failures:
            raise RollbackError(
                f"{len(failures)} object(s) could not be deleted and remain in the journal: {failures[0]}; "
                "run `chaos recover`"
            )


def create_journaled(
    fault: Journaling,
    cluster: Cluster,
    kind: str,
    namespace: str,
    body: dict[str, Any],
    *,
    grace: int | None = None,
) -> Any:
    """Journal how to delete the object, then create it: a crash in between leaves an undo
    that finds nothing, never an object nobody knows about."""
    name = body["metadata"]["name"]
    undo = {**locator(cluster), "kind": kind, "namespace": namespace, "name": name, "grace": grace}
    fault.journaled(DELETE, undo, f"delete {kind} {namespace}/{name} on {cluster.role}")
    return create(cluster, kind, namespace, body)
