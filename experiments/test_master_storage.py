"""HA under storage failure: one master's disk fails (full, read-only, I/O errors, slow,
flaky, or its storage daemon dies) and the masters keep serving writes with the remaining
quorum; the member comes back and catches up after the revert; no acknowledged write is
lost. Failing the storage of a majority must show as unavailability, never as silent loss.

The leader's disk is the one failed: that is the case that costs an election.
"""

import pytest

from chaos import experiment, fail_storage
from chaos.platform import STORAGE_EXAMPLES, STORAGE_MODES

RECOVERY_S = 5.0  # an election (1 s timeout) plus client failover, as for a killed leader
CATCH_UP_S = 10.0  # a restarted member replays its log and fetches what it missed


@experiment(
    verifies="HA",
    hypothesis="when the etcd leader's storage fails, writes recover within 5 s on the other two "
    "members, the member catches up within 10 s of the revert, and no acknowledged write is lost",
)
@pytest.mark.parametrize("mode", STORAGE_MODES)
def test_leader_storage_failure_keeps_writes(platform, steady, mode):
    writes = steady.durability(platform.masters)
    steady.baseline(seconds=2)
    steady.expect(platform.masters.tolerance() >= 1)  # HA needs a member to spare
    leader = platform.masters.leader()
    with fail_storage(platform, leader, mode, **STORAGE_EXAMPLES[mode]):
        steady.hold(seconds=3, phase="during")
        steady.expect(writes.recovers(within=RECOVERY_S))
    caught_up = steady.watch(f"{leader} lag", lambda: platform.masters.lag(leader))
    steady.expect(caught_up.recovers(after="end", within=CATCH_UP_S, where=lambda lag: lag <= 10))
    steady.hold(seconds=1, phase="recovery")
    steady.expect(writes.availability("recovery") >= 0.95, writes.lost() == 0)


@experiment(
    verifies="HA",
    hypothesis="when a majority of masters lose their storage, writes stop (no write is "
    "acknowledged without a quorum), resume within 10 s of the revert, and none acknowledged is lost",
)
def test_majority_storage_failure_is_unavailable_not_lossy(platform, steady):
    writes = steady.durability(platform.masters)
    steady.baseline(seconds=2)
    members = platform.masters.names()
    steady.expect(platform.masters.tolerance() >= 1)  # a majority to fail and a member left over
    leader = platform.masters.leader()
    majority = [leader, *[m for m in members if m != leader]][: len(members) // 2 + 1]
    with fail_storage(platform, majority, "io_error", allow_below_quorum=True):
        steady.hold(seconds=3, phase="during")
        steady.expect(writes.availability("during") <= 0.1)
    steady.expect(writes.recovers(after="end", within=10.0))
    steady.hold(seconds=1, phase="recovery")
    steady.expect(writes.lost() == 0)
