"""A focused Kubernetes API emulator over real HTTP, for testing the kube platform with the
official client unpatched. It implements what the platform uses: pods (list with label and
field selectors, get, delete, eviction honouring PodDisruptionBudgets), deployments and their
scale subresource, a minimal ReplicaSet controller that recreates deleted pods, RBAC denials
answered 403 like a real API server, and a log of every request.

Part 2 adds NetworkPolicies with a model of the CNI (``cni="enforcing"`` evaluates policies
for the framework's probe pods, ``cni="none"`` ignores them as flannel does),
PersistentVolumeClaims (a claim-fill pod turns Ready: the claim is full while it lives), and
Chaos Mesh's NetworkChaos and IOChaos (``chaos_mesh=True``; otherwise their API is absent,
answered 404 as for a CRD that is not installed).

It is also a kubelet for one image: a pod whose command is ``locust`` runs as a real local
Locust process (the installed version), its ConfigMap volumes written to a directory, its IP
an address of its own on loopback (127.1.x.y), and the pod proxy forwarding to it, so the
distributed load engine is tested against real Locust. Deleting the pod stops the process;
so does the end of ``serving``.
"""

from tests.kube_emulator.api import Emulator
from tests.kube_emulator.etcd import ELECTION_S, RESTART_S, EtcdSim

__all__ = ["ELECTION_S", "RESTART_S", "Emulator", "EtcdSim"]
