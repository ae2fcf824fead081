"""Rolling out a new image version of a deployment, and reading how the rollout stands.

``RollOut`` sets the image of the deployment's first container (journaled first with the image
it had; the revert sets that image back, a rollback) and does not wait: whether the rollout
completes, stalls or is half applied is what an experiment measures, through ``status``.
"""

from __future__ import annotations

from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError
from chaos.fault import not_in_effect
from chaos.journal import register_undo
from chaos.kube.connect import Cluster, reconnect
from chaos.kube.pod_faults import DeploymentFault
from chaos.kube.targets import BlastRadius
from chaos.platform import Rollout

IMAGE_SET = "kube.deployment.image"
# a new pod waiting on one of these will not start until its image can be pulled
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")


def _set_image(cluster: Cluster, namespace: str, name: str, container: str, image: str) -> None:
    apps = cluster.apps
    body = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
    cluster.call("patch", "deployments", namespace, apps.patch_namespaced_deployment, name, namespace, body)


@register_undo(IMAGE_SET)
def _roll_back(undo: dict[str, Any]) -> None:
    _set_image(reconnect(undo), undo["namespace"], undo["name"], undo["container"], undo["image"])


def new_image(current: str, version: str) -> str:
    """``version`` as a tag of ``current``'s repository (``shop/gateway:1`` -> ``shop/gateway:2``),
    or a whole image reference when it names one."""
    if ":" in version or "/" in version or "@" in version:
        return version
    repo = current.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return f"{repo}:{version}"


class RollOut(DeploymentFault):
    kind = "roll_out"

    def __init__(
        self,
        ctx: RunContext,
        cluster: Cluster,
        namespace: str,
        name: str,
        *,
        version: str,
        radius: BlastRadius,
    ) -> None:
        super().__init__(ctx, cluster, namespace, name, radius)
        self.version = version
        self.container = ""
        self.before = ""
        self.image = ""

    def describe(self) -> str:
        was = f" (from {self.before})" if self.before else ""
        where = f"{self.namespace}/{self.name} on {self.cluster.role}"
        return f"roll out {self.image or self.version} to {where}{was}"

    def details(self) -> dict[str, Any]:
        return {"deployment": f"{self.namespace}/{self.name}", "from": self.before, "to": self.image}

    def prepare(self) -> None:
        if not self.version.strip():
            raise ConfigError("roll_out(..., version=''): give the new version (a tag) or a whole image")
        self.radius.check(self.namespace)
        first = self._read().spec.template.spec.containers[0]
        self.container, self.before = first.name, first.image
        self.image = new_image(self.before, self.version)
        if self.image == self.before:
            raise ConfigError(f"{self.namespace}/{self.name} already runs {self.before}: nothing to roll out")

    def inject(self) -> None:
        undo = self._undo(container=self.container, image=self.before)
        self.journaled(IMAGE_SET, undo, f"roll {self.namespace}/{self.name} back to {self.before}")
        _set_image(self.cluster, self.namespace, self.name, self.container, self.image)

    def verify(self) -> None:
        now = self._read().spec.template.spec.containers[0].image
        if now != self.image:
            raise not_in_effect(self, f"the template's image is {now}")


def status(cluster: Cluster, namespace: str, name: str, selector: str) -> Rollout:
    apps, core = cluster.apps, cluster.core
    dep = cluster.call("get", "deployments", namespace, apps.read_namespaced_deployment, name, namespace)
    image = dep.spec.template.spec.containers[0].image
    pods = cluster.call(
        "list", "pods", namespace, core.list_namespaced_pod, namespace, label_selector=selector
    )
    live = [p for p in pods.items if p.metadata.deletion_timestamp is None]

    def ready(pod: Any) -> bool:
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    updated = [p for p in live if p.spec.containers[0].image == image]
    reasons = [
        s.state.waiting.reason
        for p in updated
        for s in p.status.container_statuses or []
        if s.state and s.state.waiting and s.state.waiting.reason in PULL_FAILURES
    ]
    progressing = next((c for c in dep.status.conditions or [] if c.type == "Progressing"), None)
    deadline = progressing is not None and progressing.reason == "ProgressDeadlineExceeded"
    why = "ProgressDeadlineExceeded" if deadline else reasons[0] if reasons else ""
    return Rollout(
        version=image,
        updated=len(updated),
        updated_ready=sum(1 for p in updated if ready(p)),
        outdated=len(live) - len(updated),
        ready=sum(1 for p in live if ready(p)),
        stuck=bool(why),
        reason=why,
    )
