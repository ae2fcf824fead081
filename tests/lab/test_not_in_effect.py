"""Every fault the lab offers fails its verification when its effect is taken away behind its
back: a green run must never rest on a fault that was not there.

Each case injects a fault (its verification passes), undoes the mechanism under it (rules
deleted, a killed process started again, a failed mount served afresh) and verifies again,
which must raise ``FaultNotInEffect`` saying what it found; the revert then leaves nothing.
The cases cover every fault kind of the lab, every effect of a degraded link and every
storage mode (the first test checks that).
"""

import inspect
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pytest

from chaos import (
    FaultNotInEffect,
    cold_standby,
    degrade,
    fail_storage,
    kill_master,
    kill_service,
    lose_host,
    partition,
)
from chaos.fault import Fault
from chaos.lab import LabPlatform
from chaos.lab.faultfs import Rules
from chaos.lab.iptables import delete_tagged, rules_tagged
from chaos.lab.storage import _next_generation, io_problem, set_rules
from chaos.platform import STORAGE_MODES, LinkFault, Platform

pytestmark = pytest.mark.lab


@dataclass(frozen=True)
class Case:
    kind: str  # the fault's kind, with the effect or mode it is about
    make: Callable[[LabPlatform], Fault]
    undo: Callable[[LabPlatform, Fault], None]  # takes the effect away, behind the fault's back
    says: str  # what the failed verification must say


def drop_rules(*ns: str) -> Callable[[LabPlatform, Fault], None]:
    def undo(_plat: LabPlatform, fault: Fault) -> None:
        assert delete_tagged(list(ns), fault.tag) > 0  # there were rules to take away

    return undo


def clear_disk_rules(mode: str = "none") -> Callable[[LabPlatform, Fault], None]:
    def undo(plat: LabPlatform, _fault: Fault) -> None:
        set_rules(plat.lab.volume("east-inv"), Rules(generation=_next_generation(), mode=mode))

    return undo


def remount(plat: LabPlatform, _fault: Fault) -> None:
    plat.lab.remount_volume("east-inv")


def no_qdisc(_plat: LabPlatform, _fault: Fault) -> None:
    subprocess.run(
        ["ip", "netns", "exec", "chaos-east-inv", "tc", "qdisc", "del", "dev", "eth0", "root"], check=True
    )


def restart_member(plat: LabPlatform, fault: Fault) -> None:
    plat.lab.start_member(fault.details()["target"])


def restart_services(names: Callable[[Fault], list[str]]) -> Callable[[LabPlatform, Fault], None]:
    return lambda plat, fault: plat.lab.start_services(names(fault))


def link(fault: dict[str, Any]) -> Callable[[LabPlatform], Fault]:
    return lambda plat: degrade(plat, ["east-gw1"], "east-inv", **fault)


def storage(mode: str, **params: Any) -> Callable[[LabPlatform], Fault]:
    return lambda plat: fail_storage(plat, "east-inv", mode, **params)


CASES = [
    Case(
        "kill_master",
        lambda plat: kill_master(plat, "follower"),
        restart_member,
        "the process is still running",
    ),
    Case(
        "kill_service",
        lambda plat: kill_service(plat, "east-gw2"),
        restart_services(lambda _f: ["east-gw2"]),
        "the process is still running",
    ),
    Case(
        "partition",
        lambda plat: partition(plat, ["m1"], ["m2", "m3"]),
        drop_rules("chaos-m1", "chaos-m2", "chaos-m3"),
        "still connected: m1 -> m2, m1 -> m3",
    ),
    # a verification that stops at the first request showing the latency, and fails after three
    Case("degrade latency", link({"latency": 0.3}), drop_rules("chaos-east-inv"), "added latency measured"),
    Case("degrade loss", link({"loss": 0.3}), drop_rules("chaos-east-inv"), "none was dropped or reset"),
    Case("degrade reset", link({"reset": 0.5}), drop_rules("chaos-east-inv"), "none was dropped or reset"),
    Case("degrade bandwidth_kbit", link({"bandwidth_kbit": 512}), no_qdisc, "no tbf qdisc"),
    # a disk that refuses writes for another reason is not full
    Case("fail_storage full", storage("full"), clear_disk_rules("read_only"), "gave EROFS.*expected ENOSPC"),
    Case("fail_storage read_only", storage("read_only"), clear_disk_rules(), "gave no error, expected EROFS"),
    Case("fail_storage io_error", storage("io_error"), remount, "gave no error, expected EIO"),
    # one read of a file opened before the rules applied: one added latency, not five
    Case(
        "fail_storage slow",
        storage("slow", latency=0.2),
        clear_disk_rules(),
        "ms per operation, asked \\+200 ms",
    ),
    Case("fail_storage flaky", storage("flaky", rate=0.5), clear_disk_rules(), "operations and none failed"),
    Case("fail_storage lost", storage("lost"), remount, "gave no error, expected ENOTCONN"),
    Case(
        "cold_standby",
        lambda plat: cold_standby(plat, "west"),
        restart_services(lambda fault: fault.details()["replicas"]),
        "still running: west-gw",
    ),
    # a host's loss is its kills and its cut together: one gateway back is enough to fail it
    Case(
        "lose_host",
        lambda plat: lose_host(plat, "east-host3"),
        restart_services(lambda _f: ["east-gw3"]),
        "the process is still running",
    ),
]


def test_the_cases_cover_every_kind_every_link_effect_and_every_storage_mode():
    kinds = {c.kind for c in CASES}
    effects = {f.name for f in fields(LinkFault)} - {"jitter"}  # jitter only varies the latency
    assert {f"degrade {e}" for e in effects} <= kinds
    assert {f"fail_storage {m}" for m in STORAGE_MODES} <= kinds
    # every fault the platform contract offers, read from it so a new kind needs a case here;
    # the registry's loss and rollouts are Kubernetes's (the lab runs processes, not images)
    offered = {
        name
        for name, fn in inspect.getmembers(Platform, inspect.isfunction)
        if inspect.signature(fn).return_annotation in ("Fault", Fault)
    }
    assert {k.split()[0] for k in kinds} == offered - {"lose_registry", "roll_out"}


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_a_fault_whose_effect_is_taken_away_fails_its_verification(plat, case):
    fault = case.make(plat)
    with fault:
        fault.verify()  # in force: passes again
        case.undo(plat, fault)
        with pytest.raises(FaultNotInEffect, match=case.says):
            fault.verify()
    assert plat.ctx.journal.entries() == []
    assert not [n for n in plat.nodes() if rules_tagged(f"chaos-{n}")]
    assert io_problem(plat.lab.volume("east-inv").mountpoint) is None
    plat.wait_healthy()
