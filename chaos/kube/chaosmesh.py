"""Faults through Chaos Mesh, when its CRDs are installed: a ``NetworkChaos`` (delay, loss,
bandwidth, partition) or an ``IOChaos`` (latency, errno) object. The object is journaled
before it is created, labelled with its expiry, carries ``duration`` = the fault's TTL (so
Chaos Mesh ends it even if nobody reverts it), and counts as in effect only once Chaos Mesh
reports that it selected pods (``Selected``, and a record per pod) and injected every one
(``AllInjected``). ``AllInjected`` alone is not enough: over no selected pod it is vacuously
true, and a fault that touched nothing would pass."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from chaos.context import RunContext
from chaos.errors import ConfigError, NotSupported
from chaos.fault import Fault, not_in_effect
from chaos.kube.connect import Cluster, NotFound
from chaos.kube.masters import managed_metadata
from chaos.kube.objects import create_journaled, get, list_managed
from chaos.kube.targets import BlastRadius
from chaos.kube.topology import Service
from chaos.platform import LinkFault
from chaos.wait import WaitTimeout, wait_until

INJECT_WITHIN_S = 30.0


def installed(cluster: Cluster, kind: str, namespace: str) -> bool:
    """Whether the cluster serves Chaos Mesh's ``kind`` (its CRD is installed)."""
    try:
        list_managed(cluster, kind, namespace)
    except NotFound:
        return False
    return True


def require(cluster: Cluster, kind: str, namespace: str, what: str) -> None:
    if not installed(cluster, kind, namespace):
        raise NotSupported(
            f"{what} on Kubernetes needs Chaos Mesh's {kind} (chaos-mesh.org/v1alpha1), which cluster "
            f"{cluster.role} does not serve: install Chaos Mesh (https://chaos-mesh.org) to run it"
        )


def selector(services: list[Service]) -> dict[str, Any]:
    """A Chaos Mesh pod selector for services of one namespace and one label set."""
    namespaces = sorted({s.namespace for s in services})
    labels = [s.labels for s in services]
    if len(namespaces) != 1 or any(lab != labels[0] for lab in labels):
        raise ConfigError(
            f"{', '.join(s.name for s in services)}: Chaos Mesh selects one label set in one namespace; "
            "name services that share them (or one service)"
        )
    return {"namespaces": namespaces, "labelSelectors": dict(labels[0])}


def netem(link: LinkFault) -> list[tuple[str, dict[str, Any]]]:
    """The NetworkChaos actions (and their spec) a degraded link needs."""
    if 0 < link.reset < 1:
        raise ConfigError(
            f"reset={link.reset!r}: Chaos Mesh cannot reset a share of connections; use reset=1.0 (a "
            "one-way partition) or loss="
        )
    out: list[tuple[str, dict[str, Any]]] = []
    if link.reset == 1.0:
        out.append(("partition", {}))
    effects: dict[str, Any] = {}
    if link.latency:
        effects["delay"] = {"latency": f"{link.latency * 1000:g}ms", "jitter": f"{link.jitter * 1000:g}ms"}
    if link.loss:
        effects["loss"] = {"loss": f"{link.loss * 100:g}", "correlation": "0"}
    if effects:
        out.append(("netem", effects))
    if link.bandwidth_kbit:
        rate = {"rate": f"{link.bandwidth_kbit}kbps", "limit": 20_000, "buffer": 10_000}
        out.append(("bandwidth", {"bandwidth": rate}))
    return out


class ChaosMeshFault(Fault):
    """One or more Chaos Mesh objects, created together and deleted on revert."""

    def __init__(
        self,
        ctx: RunContext,
        cluster: Cluster,
        radius: BlastRadius,
        kind: str,
        specs: list[dict[str, Any]],
        *,
        describe: str,
        targets: list[Service],
    ) -> None:
        super().__init__(ctx)
        self.cluster, self.radius, self.chaos_kind, self.specs = cluster, radius, kind, specs
        self.kind = "chaos_mesh_" + kind.lower()
        self._describe, self.targets = describe, targets
        self.namespace = radius.namespaces[0] if radius.namespaces else ""
        self.names = [f"chaos-{kind.lower()}-{uuid.uuid4().hex[:6]}" for _ in specs]
        self.injected: dict[str, int] = {}  # pods each object was injected into
        self.inject_within = INJECT_WITHIN_S

    def describe(self) -> str:
        return f"{self._describe} by Chaos Mesh {self.chaos_kind}"

    def details(self) -> dict[str, Any]:
        return {
            "objects": [f"{self.namespace}/{n}" for n in self.names],
            "specs": self.specs,
            "pods_injected": self.injected,
        }

    def prepare(self) -> None:
        for s in self.targets:
            self.radius.check(s.namespace)
        self.radius.check(self.namespace)
        require(self.cluster, self.chaos_kind, self.namespace, self._describe)

    def inject(self) -> None:
        ttl = f"{int(self.ctx.fault_ttl)}s"
        for name, spec in zip(self.names, self.specs, strict=True):
            body = {
                "apiVersion": "chaos-mesh.org/v1alpha1",
                "kind": self.chaos_kind,
                "metadata": managed_metadata(name, self.ctx.fault_ttl),
                "spec": {"mode": "all", "duration": ttl, **spec},
            }
            create_journaled(self, self.cluster, self.chaos_kind, self.namespace, body)

    def verify(self) -> None:
        seen: dict[str, Any] = {}

        def injected(name: str) -> bool:
            obj = get(self.cluster, self.chaos_kind, self.namespace, name)
            status = obj.get("status") or {}
            conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
            records = (status.get("experiment") or {}).get("containerRecords") or []
            seen[name] = (conditions, len(records))
            return (
                conditions.get("Selected") == "True"
                and conditions.get("AllInjected") == "True"
                and bool(records)
                and all(r.get("phase") == "Injected" for r in records)
            )

        for name in self.names:
            try:
                wait_until(
                    partial(injected, name),
                    timeout=self.inject_within,
                    interval=0.2,
                    what=f"{name} injected",
                    # its controller has run and found nothing to inject into: no wait changes that
                    abort=partial(self._selected_nothing, seen, name),
                )
            except WaitTimeout as exc:
                conditions, count = seen.get(name, ({}, 0))
                why = (
                    f"it selected no pod (selectors {self._selectors()}): nothing runs there that "
                    "matches, so nothing would be degraded"
                    if conditions.get("Selected") == "False" or (conditions and not count)
                    else f"conditions {conditions}, {count} pod(s) recorded"
                )
                raise not_in_effect(
                    self, f"Chaos Mesh has not injected {self.namespace}/{name}: {why}"
                ) from exc
        self.injected = {name: count for name, (_, count) in seen.items()}

    @staticmethod
    def _selected_nothing(seen: dict[str, Any], name: str) -> str | None:
        conditions = seen.get(name, ({}, 0))[0]
        return "selected no pod" if conditions.get("Selected") == "False" else None

    def _selectors(self) -> str:
        return "; ".join(
            f"{', '.join(t.get('namespaces', []))}: {t.get('labelSelectors')}"
            for spec in self.specs
            for t in (spec.get("selector") or {}, (spec.get("target") or {}).get("selector") or {})
            if t
        )
