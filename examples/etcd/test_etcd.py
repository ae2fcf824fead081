"""A bare etcd cluster (``topology.yaml`` beside this file) under the faults its users fear:
its leader killed, its leader cut off from the others. Each experiment names the variant of
the topology that must turn it red (its negative control); ``chaos checks --run --topology
examples/etcd/topology.yaml examples/etcd`` proves they do.

    pytest examples/etcd                        # pytest.ini here points the lab at topology.yaml
    pytest examples/etcd --lab-profile no-pre-vote   # a variant: must fail
"""

from chaos import Platform, Steady, experiment, kill_master, partition

RECOVERY_S = 5.0  # election timeout 1 s: 5 s leaves room for client failover


@experiment(
    verifies="HA",
    hypothesis="losing the etcd leader costs < 5 s of writes, a new leader is elected within 5 s "
    "and no acknowledged write is lost",
    controls={"slow-election": ["leader new leader elected [during]", "writes time to recover [during]"]},
)
def test_leader_loss_keeps_writes(platform: Platform, steady: Steady) -> None:
    writes = steady.durability(platform.masters)
    leadership = steady.leadership(platform.masters)
    steady.baseline(seconds=1)
    steady.require(platform.masters.tolerance() >= 1)
    with kill_master(platform, pick="leader"):
        steady.expect(leadership.elected(within=RECOVERY_S), writes.recovers(within=RECOVERY_S))
    steady.hold(seconds=1, phase="recovery")
    steady.expect(writes.lost() == 0)


@experiment(
    verifies="HA",
    hypothesis="with the leader cut off from the other members, the majority elects a new leader "
    "and takes writes within 5 s, the old leader rejoins without disrupting writes (>= 98% served "
    "after healing: one late sample at most), and no acknowledged write is lost",
    controls={"no-pre-vote": ["writes availability [recovery]"]},
)
def test_isolated_leader_rejoins_quietly(platform: Platform, steady: Steady) -> None:
    steady.require(platform.masters.tolerance() >= 1)
    old = platform.masters.require_leader()
    others = [m for m in platform.masters.names() if m != old]
    writes = steady.durability(platform.masters)
    leadership = steady.leadership(platform.masters)
    steady.baseline(seconds=1)
    with partition(platform, [old], others, label="leader from the rest"):
        steady.expect(leadership.elected(within=RECOVERY_S), writes.recovers(within=RECOVERY_S))
        # long enough for the cut-off member to campaign twice (it needs a term above the new
        # leader's to disrupt it on return): without pre-vote, it then always does
        steady.hold(seconds=5, phase="partitioned")
    steady.hold(seconds=3, phase="recovery")
    # a rejoining member that unseats the leader costs one quick election: 0.15 s of writes in a
    # fresh-clone run, 5 % of the window, which a 95 % bound let pass
    steady.expect(writes.availability("recovery") >= 0.98, writes.lost() == 0)
