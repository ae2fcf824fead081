"""Partitions on a cluster with NetworkPolicies, verified by connecting.

Two sides, each a list of topology services (groups of pods by label). Each side gets an
ingress policy admitting every pod *except* the other side's (and except the other side's
probe pods), so no connection crosses in either direction. A side that is ``external`` (the
global traffic manager) isolates the other side's ingress completely; a side that includes
the outside world and other services (``isolate``) cuts the other side's egress as well.

A policy proves nothing by existing: some CNIs (flannel) ignore NetworkPolicies, and an
existing policy may still admit the traffic. So short-lived probe pods connect across the
cut before (it must connect) and after (it must not); if traffic still crosses, the fault
fails loudly as not in effect and its policies are removed, rather than reporting a pass.
Connections established before the cut may survive it on some CNIs (conntrack); new ones
are refused.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, PlatformError, UnsafeFaultRefused
from chaos.fault import Fault, not_in_effect
from chaos.kube.connect import Cluster
from chaos.kube.masters import managed_metadata
from chaos.kube.objects import create_journaled, delete, get
from chaos.kube.targets import BlastRadius, running_pods
from chaos.kube.topology import Service
from chaos.wait import WaitTimeout, wait_until

SIDE = "chaos.io/side"
ROLE = "chaos.io/role"
PROBE_IMAGE = "busybox:1.36"
PROBE_DEADLINE_S = 30
CONNECT_TIMEOUT_S = 2
ENFORCE_WITHIN_S = 15.0  # CNIs apply a new policy within a second or two; allow for a busy one


@dataclass(frozen=True)
class Endpoint:
    """A pod of a side a probe connects to."""

    service: str
    pod: str
    ip: str
    port: int


def _dns_name(text: str) -> str:
    """An object name the API accepts (RFC 1123: lower-case letters, digits, '-', at most 63)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower())[:63].strip("-")


def not_these(services: list[Service], side: str) -> list[dict[str, Any]]:
    """NetworkPolicy peers admitting every pod in any namespace that is none of ``services``
    and not a probe of ``side``: one peer per way of failing to match (peers are OR-ed,
    expressions within one are AND-ed)."""
    peers = []
    for combo in itertools.product(*[sorted(s.labels.items()) for s in services]):
        exprs = [{"key": k, "operator": "NotIn", "values": [v]} for k, v in combo]
        exprs.append({"key": SIDE, "operator": "NotIn", "values": [side]})
        peers.append({"namespaceSelector": {}, "podSelector": {"matchExpressions": exprs}})
    return peers


def probe_pod(name: str, side: str, target: Endpoint, ttl: float, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": managed_metadata(name, ttl, {SIDE: side, ROLE: "netprobe"}),
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": PROBE_DEADLINE_S,
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "command": ["nc", "-z", "-w", str(CONNECT_TIMEOUT_S), target.ip, str(target.port)],
                }
            ],
        },
    }


class KubePartition(Fault):
    kind = "partition"

    def __init__(
        self,
        ctx: RunContext,
        clusters: dict[str, Cluster],
        radius: BlastRadius,
        sides: list[list[Service]],
        *,
        label: str = "",
        probe_image: str = PROBE_IMAGE,
    ) -> None:
        super().__init__(ctx)
        self.clusters, self.radius, self.sides = clusters, radius, sides
        self.label, self.probe_image = label, probe_image
        self.id = uuid.uuid4().hex[:6]
        self.targets: list[Endpoint | None] = []
        self.plan: list[tuple[Service, str, list[dict[str, Any]]]] = []  # (service, policy, ingress)
        self.cluster: Cluster | None = None
        self.isolated = False  # one side is "everything else": the other admits and sends nothing
        self._probes = 0
        self.enforce_within = ENFORCE_WITHIN_S  # how long the cut may take to hold once in place

    def describe(self) -> str:
        names = [", ".join(s.name for s in side) for side in self.sides]
        a, b = names if len(names) == 2 else ("?", "?")
        how = f" ({self.label})" if self.label else ""
        return f"partition {a} from {b}{how} by NetworkPolicy"

    def details(self) -> dict[str, Any]:
        return {"policies": [f"{s.namespace}/{name}" for s, name, _ in self.plan], "id": self.id}

    # -- before anything is written ----------------------------------------------------------------
    def prepare(self) -> None:
        if len(self.sides) != 2 or not all(self.sides):
            raise ConfigError(
                "on Kubernetes a partition has exactly two non-empty sides, e.g. [['gtm'], ['east-router']]"
            )
        # a side that includes the outside world (isolate: "everything else") is treated as
        # outside: the other side admits nothing at all, and, if the side also names pods,
        # sends nothing either (no egress)
        external = [any(s.external for s in side) for side in self.sides]
        if all(external):
            raise ConfigError("both sides are outside the clusters: there is nothing on a cluster to cut")
        self.isolated = any(
            ext and not all(s.external for s in side) for side, ext in zip(self.sides, external, strict=True)
        )
        inside = [s for i, side in enumerate(self.sides) if not external[i] for s in side]
        roles = {s.cluster for s in inside}
        if len(roles) > 1:
            raise UnsafeFaultRefused(
                f"a NetworkPolicy cannot cut traffic between clusters ({', '.join(sorted(roles))}); isolate "
                "one cluster's ingress instead, e.g. partition(platform, ['gtm'], ['east-router'])"
            )
        for s in inside:
            self.radius.check(s.namespace)
        self.radius.check(self.radius.namespaces[0])  # where the probe pods run
        self.cluster = self.clusters[roles.pop()]
        self.targets = [
            None if ext else self._endpoint(side) for side, ext in zip(self.sides, external, strict=True)
        ]
        for i, side in enumerate(self.sides):
            if external[i]:
                continue
            other = self.sides[1 - i]
            ingress = [] if external[1 - i] else [{"from": not_these(other, self._side(1 - i))}]
            self.plan += [(s, _dns_name(f"chaos-part-{self.id}-{s.name}"), ingress) for s in side]

    def _side(self, i: int) -> str:
        return f"{self.id}-{i}"

    def _endpoint(self, side: list[Service]) -> Endpoint:
        """A running pod of the side (the first, by name) and the port it serves."""
        assert self.cluster is not None
        cluster = self.cluster
        for s in side:
            pods = [p for p in running_pods(cluster, s.namespace, s.selector) if p.status.pod_ip]
            if not pods:
                continue
            pod = pods[0]
            port = s.port or next(
                (pt.container_port for c in pod.spec.containers for pt in (c.ports or [])), 0
            )
            if not port:
                raise ConfigError(
                    f"service {s.name}: its pods declare no container port; give port: in the kube topology "
                    "(the partition is verified by connecting to it)"
                )
            return Endpoint(s.name, pod.metadata.name, pod.status.pod_ip, int(port))
        names = ", ".join(s.name for s in side)
        raise UnsafeFaultRefused(f"no running pod of {names} on {cluster.role}: nothing to partition")

    # -- the change ---------------------------------------------------------------------------------
    def inject(self) -> None:
        assert self.cluster is not None
        if not all(self._probe()):
            raise PlatformError(
                f"{self._what()} do not connect even before the partition: check the services' port in the "
                "kube topology and the policies already in place; nothing was cut"
            )
        for s, name, ingress in self.plan:
            body = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": managed_metadata(name, self.ctx.fault_ttl, {ROLE: "partition"}),
                "spec": {
                    "podSelector": {"matchLabels": dict(s.labels)},
                    "policyTypes": ["Ingress", "Egress"] if self.isolated else ["Ingress"],
                    "ingress": ingress,
                    **({"egress": []} if self.isolated else {}),
                },
            }
            create_journaled(self, self.cluster, "NetworkPolicy", s.namespace, body)

    def verify(self) -> None:
        assert self.cluster is not None
        for s, name, _ in self.plan:
            get(self.cluster, "NetworkPolicy", s.namespace, name)  # NotFound would say it did not stick
        try:
            wait_until(
                lambda: not any(self._probe()),
                timeout=self.enforce_within,
                interval=1.0,
                what="the cut to hold",
            )
        except WaitTimeout as exc:
            raise not_in_effect(
                self,
                f"{self._what()} still connect with the NetworkPolicies in place for "
                f"{self.enforce_within:g} s: the cluster's CNI does not enforce NetworkPolicies (flannel "
                "does not), or another policy admits this traffic. The policies are removed; this "
                "partition cannot be run here",
            ) from exc

    def _what(self) -> str:
        return (
            " and ".join(f"pod {t.pod} ({t.ip}:{t.port})" for t in self.targets if t) + " and the other side"
        )

    def _probe(self) -> list[bool]:
        """Probe every direction that has a target: whether each connected."""
        assert self.cluster is not None
        cluster, ns = self.cluster, self.radius.namespaces[0]
        started = []
        for i, target in enumerate(self.targets):
            if target is None:
                continue
            self._probes += 1
            name = f"chaos-probe-{self.id}-{self._probes}"
            create_journaled(
                self,
                cluster,
                "Pod",
                ns,
                probe_pod(name, self._side(1 - i), target, self.ctx.fault_ttl, self.probe_image),
                grace=0,
            )
            started.append(name)
        results = {name: self._outcome(name) for name in started}
        for name in started:
            delete(cluster, "Pod", ns, name, grace=0)  # its journal entry stays until the revert
        return list(results.values())

    def _outcome(self, name: str) -> bool:
        """Whether the probe pod connected (exit 0) or not."""
        assert self.cluster is not None
        cluster, ns = self.cluster, self.radius.namespaces[0]
        phase: dict[str, str] = {}

        def done() -> bool:
            phase["now"] = get(cluster, "Pod", ns, name).status.phase or ""
            return phase["now"] in ("Succeeded", "Failed")

        try:
            wait_until(done, timeout=PROBE_DEADLINE_S + 30, interval=0.2, what=f"probe pod {name} to finish")
        except WaitTimeout as exc:
            raise PlatformError(
                f"probe pod {ns}/{name} on {cluster.role} did not finish (phase {phase.get('now')!r}): can "
                f"the cluster pull {self.probe_image}? Set probe_image in the kube topology"
            ) from exc
        return phase["now"] == "Succeeded"
