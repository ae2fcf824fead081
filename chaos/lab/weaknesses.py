"""The weakness catalogue: seeded defects of the resilient lab, each breaking one property.

A negative control only proves something when the run fails on the hypothesis, not on a
precondition: with one etcd member the HA experiments stop at "no member to spare" and never
judge an election. Each weakness here keeps every precondition healthy (three members, both
clusters, a reserve, a breaker...) and changes one part of the platform the way an SRE would
recognise it from a post-mortem, so that the checks meant to catch it can be shown to go red.

Select them with ``--lab-weakness NAME`` (pytest, repeatable) or ``chaos lab up --weakness
NAME``; experiments name the weaknesses that must turn their checks red (``controls=`` of
``@experiment``), and ``chaos checks`` reports which checks have been proven able to fail.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from chaos.errors import ConfigError
from chaos.lab.profiles import Profile


@dataclass(frozen=True)
class Weakness:
    name: str
    scope: str  # the one part of the platform it changes; two weaknesses may share a lab only apart
    breaks: str  # the property it breaks, in the words of the hypotheses that catch it
    description: str  # what is different, as an SRE would recognise it
    changes: dict[str, Any] = field(default_factory=dict)  # the Profile settings it overrides


CATALOGUE: tuple[Weakness, ...] = (
    # -- masters --------------------------------------------------------------------------------
    Weakness(
        "slow-election",
        "masters",
        "a new leader is elected within seconds of losing one, or of it turning too slow",
        "etcd with a 10 s election timeout (heartbeat 500 ms): tuned for a flaky WAN, "
        "so a dead leader is replaced only after 10-20 s",
        {"etcd_heartbeat_ms": 500, "etcd_election_ms": 10000},
    ),
    Weakness(
        "no-pre-vote",
        "masters",
        "writes stay available when a cut-off member returns",
        "etcd without pre-vote: a member cut off from the others keeps raising its term and, "
        "when the partition heals, forces the healthy leader to step down",
        {"pre_vote": False},
    ),
    Weakness(
        "self-fencing",
        "masters",
        "a member that was cut off catches up after healing",
        "a watchdog on every master node kills the local etcd member once it has had no leader "
        "for 3 s, and nothing restarts it: the member never rejoins without an operator",
        {"fencing": True},
    ),
    Weakness(
        "slow-restart",
        "masters",
        "a restarted member is back and caught up within seconds",
        "every restart of an etcd member waits 15 s before the process starts (a slow init "
        "container, a data-dir check): the member is gone long after its fault is reverted",
        {"restart_delay_s": 15.0},
    ),
    Weakness(
        "serializable-reads",
        "masters-reads",
        "no client reads a value older than one already acknowledged",
        "clients read the masters with serializable reads (served from the member's local "
        "state, no quorum round-trip): cheap, and stale on a member cut off from its leader",
        {"register_reads": "serializable"},
    ),
    # -- the masters' write path ----------------------------------------------------------------
    Weakness(
        "write-back",
        "masters-api",
        "no acknowledged write is lost, and none is acknowledged without a quorum",
        "a write-back cache in front of the masters' API: it acknowledges a write at once and "
        "forwards it to one member later, dropping it when that member cannot commit it",
        {"masters_api": "write-back"},
    ),
    Weakness(
        "compound",
        "masters-api",
        "no acknowledged write is lost, whatever faults overlap",
        "a spooling front on the masters' API: writes the masters cannot commit (no leader) are "
        "acknowledged and spooled to its disk, to be replayed later. A dead leader alone costs "
        "nothing, a failing spool disk alone costs nothing; both at once lose the writes the "
        "disk refused, which are parked in memory and dropped by the replay (a compound "
        "weakness: only overlapping faults reveal it)",
        {"masters_api": "spooling"},
    ),
    Weakness(
        "unchecked-lb",
        "masters-api",
        "losing a member does not interrupt writes",
        "a load balancer in front of the masters' API with no health checks and no retries: a "
        "third of the writes go to a member that is down",
        {"masters_api": "unchecked-lb"},
    ),
    # -- the global traffic manager -------------------------------------------------------------
    Weakness(
        "slow-failover",
        "traffic manager",
        "traffic moves to the backup cluster within seconds",
        "the traffic manager checks each cluster every 3 s and needs 3 failures to act: a dead "
        "cluster keeps receiving traffic for 6-9 s",
        {"gtm_check_ms": 3000, "gtm_fall": 3},
    ),
    Weakness(
        "late-failback",
        "traffic manager",
        "traffic returns to the primary cluster soon after it recovers",
        "the traffic manager needs 60 good checks (12 s) before it trusts a recovered cluster",
        {"gtm_rise": 60},
    ),
    # -- circuit breaking -----------------------------------------------------------------------
    Weakness(
        "slow-breaker",
        "breaker",
        "callers fail fast while a dependency is slow",
        "the gateway's call to inventory times out after 3 s instead of 200 ms, so the breaker "
        "opens only after callers have waited out three full timeouts each",
        {"inventory_timeout_s": 3.0},
    ),
    Weakness(
        "sticky-breaker",
        "breaker",
        "the breaker closes again soon after the dependency recovers",
        "the breaker stays open for 60 s before it tries the dependency again",
        {"breaker_reset_s": 60.0},
    ),
    Weakness(
        "no-fallback",
        "breaker",
        "callers are served a fallback while the dependency is down",
        "a breaker without a fallback: with inventory failing, orders fail with 502 and the "
        "catalogue with 503 (no last known stock)",
        {"fallback": False},
    ),
    Weakness(
        "no-breaker",
        "breaker",
        "the breaker opens and spares the failing dependency",
        "timeouts and a fallback but no circuit breaker: every order still calls the failing "
        "inventory, so the breaker never opens",
        {"breaker": False},
    ),
    # -- retries ----------------------------------------------------------------------------------
    Weakness(
        "retry-storm",
        "retries",
        "retries add little to the load on a slow dependency",
        "gateways retry a failed catalogue read at once, up to five times, with no budget: when "
        "inventory slows down each read becomes six, and the catalogue waits for all of them",
        {"gateway_retries": "unbounded"},
    ),
    Weakness(
        "shared-pool",
        "bulkheads",
        "a spike on a non-critical path is shed and leaves the critical path within its SLO",
        "gateways handle every kind of request in one pool of two slots: a flood of slow "
        "recommendations queues orders behind it instead of being shed",
        {"gateway_pools": "shared"},
    ),
    # -- the config centre ------------------------------------------------------------------------
    Weakness(
        "fail-closed-config",
        "config",
        "services keep serving on their last known configuration while the config centre is down",
        "gateways refuse the catalogue (503) once their configuration is 3 s old: losing the "
        "config centre takes the catalogue down with it",
        {"gateway_config": "fail-closed"},
    ),
    Weakness(
        "frozen-config",
        "config",
        "configuration changes reach services again once the config centre returns",
        "a gateway whose refresh fails once stops refreshing for good (a watch never "
        "re-established): after the config centre returns it serves the old configuration forever",
        {"gateway_config": "frozen"},
    ),
    # -- autoscaler and reserve -----------------------------------------------------------------
    Weakness(
        "slow-autoscaler",
        "autoscaler",
        "replicas scale out within seconds of a spike",
        "the autoscaler waits for 8 s of high load before it scales out",
        {"scale_out_after_s": 8.0},
    ),
    Weakness(
        "no-scale-in",
        "autoscaler",
        "replicas scale back in after the spike",
        "the autoscaler's scale-in window is an hour: capacity taken for a spike is never given back",
        {"scale_in_after_s": 3600.0},
    ),
    Weakness(
        "cold-reserve",
        "reserve",
        "the spike is served within its latency SLO",
        "the reserve is held cold: a replica taken from it answers orders 800 ms slower for its "
        "first 10 s in rotation (empty caches, new connections)",
        {"reserve_warmup": "slow"},
    ),
    Weakness(
        "unready-reserve",
        "reserve",
        "the spike is served within its availability SLO",
        "the reserve's replicas pass their health check before they can serve: for their first "
        "10 s in rotation they fail orders with 503",
        {"reserve_warmup": "fail"},
    ),
    # -- placement ------------------------------------------------------------------------------
    Weakness(
        "packed-replicas",
        "placement",
        "losing a host keeps the service within its SLO and its replicas are replaced elsewhere",
        "every gateway slot of a cluster is placed on one host (no anti-affinity, no topology "
        "spread): the host that goes takes every replica with it, and there is nowhere to replace them",
        {"placement": "packed"},
    ),
    # -- the standby cluster --------------------------------------------------------------------
    Weakness(
        "slow-standby",
        "standby",
        "a cold standby takes traffic within seconds of its activation",
        "the standby cluster's gateways take 12 s to start once activated (images pulled, caches "
        "filled on first start): the entry point serves nothing for as long after the primary is lost",
        {"standby_start_delay_s": 12.0},
    ),
    # -- the inventory's storage ----------------------------------------------------------------
    Weakness(
        "acks-failed-writes",
        "inventory",
        "a write the disk refuses is refused to the caller (503)",
        "the inventory acknowledges a reservation even when its disk refused the write",
        {"inventory_flaws": ("acks-failed-writes",)},
    ),
    Weakness(
        "read-audit",
        "inventory",
        "reads stay available and fast while the disk fails",
        "every read appends an audit line to the inventory's volume and fails if that write fails",
        {"inventory_flaws": ("read-audit",)},
    ),
    Weakness(
        "sticky-read-only",
        "inventory",
        "writes resume soon after the disk recovers",
        "after a failed or slow write the inventory blocks writes for 20 s (like a flood-stage "
        "disk watermark) before it looks at its disk again",
        {"inventory_flaws": ("sticky-read-only",)},
    ),
    Weakness(
        "memory-buffer",
        "inventory",
        "no acknowledged reservation is lost",
        "when its disk errs or is slow the inventory acknowledges reservations from a memory "
        "buffer it flushes every 30 s: a restart loses them",
        {"inventory_flaws": ("memory-buffer",)},
    ),
    # -- a gateway that health checks do not see ------------------------------------------------
    Weakness(
        "slow-gateway",
        "gateways",
        "requests are served within their latency SLO",
        "one gateway (east-gw1) answers every request 500 ms late while its health check stays fast",
        {"gateway_flaw": "slow"},
    ),
    Weakness(
        "flaky-gateway",
        "gateways",
        "requests are served within their availability SLO",
        "one gateway (east-gw1) fails 30% of its page requests (GET /) with 500 while its health "
        "check passes",
        {"gateway_flaw": "flaky"},
    ),
    Weakness(
        "broken-metrics",
        "gateways",
        "every service is scraped by Prometheus",
        "one gateway (east-gw1) answers its metrics endpoint with 500",
        {"gateway_flaw": "no-metrics"},
    ),
)

WEAKNESSES: dict[str, Weakness] = {w.name: w for w in CATALOGUE}


def check_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Problems with a set of weakness names: unknown names, and two that change the same part
    of the platform (each would hide or distort what the other breaks)."""
    problems = [
        f"unknown lab weakness {n!r}; weaknesses are: {', '.join(WEAKNESSES)}"
        for n in names
        if n not in WEAKNESSES
    ]
    seen: dict[str, str] = {}
    for n in names:
        w = WEAKNESSES.get(n)
        if w is None:
            continue
        if w.scope in seen and seen[w.scope] != n:
            problems.append(
                f"lab weaknesses {seen[w.scope]!r} and {n!r} both change the {w.scope}: run them in "
                "separate labs"
            )
        seen.setdefault(w.scope, n)
    return problems


def weaken(profile: Profile, names: list[str] | tuple[str, ...]) -> Profile:
    """``profile`` with the weaknesses ``names`` applied. Only the resilient profile takes
    weaknesses: the fragile one has already lost everything they would take away."""
    if not names:
        return profile
    problems = check_names(names)
    if profile.name != "resilient":
        problems.append(f"lab weaknesses apply to the resilient profile, not to {profile.name!r}")
    if problems:
        raise ConfigError(problems)
    changes: dict[str, Any] = {}
    for n in names:
        changes.update(WEAKNESSES[n].changes)
    return dataclasses.replace(profile, **changes, weaknesses=tuple(sorted(set(names))))
