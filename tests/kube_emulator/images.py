"""Images, the registry and rollouts, as a kubelet and the Deployment controller see them.

A pod's image must be on its node before it runs: each node caches the images of the pods it
ran. A pod whose image is not cached there, or whose ``imagePullPolicy`` is ``Always``, pulls it
from the registry: the deployment ``registry`` names (``(namespace, name)``; None: every pull
succeeds), reachable while it has a ready replica. A pull that cannot be made leaves the pod
Pending and not ready, waiting with ``ErrImagePull``, and is tried again whenever a deployment
changes (the registry scaled back up among them).

A new image in a deployment's template is rolled out as the Deployment controller does with
``maxSurge: 1, maxUnavailable: 0``: a pod of the new version is added, and an old one goes only
when a new one is ready in its place; a pod that is not ready and not of the template's version
goes at once (a rolled-back surge). A rollout still not done ``progress_deadline_s`` after it
started is reported as a ``Progressing`` condition ``False``, reason ``ProgressDeadlineExceeded``.
"""

from __future__ import annotations

import time
from typing import Any


class Images:
    # the World's, declared for the type checker
    pods: dict[tuple[str, str], dict[str, Any]]
    deployments: dict[tuple[str, str], dict[str, Any]]
    registry: tuple[str, str] | None
    images: dict[str, set[str]]
    progress_deadline_s: float
    rollout_started: dict[tuple[str, str], float]

    def _template(self, ns: str, name: str) -> dict[str, Any]:
        container: dict[str, Any] = self.deployments[(ns, name)]["spec"]["template"]["spec"]["containers"][0]
        return container

    def registry_up(self) -> bool:
        if self.registry is None:
            return True
        dep = self.deployments.get(self.registry)
        return bool(dep and dep["spec"]["replicas"] and dep["status"].get("readyReplicas", 0))

    def _start_image(self, pod: dict[str, Any]) -> bool:
        """Have the pod's image on its node (pulled if it must be); False: the pull failed and
        the pod waits, not ready."""
        container = pod["spec"]["containers"][0]
        node, image = pod["spec"].get("nodeName") or "", container["image"]
        cached = image in self.images.setdefault(node, set())
        if (cached and container.get("imagePullPolicy") != "Always") or self.registry_up():
            self.images[node].add(image)
            pod["status"].pop("containerStatuses", None)
            return True
        pod["status"].update(
            phase="Pending",
            conditions=[{"type": "Ready", "status": "False"}],
            containerStatuses=[
                {
                    "name": container["name"],
                    "image": image,
                    "imageID": "",
                    "restartCount": 0,
                    "ready": False,
                    "state": {
                        "waiting": {
                            "reason": "ErrImagePull",
                            "message": f"pull {image}: registry unreachable",
                        }
                    },
                }
            ],
        )
        return False

    def _retry_pulls(self) -> list[tuple[str, str]]:
        """Pods waiting on a pull that can be made now start; returns their deployments."""
        started = set()
        for key, pod in self.pods.items():
            if (
                pod["status"].get("containerStatuses")
                and pod["spec"].get("nodeName")
                and self._start_image(pod)
            ):
                pod["status"].update(phase="Running", conditions=[{"type": "Ready", "status": "True"}])
                owner = (pod["metadata"].get("ownerReferences") or [{}])[0].get("uid")
                if owner and (key[0], owner) in self.deployments:
                    started.add((key[0], owner))
        return sorted(started)

    @staticmethod
    def is_ready(pod: dict[str, Any]) -> bool:
        return any(
            c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
        )

    def _rollout_status(self, ns: str, name: str, new: int, done: bool) -> dict[str, Any]:
        """The ``updatedReplicas`` and ``Progressing`` condition of the deployment's status."""
        key = (ns, name)
        if done:
            self.rollout_started.pop(key, None)
            condition = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        else:
            started = self.rollout_started.setdefault(key, time.monotonic())
            late = time.monotonic() - started > self.progress_deadline_s
            condition = (
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                if late
                else {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
            )
        return {"updatedReplicas": new, "conditions": [condition]}
