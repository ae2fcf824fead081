"""A node lost on Kubernetes: cordoned, so no new pod lands on it until the revert, and every pod
of the blast radius on it deleted at once (grace 0), as a machine that dies takes its pods with
it. Their controllers recreate them on the other nodes, which is what the experiment measures.

Cordoning is the one change outside the blast radius's namespaces, and all it does is keep new
pods of every namespace off the node: pods of other namespaces keep running there. It is
journaled before it is made (``chaos recover`` uncordons after a crash), needs ``patch`` on
nodes (the ``chaos-node-loss`` ClusterRole of deploy/rbac.yaml; without it the fault is refused
naming the rule), and a node already cordoned by someone else is refused, so a revert never
uncordons what an operator drained."""

from __future__ import annotations

from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, UnsafeFaultRefused
from chaos.fault import Fault, not_in_effect
from chaos.journal import register_undo
from chaos.kube.connect import Cluster, NotFound, locator, reconnect
from chaos.kube.pod_faults import POD_KILLED, await_killed, delete_now
from chaos.kube.targets import BlastRadius, Target

UNCORDON = "kube.node.uncordon"
RIGHTS = (("patch", "nodes"), ("get", "nodes"))


@register_undo(UNCORDON)
def _uncordon(undo: dict[str, Any]) -> None:
    cluster = reconnect(undo)
    _cordon(cluster, undo["node"], False)


def _cordon(cluster: Cluster, node: str, on: bool) -> None:
    cluster.call("patch", "nodes", "-", cluster.core.patch_node, node, {"spec": {"unschedulable": on}})


class LoseNode(Fault):
    kind = "lose_host"

    def __init__(self, ctx: RunContext, cluster: Cluster, node: str, radius: BlastRadius) -> None:
        super().__init__(ctx)
        self.cluster, self.node, self.radius = cluster, node, radius
        self.targets: list[Target] = []

    def describe(self) -> str:
        return f"lose node {self.node} on {self.cluster.role} (cordoned, its pods deleted)"

    def details(self) -> dict[str, Any]:
        return {"node": self.node, "targets": [t.__dict__ for t in self.targets]}

    def prepare(self) -> None:
        core = self.cluster.core
        try:
            node = self.cluster.call("get", "nodes", "-", core.read_node, self.node)
        except NotFound:
            names = [n.metadata.name for n in self.cluster.call("list", "nodes", "-", core.list_node).items]
            raise ConfigError(
                f"no node {self.node!r} on {self.cluster.role}; nodes are: {', '.join(names)}"
            ) from None
        if node.spec.unschedulable:
            raise UnsafeFaultRefused(
                f"node {self.node} is already cordoned (by someone else, or a run that crashed: see "
                "`chaos recover`); losing it would prove nothing and its revert would uncordon it"
            )
        for ns in self.radius.namespaces:
            self.radius.check(ns)
            listed = self.cluster.call(
                "list", "pods", ns, core.list_namespaced_pod, ns, field_selector=f"spec.nodeName={self.node}"
            )
            self.targets += [
                Target(self.cluster.role, ns, "Pod", p.metadata.name, p.metadata.uid)
                for p in sorted(listed.items, key=lambda p: p.metadata.name)
                if p.metadata.deletion_timestamp is None
            ]
        if not self.targets:
            raise ConfigError(
                f"node {self.node} runs no pod of the blast radius ({', '.join(self.radius.namespaces)}): "
                "losing it proves nothing here; platform.hosts() says where the replicas run"
            )

    def inject(self) -> None:
        self.journaled(UNCORDON, {**locator(self.cluster), "node": self.node}, f"uncordon {self.node}")
        _cordon(self.cluster, self.node, True)
        for t in self.targets:
            self.journaled(
                POD_KILLED, {**locator(self.cluster), **t.__dict__}, f"record: {t.describe()} killed"
            )
            delete_now(self.cluster, t)

    def verify(self) -> None:
        core = self.cluster.core
        node = self.cluster.call("get", "nodes", "-", core.read_node, self.node)
        if not node.spec.unschedulable:
            raise not_in_effect(self, f"node {self.node} is not cordoned")

        await_killed(self, self.cluster, self.targets)
