"""Storage faults on a cluster, by what a volume is there: a PersistentVolumeClaim a
service's pods mount (topology ``claim:``).

``full``: a short-lived pod on the same node mounts the claim and writes one file until
ENOSPC; it turns Ready only then (that is the verification), and on delete its TERM trap
removes exactly that file. ``slow``, ``io_error``, ``flaky``, ``read_only``: Chaos Mesh
``IOChaos`` on the service's pods at the claim's mount path (when installed). ``lost``: the
storage backend's pods (topology ``storage_backend``) are taken away."""

from __future__ import annotations

import uuid
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, UnsafeFaultRefused
from chaos.fault import Fault, not_in_effect
from chaos.kube.connect import Cluster, NotFound
from chaos.kube.masters import managed_metadata
from chaos.kube.netpol import ROLE
from chaos.kube.objects import create_journaled, get
from chaos.kube.targets import BlastRadius, running_pods
from chaos.kube.topology import Service
from chaos.platform import StorageFault
from chaos.wait import WaitTimeout, wait_until

FILL_WITHIN_S = 300.0  # writing a large claim full at disk speed
MOUNT = "/chaos-fill"
ERRNO = {"EIO": 5, "ENOSPC": 28, "EROFS": 30, "EDQUOT": 122, "EAGAIN": 11}
WRITES = [
    "write",
    "create",
    "mknod",
    "mkdir",
    "unlink",
    "rmdir",
    "rename",
    "link",
    "symlink",
    "setattr",
    "fsync",
]


def claim_mount(pod: Any, claim: str) -> tuple[str, str]:
    """(container, mount path) where ``pod`` mounts ``claim``."""
    volumes = {
        v.name
        for v in pod.spec.volumes or []
        if v.persistent_volume_claim and v.persistent_volume_claim.claim_name == claim
    }
    for c in pod.spec.containers:
        for m in c.volume_mounts or []:
            if m.name in volumes:
                return c.name, m.mount_path
    raise ConfigError(
        f"pod {pod.metadata.name} does not mount claim {claim!r}: check claim: in the kube topology"
    )


def using_pod(cluster: Cluster, svc: Service) -> Any:
    """The service's running pod (first by name), which mounts its claim."""
    pods = running_pods(cluster, svc.namespace, svc.selector)
    if not pods:
        raise UnsafeFaultRefused(f"no running pod of {svc.name} ({svc.describe()}): nothing uses its volume")
    return pods[0]


def iochaos_spec(fault: StorageFault, svc: Service, container: str, path: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"namespaces": [svc.namespace], "labelSelectors": dict(svc.labels)},
        "containerNames": [container],
        "volumePath": path,
        "path": f"{path}/**/*",
        "percent": 100,
    }
    if fault.mode == "slow":
        return {**spec, "action": "latency", "delay": f"{fault.latency * 1000:g}ms"}
    if fault.mode == "read_only":
        return {**spec, "action": "fault", "errno": ERRNO["EROFS"], "methods": WRITES}
    if fault.mode == "flaky":
        return {
            **spec,
            "action": "fault",
            "errno": ERRNO[fault.errno],
            "percent": max(1, round(fault.rate * 100)),
        }
    return {**spec, "action": "fault", "errno": ERRNO["EIO"]}


def fill_pod(name: str, node: str, claim: str, ttl: float, image: str) -> dict[str, Any]:
    fill = f"{MOUNT}/.chaos-fill-{name}"
    script = (
        f"trap 'rm -f {fill}; exit 0' TERM; "
        f"dd if=/dev/zero of={fill} bs=1M 2>/tmp/dd.log; "
        "grep -q 'No space left' /tmp/dd.log && touch /tmp/full; "
        "while :; do sleep 1; done"
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": managed_metadata(name, ttl, {ROLE: "claim-fill"}),
        "spec": {
            "nodeName": node,  # a ReadWriteOnce claim mounts on one node only
            "restartPolicy": "Never",
            "activeDeadlineSeconds": int(ttl),
            "terminationGracePeriodSeconds": 30,
            "volumes": [{"name": "claim", "persistentVolumeClaim": {"claimName": claim}}],
            "containers": [
                {
                    "name": "fill",
                    "image": image,
                    "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "claim", "mountPath": MOUNT}],
                    "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/full"]}, "periodSeconds": 1},
                }
            ],
        },
    }


class FillClaim(Fault):
    kind = "fail_storage"

    def __init__(
        self, ctx: RunContext, cluster: Cluster, radius: BlastRadius, svc: Service, *, image: str
    ) -> None:
        super().__init__(ctx)
        self.cluster, self.radius, self.svc, self.image = cluster, radius, svc, image
        self.namespace = svc.namespace
        self.pod = f"chaos-fill-{uuid.uuid4().hex[:6]}"
        self.node = ""

    def describe(self) -> str:
        claim = f"{self.svc.namespace}/{self.svc.claim}"
        return f"fill claim {claim} of {self.svc.name} on {self.cluster.role} (full)"

    def details(self) -> dict[str, Any]:
        return {"pod": f"{self.namespace}/{self.pod}", "node": self.node, "claim": self.svc.claim}

    def prepare(self) -> None:
        self.radius.check(self.namespace)
        core = self.cluster.core
        try:
            self.cluster.call(
                "get",
                "persistentvolumeclaims",
                self.namespace,
                core.read_namespaced_persistent_volume_claim,
                self.svc.claim,
                self.namespace,
            )
        except NotFound:
            raise ConfigError(
                f"service {self.svc.name}: no claim {self.namespace}/{self.svc.claim} on {self.cluster.role}"
            ) from None
        pod = using_pod(self.cluster, self.svc)
        claim_mount(pod, self.svc.claim)
        self.node = pod.spec.node_name

    def inject(self) -> None:
        body = fill_pod(self.pod, self.node, self.svc.claim, self.ctx.fault_ttl, self.image)
        create_journaled(self, self.cluster, "Pod", self.namespace, body, grace=30)

    def verify(self) -> None:
        state: dict[str, Any] = {}

        def full() -> bool:
            status = get(self.cluster, "Pod", self.namespace, self.pod).status
            state["phase"] = status.phase
            ready = [c for c in status.conditions or [] if c.type == "Ready"]
            return bool(ready and ready[0].status == "True")

        try:
            wait_until(full, timeout=FILL_WITHIN_S, interval=0.5, what=f"claim {self.svc.claim} full")
        except WaitTimeout as exc:
            raise not_in_effect(
                self,
                f"fill pod {self.pod} never saw ENOSPC (phase {state.get('phase')}): the claim is not full",
            ) from exc

    def revert(self) -> None:
        super().revert()
        # the TERM trap deletes the fill file as the pod stops: the claim is free once it is gone
        try:
            wait_until(
                lambda: not _exists(self.cluster, self.namespace, self.pod),
                timeout=60,
                interval=0.2,
                what=f"fill pod {self.pod} gone",
            )
        except WaitTimeout:
            self.ctx.tl.note("warning", message=f"fill pod {self.namespace}/{self.pod} still terminating")


def _exists(cluster: Cluster, namespace: str, name: str) -> bool:
    try:
        get(cluster, "Pod", namespace, name)
    except NotFound:
        return False
    return True
