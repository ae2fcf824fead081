"""Kubernetes faults of part 1: kill pods (delete with grace 0, or evict honouring
PodDisruptionBudgets) and scale a deployment (to zero and back). Each change is journaled
with cluster, kind, name and UID before it is made; the blast radius is checked in
``prepare``, so a refused fault has made no request that writes."""

from __future__ import annotations

from functools import partial
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, PlatformError, UnsafeFaultRefused
from chaos.fault import Fault, not_in_effect
from chaos.journal import register_undo
from chaos.kube.connect import Cluster, NotFound, Refused, locator, reconnect
from chaos.kube.targets import BlastRadius, Target, select_pods
from chaos.wait import WaitTimeout, wait_until

POD_KILLED = "kube.pod.killed"
SCALE_DOWN_S = 60.0  # terminating pods have their grace period (30 s by default) and more
SCALED = "kube.deployment.scale"
MANY_BUDGETS = "more than one PodDisruptionBudget"  # the eviction API's 500 for such a pod


@register_undo(POD_KILLED)
def _pod_killed(undo: dict[str, Any]) -> None:
    """Nothing to restore: the pod's controller recreates it. The entry records what was hit."""


@register_undo(SCALED)
def _scale_back(undo: dict[str, Any]) -> None:
    cluster = reconnect(undo)
    ns, name = undo["namespace"], undo["name"]
    cluster.call(
        "patch",
        "deployments/scale",
        ns,
        cluster.apps.patch_namespaced_deployment_scale,
        name,
        ns,
        {"spec": {"replicas": undo["replicas"]}},
    )


class KillPods(Fault):
    kind = "kill_pods"

    def __init__(
        self,
        ctx: RunContext,
        cluster: Cluster,
        namespace: str,
        radius: BlastRadius,
        *,
        labels: str = "",
        fields: str = "",
        count: int = 1,
        evict: bool = False,
    ) -> None:
        super().__init__(ctx)
        self.cluster, self.namespace, self.radius = cluster, namespace, radius
        self.labels, self.fields, self.count, self.evict = labels, fields, count, evict
        self.targets: list[Target] = []

    def describe(self) -> str:
        how = "evict" if self.evict else "delete (grace 0)"
        shown = ", ".join(t.name for t in self.targets) or f"{self.count} pod(s) matching {self.labels!r}"
        return f"{how} {shown} in {self.namespace} on {self.cluster.role}"

    def details(self) -> dict[str, Any]:
        return {"targets": [t.__dict__ for t in self.targets], "evict": self.evict}

    def prepare(self) -> None:
        self.targets = select_pods(
            self.cluster,
            self.namespace,
            self.radius,
            self.ctx.rng,
            labels=self.labels,
            fields=self.fields,
            count=self.count,
        )

    def inject(self) -> None:
        if self.evict:
            # the API judges each eviction against its budget without doing it: a refusal
            # for any target comes before the first pod is gone, not half-way through
            for t in self.targets:
                self._evict(t, dry_run=True)
        for t in self.targets:
            self.journaled(
                POD_KILLED, {**locator(self.cluster), **t.__dict__}, f"record: {t.describe()} killed"
            )
            if self.evict:
                self._evict(t)
            else:
                delete_now(self.cluster, t)

    def _evict(self, t: Target, *, dry_run: bool = False) -> None:
        from kubernetes import client

        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=t.name, namespace=t.namespace))
        extra = {"dry_run": "All"} if dry_run else {}
        try:
            self.cluster.call(
                "create",
                "pods/eviction",
                t.namespace,
                self.cluster.core.create_namespaced_pod_eviction,
                t.name,
                t.namespace,
                body,
                **extra,
            )
        except Refused as exc:
            raise UnsafeFaultRefused(
                f"evicting {t.describe()} would violate its PodDisruptionBudget: {exc}"
            ) from exc
        except PlatformError as exc:
            if MANY_BUDGETS not in str(exc):
                raise
            raise UnsafeFaultRefused(
                f"{t.describe()} is covered by more than one PodDisruptionBudget, and the eviction API "
                "refuses such a pod: make the budgets' selectors disjoint, or kill without evict=True"
            ) from exc

    def verify(self) -> None:
        await_killed(self, self.cluster, self.targets)


def delete_now(cluster: Cluster, t: Target) -> None:
    """Delete a pod with grace 0: gone at once, as a crash or a dead machine takes it."""
    cluster.call(
        "delete",
        "pods",
        t.namespace,
        cluster.core.delete_namespaced_pod,
        t.name,
        t.namespace,
        grace_period_seconds=0,
    )


def await_killed(fault: Fault, cluster: Cluster, targets: list[Target]) -> None:
    """Each target pod gone, replaced under its name, or being deleted within 10 s; else the
    fault is not in effect."""

    def gone(t: Target) -> bool:
        try:
            pod = cluster.call(
                "get", "pods", t.namespace, cluster.core.read_namespaced_pod, t.name, t.namespace
            )
        except NotFound:
            return True
        return bool(pod.metadata.uid != t.uid or pod.metadata.deletion_timestamp is not None)

    for t in targets:
        try:
            wait_until(partial(gone, t), timeout=10, interval=0.1, what=f"{t.describe()} to go")
        except WaitTimeout as exc:
            raise not_in_effect(fault, f"{t.describe()} is still there") from exc


class DeploymentFault(Fault):
    """A change to one deployment in the blast radius, which it reads through ``_read``."""

    def __init__(
        self, ctx: RunContext, cluster: Cluster, namespace: str, name: str, radius: BlastRadius
    ) -> None:
        super().__init__(ctx)
        self.cluster, self.namespace, self.name, self.radius = cluster, namespace, name, radius

    def _undo(self, **facts: Any) -> dict[str, Any]:
        """What an undo step records to find this deployment again from another process."""
        return {**locator(self.cluster), "namespace": self.namespace, "name": self.name, **facts}

    def _read(self) -> Any:
        apps = self.cluster.apps
        return self.cluster.call(
            "get", "deployments", self.namespace, apps.read_namespaced_deployment, self.name, self.namespace
        )


class ScaleDeployment(DeploymentFault):
    kind = "scale_deployment"

    def __init__(
        self,
        ctx: RunContext,
        cluster: Cluster,
        namespace: str,
        name: str,
        radius: BlastRadius,
        *,
        replicas: int = 0,
    ) -> None:
        super().__init__(ctx, cluster, namespace, name, radius)
        self.replicas = replicas
        self.before: int | None = None
        self.uid = ""
        self.settle_within = SCALE_DOWN_S  # how long the surplus replicas may take to stop

    def describe(self) -> str:
        was = f" (from {self.before})" if self.before is not None else ""
        return f"scale deployment {self.namespace}/{self.name} on {self.cluster.role} to {self.replicas}{was}"

    def prepare(self) -> None:
        if self.replicas < 0:
            raise ConfigError(f"replicas={self.replicas!r}: 0 or more")
        self.radius.check(self.namespace)
        dep = self._read()
        self.uid = dep.metadata.uid
        self.before = int(dep.spec.replicas or 0)

    def inject(self) -> None:
        undo = self._undo(uid=self.uid, replicas=self.before)
        self.journaled(
            SCALED, undo, f"scale {self.namespace}/{self.name} on {self.cluster.role} back to {self.before}"
        )
        apps = self.cluster.apps
        self.cluster.call(
            "patch",
            "deployments/scale",
            self.namespace,
            apps.patch_namespaced_deployment_scale,
            self.name,
            self.namespace,
            {"spec": {"replicas": self.replicas}},
        )

    def verify(self) -> None:
        dep = self._read()
        if dep.spec.replicas != self.replicas:
            raise not_in_effect(self, f"spec.replicas is {dep.spec.replicas}")
        # a scale-down is in effect once the surplus replicas stop being ready, not when the spec says so
        ready = {"now": int(dep.status.ready_replicas or 0)}

        def settled() -> bool:
            ready["now"] = int(self._read().status.ready_replicas or 0)
            return ready["now"] <= self.replicas

        if ready["now"] <= self.replicas:
            return
        try:
            wait_until(
                settled, timeout=self.settle_within, interval=0.2, what=f"{self.name} down to {self.replicas}"
            )
        except WaitTimeout as exc:
            raise not_in_effect(self, f"{ready['now']} replicas still ready") from exc
