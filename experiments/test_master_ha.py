"""HA: the masters survive losing one etcd member, leader or follower.

Each test holds a steady write load on the masters, checks the baseline, kills a member
and verifies the platform's promise with measured numbers: a new leader is in place, writes
recover within a bound, the writes lost to the outage stay within the bound, and no
acknowledged write is lost.
"""

from chaos import Platform, Steady, experiment, kill_master

RECOVERY_S = 5.0  # etcd's election timeout is 1 s; 5 s leaves room for client failover


@experiment(
    verifies="HA",
    hypothesis="losing the etcd leader costs < 5 s of writes, a new leader is elected within 5 s "
    "and no acknowledged write is lost",
    controls={
        "slow-election": [
            "leader new leader elected [during]",
            "writes time to recover [during]",
            "writes downtime [all]",
        ],
        "write-back": ["writes lost (acknowledged) [all]"],
    },
)
def test_leader_loss_keeps_writes(platform: Platform, steady: Steady) -> None:
    writes = steady.durability(platform.masters)
    leadership = steady.leadership(platform.masters)
    steady.baseline(seconds=3)
    steady.require(platform.masters.tolerance() >= 1)  # HA needs a member to spare
    with kill_master(platform, pick="leader"):
        steady.expect(
            leadership.elected(within=RECOVERY_S),
            writes.recovers(within=RECOVERY_S),
            writes.downtime() <= RECOVERY_S,
        )
    steady.hold(seconds=1, phase="recovery")
    steady.expect(writes.lost() == 0)


@experiment(
    verifies="HA",
    hypothesis="losing an etcd follower costs at most 0.5 s of writes (>= 95% served while it is down) "
    "and loses nothing",
    controls={
        "unchecked-lb": ["writes availability [during]", "writes downtime [all]"],
        "write-back": ["writes lost (acknowledged) [all]"],
    },
)
def test_follower_loss_keeps_writes(platform: Platform, steady: Steady) -> None:
    writes = steady.durability(platform.masters)
    steady.baseline(seconds=3)
    steady.require(platform.masters.tolerance() >= 1)
    with kill_master(platform, pick="follower"):
        steady.hold(seconds=3, phase="during")
    steady.hold(seconds=1, phase="recovery")
    steady.expect(writes.availability("during") >= 0.95, writes.downtime() <= 0.5, writes.lost() == 0)
