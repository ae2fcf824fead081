"""HA: the masters survive losing one etcd member, leader or follower.

Each test holds a steady write load on the masters, checks the baseline, kills a member
and verifies the platform's promise with measured numbers: a leader is in place again,
writes recover within a bound, the writes lost to the outage stay within the bound, and no
acknowledged write is lost.
"""

from chaos import experiment, kill_master

RECOVERY_S = 5.0  # etcd's election timeout is 1 s; 5 s leaves room for client failover


@experiment(
    verifies="HA",
    hypothesis="losing the etcd leader costs < 5 s of writes, a new leader is elected "
    "and no acknowledged write is lost",
)
def test_leader_loss_keeps_writes(platform, steady):
    writes = steady.durability(platform.masters)
    leadership = steady.leadership(platform.masters)
    steady.baseline(seconds=3)
    steady.expect(platform.masters.tolerance() >= 1)  # HA needs a member to spare
    with kill_master(platform, pick="leader"):
        steady.expect(leadership.elected(within=RECOVERY_S), writes.recovers(within=RECOVERY_S))
    steady.hold(seconds=2, phase="recovery")
    steady.expect(
        leadership.changes() >= 1,
        writes.downtime() <= RECOVERY_S,
        writes.availability("recovery") >= 0.99,
        writes.lost() == 0,
    )


@experiment(verifies="HA", hypothesis="losing an etcd follower does not interrupt writes and loses nothing")
def test_follower_loss_keeps_writes(platform, steady):
    writes = steady.durability(platform.masters)
    steady.baseline(seconds=3)
    steady.expect(platform.masters.tolerance() >= 1)
    with kill_master(platform, pick="follower"):
        steady.hold(seconds=3, phase="during")
        steady.expect(writes.availability("during") >= 0.95)
    steady.hold(seconds=2, phase="recovery")
    steady.expect(writes.downtime() <= 0.5, writes.lost() == 0)
