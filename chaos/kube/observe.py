"""Observing a cluster's capacity and recovery: a deployment's readiness by watch (one
request, no polling), HorizontalPodAutoscaler status, pending pods, node allocatable CPU
against what pods request, and the reserve held by placeholder pods (pods of a negative
PriorityClass, which real workloads preempt)."""

from __future__ import annotations

from typing import Any

from chaos.errors import ConfigError, PlatformError
from chaos.kube.connect import Cluster


def cpu_millis(quantity: str | None) -> int:
    """Kubernetes CPU quantity ("250m", "2", "0.5") in millicores."""
    if not quantity:
        return 0
    q = str(quantity)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


# what wait_ready watches, by kind: the resource RBAC grants on and the client's list method
WATCHED = {
    "deployment": ("deployments", "list_namespaced_deployment"),
    "statefulset": ("statefulsets", "list_namespaced_stateful_set"),
}
RIGHTS = tuple((verb, resource) for resource, _ in WATCHED.values() for verb in ("list", "watch"))


def wait_ready(
    cluster: Cluster, namespace: str, name: str, *, kind: str = "deployment", timeout: float = 60.0
) -> float:
    """Seconds until the deployment or statefulset ``name`` has all its replicas ready,
    watched (not polled), across watches the server ends early."""
    if kind not in WATCHED:
        raise ConfigError(f"wait_ready(kind={kind!r}): use deployment or statefulset")
    resource, method = WATCHED[kind]
    start = cluster.monotonic()
    lister = getattr(cluster.apps, method)
    events = cluster.watch(
        resource, namespace, lister, namespace, until=start + timeout, field_selector=f"metadata.name={name}"
    )
    for event in events:
        obj = event["object"]
        want = obj.spec.replicas or 0
        if event["type"] != "DELETED" and (obj.status.ready_replicas or 0) >= want:
            return cluster.monotonic() - start
    raise PlatformError(f"{kind} {namespace}/{name} on {cluster.role} not ready within {timeout:g} s")


def hpa(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes import client

    api = client.AutoscalingV2Api(cluster.api)
    h: Any = cluster.call(
        "get",
        "horizontalpodautoscalers",
        namespace,
        api.read_namespaced_horizontal_pod_autoscaler,
        name,
        namespace,
    )
    return {
        "current": h.status.current_replicas,
        "desired": h.status.desired_replicas,
        "min": h.spec.min_replicas,
        "max": h.spec.max_replicas,
    }


def capacity(cluster: Cluster) -> dict[str, Any]:
    """CPU the nodes can give, what running pods request, what placeholder pods hold in
    reserve, what is free, and how many pods wait for room (Pending)."""
    from kubernetes import client

    core = cluster.core
    nodes = cluster.call("list", "nodes", "-", core.list_node).items
    allocatable = sum(cpu_millis((n.status.allocatable or {}).get("cpu")) for n in nodes)
    classes = client.SchedulingV1Api(cluster.api)
    classes_listed: Any = cluster.call("list", "priorityclasses", "-", classes.list_priority_class)
    negative = {pc.metadata.name for pc in classes_listed.items if pc.value < 0}
    pods = cluster.call(
        "list", "pods", "-", core.list_pod_for_all_namespaces, field_selector="status.phase=Running"
    ).items
    pending = cluster.call(
        "list", "pods", "-", core.list_pod_for_all_namespaces, field_selector="status.phase=Pending"
    ).items

    def requested(p: Any) -> int:
        return sum(
            cpu_millis(((c.resources and c.resources.requests) or {}).get("cpu")) for c in p.spec.containers
        )

    reserve = sum(requested(p) for p in pods if p.spec.priority_class_name in negative)
    used = sum(requested(p) for p in pods if p.spec.priority_class_name not in negative)
    free = allocatable - used - reserve
    return {
        "allocatable_mcpu": allocatable,
        "used_mcpu": used,
        "reserve_mcpu": reserve,
        "free_mcpu": free,
        "headroom": (free + reserve) / allocatable if allocatable else 0.0,
        "reserve": reserve / allocatable if allocatable else 0.0,
        "pending": len(pending),
        "nodes": len(nodes),
    }


def scaled(cluster: Cluster, namespace: str, deployment: str) -> dict[str, Any]:
    """The autoscaled workload: ``ready`` replicas, and its HPA's (same name) status if any."""
    from chaos.kube.connect import NotFound

    apps = cluster.apps
    dep = cluster.call(
        "get", "deployments", namespace, apps.read_namespaced_deployment, deployment, namespace
    )
    out: dict[str, Any] = {
        "ready": int(dep.status.ready_replicas or 0),
        "replicas": int(dep.spec.replicas or 0),
    }
    try:
        out["hpa"] = hpa(cluster, namespace, deployment)
    except NotFound:
        out["hpa"] = None
    return out


def node_names(cluster: Cluster) -> list[str]:
    return sorted(n.metadata.name for n in cluster.call("list", "nodes", "-", cluster.core.list_node).items)


def placement(cluster: Cluster, namespace: str, deployment: str) -> dict[str, list[str]]:
    """Every node of the cluster, each with the deployment's pods that are ready there now
    (not being deleted): the spread its anti-affinity and topology constraints left."""
    dep = cluster.call(
        "get", "deployments", namespace, cluster.apps.read_namespaced_deployment, deployment, namespace
    )
    selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
    listed = cluster.call(
        "list", "pods", namespace, cluster.core.list_namespaced_pod, namespace, label_selector=selector
    )
    placed: dict[str, list[str]] = {name: [] for name in node_names(cluster)}

    def ready(p: Any) -> bool:
        return p.metadata.deletion_timestamp is None and any(
            c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])
        )

    for p in sorted(listed.items, key=lambda p: p.metadata.name):
        if ready(p) and p.spec.node_name:
            placed.setdefault(p.spec.node_name, []).append(p.metadata.name)
    return placed
