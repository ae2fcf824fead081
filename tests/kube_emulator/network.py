"""The CNI model: NetworkPolicies enforced (``cni="enforcing"``) or ignored (``"none"``, as
flannel does). A connection is admitted when the source's egress policies let it out and the
destination's ingress policies let it in: rules by peer (pod and namespace selectors,
``ipBlock`` with ``except``) and by port, as the API defines them. Judged for the framework's
probe pods and for traffic from outside (the global traffic manager's health checks)."""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.kube_emulator.selectors import selects

OUTSIDE_IP = "192.0.2.10"  # where traffic from outside the cluster comes from (data only: TEST-NET-1)


def _types(spec: dict[str, Any]) -> list[str]:
    """policyTypes, defaulted as the API does: Ingress, and Egress when egress rules are given."""
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _in_block(block: dict[str, Any], ip: str) -> bool:
    if not ip:
        return False
    addr = ipaddress.ip_address(ip)
    if addr not in ipaddress.ip_network(block["cidr"], strict=False):
        return False
    return not any(addr in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])


def _port_ok(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports") or []
    return not ports or any(int(p.get("port", 0)) in (0, port) for p in ports)


class NetworkModel:
    def policies(self, ns: str | None = None) -> list[dict[str, Any]]:
        return [
            o for (pl, ons, _), o in self.objects.items() if pl == "networkpolicies" and ns in (None, ons)
        ]

    def reachable_from_outside(
        self, dst: dict[str, Any], *, src_ip: str = "192.0.2.10", port: int = 0
    ) -> bool:
        """Whether traffic from outside the cluster (a load balancer or health checker at
        ``src_ip``) reaches ``dst`` on ``port`` (its first container port when 0): a rule
        without ``from``, or with an ``ipBlock`` holding that address, admits it."""
        return self._admits("", {}, dst, outside=True, src_ip=src_ip, port=port)

    def _admits(
        self,
        src_ns: str,
        src: dict[str, str],
        dst: dict[str, Any],
        *,
        outside: bool = False,
        src_ip: str = "",
        port: int = 0,
    ) -> bool:
        """Whether the CNI lets a pod (namespace, labels, address) or an outside address open a
        connection to ``dst`` on ``port``."""
        if self.cni != "enforcing":
            return True
        port = port or _first_port(dst)
        dst_ns, dst_labels = dst["metadata"]["namespace"], dst["metadata"].get("labels", {})
        dst_ip = (dst.get("status") or {}).get("podIP", "")
        if not outside:
            leaving = [
                p["spec"]
                for p in self.policies(src_ns)
                if selects(p["spec"].get("podSelector") or {}, src) and "Egress" in _types(p["spec"])
            ]
            if leaving and not any(
                _port_ok(rule, port) and self._peer_ok(rule.get("to"), dst_ns, dst_labels, dst_ip, src_ns)
                for spec in leaving
                for rule in spec.get("egress") or []
            ):
                return False
        entering = [
            p["spec"]
            for p in self.policies(dst_ns)
            if selects(p["spec"].get("podSelector") or {}, dst_labels) and "Ingress" in _types(p["spec"])
        ]
        if not entering:
            return True
        return any(
            _port_ok(rule, port)
            and self._peer_ok(
                rule.get("from"), "" if outside else src_ns, {} if outside else src, src_ip, dst_ns
            )
            for spec in entering
            for rule in spec.get("ingress") or []
        )

    def _peer_ok(
        self, peers: list[dict[str, Any]] | None, ns: str, labels: dict[str, str], ip: str, policy_ns: str
    ) -> bool:
        """Whether the other end (namespace and labels of a pod, or ``ns`` empty for outside;
        its address) is one of ``peers`` (no peers: anyone)."""
        if not peers:
            return True
        for peer in peers:
            if "ipBlock" in peer:
                if _in_block(peer["ipBlock"], ip):
                    return True
                continue
            if not ns:  # outside the cluster: only an ipBlock names it
                continue
            ns_ok = (
                selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns})
                if "namespaceSelector" in peer
                else ns == policy_ns
            )
            if ns_ok and ("podSelector" not in peer or selects(peer["podSelector"], labels)):
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
        src_ip = (pod.get("status") or {}).get("podIP", "")
        connected = (
            bool(dst)
            and int(port) in ports
            and self._admits(ns, pod["metadata"]["labels"], dst or {}, src_ip=src_ip, port=int(port))
        )
        self.probes.append((pod["metadata"]["name"], connected))
        return "Succeeded" if connected else "Failed"


def _first_port(pod: dict[str, Any]) -> int:
    return next(
        (
            int(pt["containerPort"])
            for c in pod.get("spec", {}).get("containers", [])
            for pt in c.get("ports", [])
        ),
        0,
    )
