"""Killing an etcd member on a real control plane. Deleting a static pod's mirror does not
stop it (the kubelet owns it), so a short-lived privileged pod with hostPID on the member's
node kills the process; the kubelet then restarts it. The actuator pod is labelled and
annotated with its expiry, journaled before it is created, and deleted on revert.

The kill is verified by positive evidence only: the member's container restarted (its restart
count or container ID changed) or the member itself says its container is not running. A
member whose metrics merely stop answering proves nothing on a cluster that never exposed
them."""

from __future__ import annotations

import uuid
from typing import Any

from chaos.context import RunContext
from chaos.errors import PlatformError, UnsafeFaultRefused
from chaos.fault import Fault, not_in_effect
from chaos.journal import register_undo
from chaos.kube.connect import locator, reconnect
from chaos.kube.etcd_status import container_identity
from chaos.kube.masters import KubeMasters, managed_metadata
from chaos.kube.objects import await_gone, delete
from chaos.kube.targets import BlastRadius
from chaos.platform import pick_member
from chaos.wait import WaitTimeout, wait_until

ACTUATOR = "kube.actuator.delete"
MEMBER_KILLED = "kube.etcd.killed"
ACTUATOR_IMAGE = "busybox:1.36"


@register_undo(ACTUATOR)
def _delete_actuator(undo: dict[str, Any]) -> None:
    cluster = reconnect(undo)
    # already gone (an earlier undo or the reaper) is fine; otherwise the revert ends when it is
    if delete(cluster, "Pod", undo["namespace"], undo["name"]):
        await_gone(cluster, "Pod", undo["namespace"], undo["name"], grace=None)


@register_undo(MEMBER_KILLED)
def _await_member(undo: dict[str, Any]) -> None:
    """The kubelet restarts the member; the revert waits until it answers with a leader."""
    cluster = reconnect(undo)
    masters = KubeMasters(cluster, undo["namespace"], 60)
    try:
        wait_until(
            lambda: undo["member"] in masters.healthy(),
            timeout=60,
            interval=0.2,
            what=f"etcd {undo['member']} back",
        )
    except WaitTimeout as exc:
        raise PlatformError(f"etcd {undo['member']} on {undo['cluster']} did not come back: {exc}") from exc


def actuator_pod(name: str, node: str, ttl: float) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": managed_metadata(name, ttl, {"chaos.io/actuator": "etcd-kill"}),
        "spec": {
            "nodeName": node,
            "hostPID": True,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],  # control-plane taints
            "containers": [
                {
                    "name": "kill",
                    "image": ACTUATOR_IMAGE,
                    "command": ["sh", "-c", "kill -9 $(pidof etcd)"],
                    "securityContext": {"privileged": True},
                }
            ],
        },
    }


class KubeKillMaster(Fault):
    kind = "kill_master"
    # the kubelet reports a restarted container within a few seconds of its death
    verify_within = 20.0

    def __init__(
        self,
        ctx: RunContext,
        masters: KubeMasters,
        *,
        radius: BlastRadius,
        namespace: str,
        pick: str,
        allow_below_quorum: bool,
    ) -> None:
        super().__init__(ctx)
        self.masters, self.radius, self.namespace = masters, radius, namespace
        self.pick, self.allow_below_quorum = pick, allow_below_quorum
        self.target: str | None = None
        self.was_leader = False
        self.before: tuple[int, str] = (0, "")
        self.evidence = ""  # what showed the kill took effect
        self.actuator = f"chaos-etcd-kill-{uuid.uuid4().hex[:6]}"

    def describe(self) -> str:
        role = "leader" if self.was_leader else "member"
        return f"SIGKILL etcd {role} {self.target or self.pick} on {self.masters.cluster.role}"

    def details(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "was_leader": self.was_leader,
            "actuator": self.actuator,
            "evidence": self.evidence,
        }

    def prepare(self) -> None:
        if not self.radius.control_plane:
            raise UnsafeFaultRefused(
                "killing an etcd member touches the control plane: opt in with --kube-control-plane"
            )
        self.radius.check(self.namespace)
        leader = self.masters.leader()
        target = pick_member(
            self.pick,
            names=self.masters.names(),
            up=self.masters.healthy(),
            leader=leader,
            rng=self.ctx.rng,
            allow_below_quorum=self.allow_below_quorum,
            up_word="healthy",
        )
        self.target, self.was_leader = target, target == leader
        self.before = container_identity(self.masters.pod(target))

    def inject(self) -> None:
        assert self.target is not None
        cluster = self.masters.cluster
        where = {**locator(cluster), "namespace": self.namespace}
        self.journaled(
            MEMBER_KILLED, {**where, "member": self.target}, f"wait for etcd {self.target} to come back"
        )
        self.journaled(
            ACTUATOR, {**where, "kind": "Pod", "name": self.actuator}, f"delete actuator pod {self.actuator}"
        )
        body = actuator_pod(self.actuator, self.masters.node_of(self.target), self.ctx.fault_ttl)
        cluster.call(
            "create", "pods", self.namespace, cluster.core.create_namespaced_pod, self.namespace, body
        )

    def verify(self) -> None:
        target = self.target or ""
        seen: list[str] = []

        def killed() -> bool:
            now = container_identity(self.masters.pod(target))
            if now != self.before:
                seen.append(f"restart count {self.before[0]} -> {now[0]}")
                return True
            status = self.masters.status(target)
            if not status.answering and status.why:
                seen.append(status.why)
                return True
            return False

        try:
            wait_until(killed, timeout=self.verify_within, interval=0.1, what=f"etcd {target} to be killed")
        except WaitTimeout as exc:
            raise not_in_effect(
                self,
                f"etcd {target} shows no sign of the kill: its container did not restart "
                f"(restart count {self.before[0]}) and it still answers",
            ) from exc
        self.evidence = seen[-1]
