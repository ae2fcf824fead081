"""The workload under storage failure: the inventory's volume fills up, turns read-only,
fails every I/O, slows down, fails half its operations, or loses its storage daemon.

Writes (reservations) must be refused with a clear error (503), never acknowledged and then
lost; reads keep working from memory; after the revert the inventory is restarted and every
acknowledged reservation must come back from its volume.
"""

import pytest

from chaos import Platform, Steady, controls, experiment, fail_storage, kill_service
from chaos.platform import STORAGE_EXAMPLES, STORAGE_MODES

VOLUME = "east-inv"
READ_P99_MS = 100


def refused(error: str) -> bool:
    return error.startswith("WriteRefused: 503")


# a slow disk refuses nothing, so nothing can acknowledge what it refused
SLOW = controls({"acks-failed-writes": []})
MODES = [pytest.param(m, marks=SLOW) if m == "slow" else m for m in STORAGE_MODES]


@experiment(
    verifies="durability",
    hypothesis="when the inventory's volume fails, writes are refused with 503 (never acknowledged "
    "and lost), reads stay available with p99 < 100 ms, writes resume within 10 s of the revert and a "
    "restart, and every acknowledged reservation is still there",
    controls={
        "acks-failed-writes": ["reservations time until a write is refused with 503 [during]"],
        "read-audit": ["stock availability [during]", "stock p99 latency [during]"],
        "sticky-read-only": ["reservations time to recover after revert [recovery]"],
        "memory-buffer": ["reservations lost (acknowledged) [all]"],
    },
)
@pytest.mark.parametrize("mode", MODES)
def test_workload_storage_failure_loses_nothing(platform: Platform, steady: Steady, mode: str) -> None:
    inventory = platform.inventory("east")
    writes = steady.durability(inventory, name="reservations")
    # a p99 needs >= 100 reads in the 2 s held "during": at 50 Hz that was exactly 100, and a
    # probe a few samples behind (95, with the storage daemon killed) made it a usage error
    reads = steady.http("stock", f"{inventory.url}/stock?sku=chaos", hz=80)
    steady.baseline(seconds=2)
    with fail_storage(platform, VOLUME, STORAGE_EXAMPLES[mode]):
        if mode != "slow":  # a slow disk delays writes; it refuses none
            steady.expect(writes.notices(within=5.0, where=refused, label="a write is refused with 503"))
        steady.hold(seconds=2, phase="during")
        steady.expect(
            reads.availability("during") >= 0.99,
            reads.latency(99, "during") <= READ_P99_MS,
        )
    resumed = writes.recovers(after="end", within=10.0)  # timed from this revert, restart included
    # a restart reads the ledger back from the volume: what was acknowledged must be there
    with kill_service(platform, VOLUME):
        pass
    steady.expect(resumed, writes.lost() == 0)
