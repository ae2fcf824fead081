"""The control plane's etcd as static pods: who is alive, who leads."""

from __future__ import annotations

import time

ELECTION_S = 1.0  # etcd's election timeout: how long a cluster that lost its leader has none
RESTART_S = 1.5  # how long the kubelet takes to restart a killed static pod


class EtcdSim:
    """Three etcd members as static pods ``etcd-node-N`` in kube-system: who is alive, who
    leads. A killed member comes back after RESTART_S; a killed leader leaves the cluster
    leaderless for ELECTION_S, then the first live member leads if a quorum is alive."""

    def __init__(self, members: int = 3) -> None:
        self.members = [f"etcd-node-{i}" for i in range(1, members + 1)]
        self.down_until = dict.fromkeys(self.members, 0.0)
        self.restarts = dict.fromkeys(self.members, 0)
        self.leader: str | None = self.members[0]
        self.leaderless_until = 0.0
        self.raft_index = 100  # one more per write committed
        # kubeadm and kind bind etcd's metrics to 127.0.0.1:2381: the pod proxy cannot reach
        # them unless the cluster was configured to listen on the node's address
        self.metrics_exposed = False
        # how long a write waits for a leader before the API server answers 504 (kube-apiserver
        # waits for etcd's own request timeout, seconds)
        self.write_wait_s = 3.0
        self.actuator_works = True  # False: the actuator pod runs and kills nothing (no host PIDs)
        self.election_s = ELECTION_S  # a slow election (a timeout tuned for a flaky WAN): longer
        # > 0: a write-back cache in front of etcd acknowledges writes before they are committed,
        # and the ones of the last ``write_back_s`` seconds die with the leader
        self.write_back_s = 0.0
        self._cached: list[tuple[float, tuple[str, str]]] = []  # (when acknowledged, configmap key)

    def alive(self, member: str) -> bool:
        return time.monotonic() >= self.down_until[member]

    def acknowledged(self, key: tuple[str, str]) -> None:
        if self.write_back_s > 0:
            self._cached.append((time.monotonic(), key))

    def kill(self, member: str) -> list[tuple[str, str]]:
        """Kill ``member``; returns the keys of acknowledged writes that died with it (a
        write-back cache in front of a leader)."""
        now = time.monotonic()
        self.down_until[member] = now + RESTART_S
        self.restarts[member] += 1
        if member != self.leader:
            return []
        self.leader, self.leaderless_until = None, now + self.election_s
        lost = [key for t, key in self._cached if now - t <= self.write_back_s]
        self._cached.clear()
        return lost

    def current_leader(self) -> str | None:
        if self.leader is not None and self.alive(self.leader):
            return self.leader
        if time.monotonic() < self.leaderless_until:
            return None
        alive = [m for m in self.members if self.alive(m)]
        self.leader = alive[0] if len(alive) > len(self.members) // 2 else None
        return self.leader
