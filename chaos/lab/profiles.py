"""Lab profiles: ``resilient`` is the platform as it should be; ``fragile`` is the negative
control with the redundancy taken away, on which every experiment must fail.

A profile is every setting of the lab's shape and behaviour in one frozen value; the finer
negative controls (``chaos.lab.weaknesses``) are variants of ``resilient`` that change a few
of these settings and nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaos.errors import ConfigError
from chaos.lab.workload.choices import CONFIG_MODES, GATEWAY_FLAWS, INVENTORY_FLAWS, POOLS, RETRIES, WARMUPS
from chaos.platform import quorum

MASTERS_API = ("direct", "write-back", "unchecked-lb", "spooling")
PLACEMENTS = ("spread", "packed")


@dataclass(frozen=True)
class Profile:
    name: str
    masters: int
    clusters: tuple[str, ...]  # the first is primary behind the traffic manager, others backup
    breaker: bool
    description: str
    gateway_slots: int = 2  # capacity: gateway replicas a cluster can run
    min_replicas: int = 2  # in rotation at rest
    reserve: float = 0.0  # share of slots held warm and free for scale-out
    autoscale: bool = False
    # per replica: the autoscaler's set point. The reserved-capacity experiment's baseline is
    # 25 req/s through a router (10 of load, 10 of probe, 5 of the traffic manager's health
    # checks): 2 replicas at rest, with a margin, and 3 or more in the spike
    target_rps: float = 15.0
    # -- masters (etcd) --
    etcd_heartbeat_ms: int = 100  # etcd's recommended LAN timings: a dead leader is replaced in ~1-2 s
    etcd_election_ms: int = 1000
    pre_vote: bool = True  # a member cut off cannot inflate its term and unseat the leader on return
    etcd_args: tuple[str, ...] = ()  # further etcd flags
    restart_delay_s: float = 0.0  # a restarted member waits this long before it starts
    # a restarted gateway of a backup cluster (a cold standby activated) waits this long first
    standby_start_delay_s: float = 0.0
    masters_api: str = "direct"  # how writers reach the masters (see MASTERS_API)
    fencing: bool = False  # a watchdog kills a member that has had no leader for 3 s, for good
    register_reads: str = "linearizable"  # how register clients read: or "serializable" (local)
    # -- traffic manager --
    gtm_check_ms: int = 200
    gtm_fall: int = 2
    gtm_rise: int = 2
    # -- gateways, breaker --
    fallback: bool = True  # with the breaker open (or inventory failing), take the order unreserved
    inventory_timeout_s: float = 0.2
    breaker_fail_max: int = 3
    breaker_reset_s: float = 3.0
    gateway_flaw: str = ""  # one gateway (east-gw1) misbehaves behind healthy health checks
    gateway_retries: str = "budget"  # catalogue reads: "budget" (10 %, backoff) or "unbounded"
    gateway_pools: str = "bulkhead"  # recommendations in a bulkhead, shed when full; or "shared"
    gateway_config: str = "last-known"  # without the config centre (see CONFIG_MODES)
    # -- autoscaler and reserve --
    scale_out_after_s: float = 0.0  # load must stay high this long before scaling out
    scale_in_after_s: float = 5.0
    reserve_warmup: str = ""  # reserve slots start cold: their first seconds are slow or fail
    # -- placement: the hosts (machines) a cluster's gateway slots run on --
    hosts: int = 3
    placement: str = "spread"  # slots round-robin over the hosts; "packed": every slot on the first
    # -- inventory --
    inventory_flaws: tuple[str, ...] = ()
    weaknesses: tuple[str, ...] = ()  # the named weaknesses this profile carries

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.reserve <= 0.9:
            problems.append(f"reserve={self.reserve!r}: use a share from 0 to 0.9 (90%)")
        if not 1 <= self.min_replicas <= self.gateway_slots:
            problems.append(
                f"min_replicas={self.min_replicas!r} with {self.gateway_slots} slots: use 1 to the slot count"
            )
        if self.target_rps <= 0:
            problems.append(f"target_rps={self.target_rps!r}: must be greater than 0")
        if self.etcd_election_ms < 5 * self.etcd_heartbeat_ms:
            problems.append("etcd_election_ms must be at least 5 times etcd_heartbeat_ms (etcd refuses less)")
        if self.register_reads not in ("linearizable", "serializable"):
            problems.append(f"register_reads={self.register_reads!r}: linearizable or serializable")
        if self.masters_api not in MASTERS_API:
            problems.append(f"masters_api={self.masters_api!r}: use one of {', '.join(MASTERS_API)}")
        problems += [
            f"unknown inventory flaw {f!r}" for f in self.inventory_flaws if f not in INVENTORY_FLAWS
        ]
        if self.gateway_flaw and self.gateway_flaw not in GATEWAY_FLAWS:
            problems.append(f"unknown gateway flaw {self.gateway_flaw!r}")
        if self.gateway_retries not in RETRIES:
            problems.append(f"gateway_retries={self.gateway_retries!r}: use one of {', '.join(RETRIES)}")
        if self.gateway_config not in CONFIG_MODES:
            problems.append(f"gateway_config={self.gateway_config!r}: use one of {', '.join(CONFIG_MODES)}")
        if self.gateway_pools not in POOLS:
            problems.append(f"gateway_pools={self.gateway_pools!r}: use one of {', '.join(POOLS)}")
        if self.hosts < 1:
            problems.append(f"hosts={self.hosts!r}: a cluster needs at least one host")
        if self.placement not in PLACEMENTS:
            problems.append(f"placement={self.placement!r}: use one of {', '.join(PLACEMENTS)}")
        if self.reserve_warmup not in WARMUPS:
            problems.append(f"unknown reserve warm-up {self.reserve_warmup!r}")
        if problems:
            raise ConfigError(problems)

    @property
    def reserved_slots(self) -> int:
        return math.ceil(self.reserve * self.gateway_slots - 1e-9)

    @property
    def quorum(self) -> int:
        return quorum(self.masters)


PROFILES: dict[str, Profile] = {
    "resilient": Profile(
        "resilient",
        masters=3,
        clusters=("east", "west"),
        breaker=True,
        description="3 etcd masters, clusters east + west (backup), circuit breaker on, "
        "autoscaled gateways with a 20% warm reserve",
        gateway_slots=5,
        min_replicas=2,
        reserve=0.2,
        autoscale=True,
    ),
    "fragile": Profile(
        "fragile",
        masters=1,
        clusters=("east",),
        breaker=False,
        description="1 etcd master, cluster east only (no backup), no circuit breaker, no reserve, "
        "no autoscaler, unbounded retries, one shared pool, fail-closed configuration, write-behind "
        "inventory (no fsync, "
        "acknowledges failed writes)",
        fallback=False,
        gateway_retries="unbounded",
        gateway_pools="shared",
        gateway_config="fail-closed",
        inventory_timeout_s=5.0,
        inventory_flaws=("acks-failed-writes", "reads-from-disk", "no-fsync"),
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown lab profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
