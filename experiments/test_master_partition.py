"""HA under a partition: the etcd leader is cut off from the other masters (Jepsen's
"isolate the leader"). Quorum semantics must hold: the majority moves on, the minority
acknowledges nothing, and the old leader catches up after healing without unseating the new
one. Register clients (one routed to the old leader, two to any member) check what readers
saw: the history must be linearizable, with no stale read."""

from chaos import Platform, PlatformError, Steady, experiment, partition

RECOVERY_S = 5.0
CATCH_UP_S = 10.0
MAX_LAG = 10  # raft entries: under 20 writes/s a healthy follower trails by a few


@experiment(
    verifies="HA",
    hypothesis="with the etcd leader partitioned from the other masters, the majority elects a new leader "
    "and accepts writes within 5 s, the minority acknowledges no write, the old leader catches up "
    "within 10 s of healing without disrupting writes (>= 95% served after healing), no "
    "acknowledged write is lost, and no client reads a stale value (the history is linearizable)",
    controls={
        "slow-election": ["leader new leader elected [during]", "writes time to recover [during]"],
        "write-back": ["minority writes share acknowledged [during]", "writes lost (acknowledged) [all]"],
        "self-fencing": ["old leader caught up after healing [recovery]"],
        "no-pre-vote": ["writes availability [recovery]"],
        "serializable-reads": ["registers linearizable [all]", "registers stale reads [all]"],
    },
)
def test_isolated_leader_keeps_quorum_semantics(platform: Platform, steady: Steady) -> None:
    steady.require(platform.masters.tolerance() >= 1)  # a partition needs a majority to survive it
    old = platform.masters.require_leader()
    others = [m for m in platform.masters.names() if m != old]

    def caught_up() -> int:
        lag = platform.masters.lag(old)
        if lag > MAX_LAG:
            raise PlatformError(f"{old} is {lag} entries behind")
        return lag

    writes = steady.durability(platform.masters)
    minority = steady.durability(platform.masters.only(old), name="minority writes")
    leadership = steady.leadership(platform.masters)
    routes = [platform.masters.registers(old), platform.masters.registers(), platform.masters.registers()]
    registers = steady.registers(routes)
    catch_up = steady.watch("old leader caught up", caught_up, hz=5)
    steady.baseline(seconds=3)
    with partition(platform, [old], others, label="leader from the rest"):
        steady.expect(leadership.elected(within=RECOVERY_S), writes.recovers(within=RECOVERY_S))
        steady.hold(seconds=2, phase="partitioned")
    steady.hold(seconds=3, phase="recovery")
    steady.expect(
        minority.share(lambda _: True, "during", label="acknowledged") == 0,
        catch_up.recovers(within=CATCH_UP_S, after="end", label="after healing"),
        writes.availability("recovery") >= 0.95,
        writes.lost() == 0,
        registers.linearizable(),
        registers.stale_reads() == 0,
    )
