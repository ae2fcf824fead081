"""The Kubernetes platform, through the official ``kubernetes`` client: one API client per
kubeconfig context, targets chosen inside a namespace allow-list, and faults that are
journaled with cluster, kind, name and UID. (Part 1 of the kube platform: connection,
targets and safety, pod and deployment faults; ``--platform kube`` comes with the rest.)"""

from chaos.kube.connect import Cluster, connect
from chaos.kube.faults import KillPods, ScaleDeployment
from chaos.kube.targets import BlastRadius, Target, select_pods

__all__ = ["BlastRadius", "Cluster", "KillPods", "ScaleDeployment", "Target", "connect", "select_pods"]
