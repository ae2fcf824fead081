"""Choosing what a fault hits on a cluster: label and field selectors, a seeded choice, and
the blast radius checked before anything is written."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos.errors import ConfigError, UnsafeFaultRefused
from chaos.kube.connect import Cluster

CONTROL_PLANE_NAMESPACES = ("kube-system",)


@dataclass(frozen=True)
class Target:
    cluster: str
    namespace: str
    kind: str
    name: str
    uid: str

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} on {self.cluster}"


@dataclass(frozen=True)
class BlastRadius:
    """The namespaces faults may touch; control-plane namespaces only when opted in."""

    namespaces: tuple[str, ...]
    control_plane: bool = False

    def check(self, namespace: str) -> None:
        if not self.namespaces:
            raise ConfigError("no namespace is allowed: give the experiment an allow-list, e.g. ('shop',)")
        if namespace in CONTROL_PLANE_NAMESPACES and not self.control_plane:
            raise UnsafeFaultRefused(
                f"namespace {namespace} is the control plane: a fault there needs control_plane=True"
            )
        if namespace not in self.namespaces:
            raise UnsafeFaultRefused(
                f"namespace {namespace} is outside the blast radius ({', '.join(self.namespaces)}); "
                "nothing was changed"
            )


def select_pods(
    cluster: Cluster,
    namespace: str,
    radius: BlastRadius,
    rng: random.Random,
    *,
    labels: str = "",
    fields: str = "",
    count: int = 1,
) -> list[Target]:
    """``count`` running pods matching the selectors, chosen with ``rng`` (the same seed picks
    the same pods). Checks the blast radius before it even lists."""
    radius.check(namespace)
    if count < 1:
        raise ConfigError(f"count={count!r}: at least 1 pod")
    listed = cluster.call(
        "list",
        "pods",
        namespace,
        cluster.core.list_namespaced_pod,
        namespace,
        label_selector=labels,
        field_selector=fields,
    )
    pods = sorted(
        (
            p
            for p in listed.items
            if (p.status.phase or "") == "Running" and p.metadata.deletion_timestamp is None
        ),
        key=lambda p: p.metadata.name,
    )
    if len(pods) < count:
        raise UnsafeFaultRefused(
            f"{len(pods)} running pod(s) in {namespace} match labels {labels!r} fields {fields!r} "
            f"on {cluster.role}, {count} asked"
        )
    chosen = rng.sample(pods, count)
    return [Target(cluster.role, namespace, "Pod", p.metadata.name, p.metadata.uid) for p in chosen]


def running_pods(cluster: Cluster, namespace: str, selector: str) -> list[Any]:
    """Running pods matching ``selector``, by name (a read; the blast radius is the caller's)."""
    listed = cluster.call(
        "list", "pods", namespace, cluster.core.list_namespaced_pod, namespace, label_selector=selector
    )
    running = (
        p for p in listed.items if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
    )
    return sorted(running, key=lambda p: p.metadata.name)
