"""The CNI model: NetworkPolicies enforced (``cni="enforcing"``) or ignored (``"none"``, as
flannel does), judged for the framework's probe pods."""

from __future__ import annotations

from typing import Any

from tests.kube_emulator.selectors import selects


class NetworkModel:
    def policies(self, ns: str | None = None) -> list[dict[str, Any]]:
        return [
            o for (pl, ons, _), o in self.objects.items() if pl == "networkpolicies" and ns in (None, ons)
        ]

    def reachable_from_outside(self, dst: dict[str, Any]) -> bool:
        """Whether traffic from outside the cluster (a load balancer) reaches ``dst``: only a
        policy rule without ``from`` admits a source that is not a pod."""
        return self._admits("", {}, dst, outside=True)

    def _admits(
        self, src_ns: str, src: dict[str, str], dst: dict[str, Any], *, outside: bool = False
    ) -> bool:
        """Whether the CNI lets a pod (namespace, labels) open a connection to ``dst``."""
        if self.cni != "enforcing":
            return True
        ns = dst["metadata"]["namespace"]
        selecting = [
            p["spec"]
            for p in self.policies(ns)
            if selects(p["spec"].get("podSelector") or {}, dst["metadata"].get("labels", {}))
            and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        ]
        if not selecting:
            return True
        for spec in selecting:
            for rule in spec.get("ingress") or []:
                peers = rule.get("from")
                if not peers:
                    return True
                for peer in [] if outside else peers:
                    ns_ok = (
                        selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": src_ns})
                        if "namespaceSelector" in peer
                        else src_ns == ns
                    )
                    if ns_ok and "podSelector" in peer and selects(peer["podSelector"], src):
                        return True
                    if ns_ok and "podSelector" not in peer and "namespaceSelector" in peer:
                        return True
        return False

    def _run_probe(self, ns: str, pod: dict[str, Any]) -> str:
        """A netprobe pod runs `nc -z -w N IP PORT`: Succeeded if it connects."""
        *_, ip, port = pod["spec"]["containers"][0]["command"]
        dst = next((p for p in self.pods.values() if p.get("status", {}).get("podIP") == ip), None)
        ports = [
            pt["containerPort"]
            for c in (dst or {}).get("spec", {}).get("containers", [])
            for pt in c.get("ports", [])
        ]
        connected = (
            bool(dst) and int(port) in ports and self._admits(ns, pod["metadata"]["labels"], dst or {})
        )
        self.probes.append((pod["metadata"]["name"], connected))
        return "Succeeded" if connected else "Failed"
