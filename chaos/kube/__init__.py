"""The Kubernetes platform (``--platform kube``), through the official ``kubernetes`` client:
one API client per kubeconfig context, targets chosen inside a namespace allow-list, and
faults journaled with cluster, kind, name and UID. ``KubePlatform`` (chaos.kube.platform)
is what experiments see."""

from chaos.kube.connect import Cluster, connect
from chaos.kube.pod_faults import KillPods, ScaleDeployment
from chaos.kube.targets import BlastRadius, Target, select_pods

__all__ = ["BlastRadius", "Cluster", "KillPods", "ScaleDeployment", "Target", "connect", "select_pods"]
