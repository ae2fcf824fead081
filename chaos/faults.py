"""Public fault constructors: platform-neutral names that dispatch to the platform driver."""

from __future__ import annotations

from chaos.fault import Fault
from chaos.platform import Platform


def kill_master(platform: Platform, pick: str = "leader", *, allow_below_quorum: bool = False) -> Fault:
    """SIGKILL one etcd master: ``pick`` is "leader", "follower" (seeded choice) or a member
    name. Refuses before touching anything if the kill would cost quorum, unless
    ``allow_below_quorum``. Reverting restarts the member and waits until it has rejoined."""
    return platform.kill_master(pick, allow_below_quorum=allow_below_quorum)
