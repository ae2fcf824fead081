"""The weakness catalogue and negative-control declarations: what a user types is validated
before any lab exists, and a weakness changes only the part of the lab it names."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from chaos import ConfigError, controls, experiment
from chaos.lab.haproxy import gtm_config
from chaos.lab.profiles import PROFILES
from chaos.lab.services import _argv
from chaos.lab.topology import has_volume, services
from chaos.lab.weaknesses import CATALOGUE, WEAKNESSES, check_names, weaken

RESILIENT = PROFILES["resilient"]
ROOT = Path(__file__).resolve().parents[1]
STATE = Path("/var/lib/chaos-lab")


@pytest.mark.parametrize("weakness", CATALOGUE, ids=[w.name for w in CATALOGUE])
def test_each_weakness_keeps_the_preconditions_and_changes_only_its_settings(weakness):
    weak = weaken(RESILIENT, [weakness.name])
    # what the preconditions rest on stays: three masters, both clusters, the reserve
    assert (weak.masters, weak.clusters, weak.reserve, weak.gateway_slots) == (3, ("east", "west"), 0.2, 5)
    changed = {
        f.name for f in dataclasses.fields(RESILIENT) if getattr(weak, f.name) != getattr(RESILIENT, f.name)
    }
    assert changed == {*weakness.changes, "weaknesses"}
    assert weak.weaknesses == (weakness.name,)
    assert weakness.breaks and weakness.description and weakness.scope


def test_weaknesses_that_change_the_same_part_are_refused_together():
    assert check_names(["slow-election", "write-back", "slow-failover"]) == []
    [problem] = check_names(["slow-election", "no-pre-vote"])
    assert "'slow-election' and 'no-pre-vote' both change the masters: run them in separate labs" in problem
    [unknown] = check_names(["slow-elections"])
    assert unknown.startswith("unknown lab weakness 'slow-elections'; weaknesses are: slow-election, ")
    with pytest.raises(ConfigError, match="apply to the resilient profile, not to 'fragile'"):
        weaken(PROFILES["fragile"], ["slow-election"])


def test_a_weakness_reaches_the_processes_it_changes():
    weak = weaken(
        RESILIENT, ["slow-failover", "no-breaker", "cold-reserve", "memory-buffer", "flaky-gateway"]
    )
    svcs = {s.name: s for s in services(weak)}
    argv = {
        name: _argv(svc, weak, STATE, ["http://198.18.0.11:2379"])
        for name, svc in svcs.items()
        if svc.kind in ("gateway", "inventory")
    }
    assert "--no-breaker" in argv["east-gw1"] and "--no-fallback" not in argv["east-gw1"]
    assert argv["east-gw1"][-2:] == ["--flaw", "flaky"]  # one gateway, the first of the primary
    assert "--flaw" not in argv["east-gw2"] and "--flaw" not in argv["west-gw1"]
    assert argv["east-gw3"][-2:] == ["--cold", "slow"] and "--cold" not in argv["east-gw2"]  # the reserve
    assert argv["east-inv"][-2:] == ["--flaw", "memory-buffer"]
    routers = [s for s in svcs.values() if s.kind == "router"]
    gtm = gtm_config(svcs["gtm"], routers, STATE / "gtm.sock", weak)
    slow = weak.gtm_check_ms
    assert slow > RESILIENT.gtm_check_ms and weak.gtm_fall > RESILIENT.gtm_fall
    assert f"inter {slow}ms fastinter {slow}ms downinter {slow}ms fall {weak.gtm_fall} rise 2" in gtm
    plain = gtm_config(svcs["gtm"], routers, STATE / "gtm.sock", RESILIENT)
    assert "inter 200ms fastinter 200ms downinter 200ms fall 2 rise 2" in plain


def test_masters_api_weaknesses_add_a_front_node_and_fencing_a_watchdog():
    assert [s.name for s in services(RESILIENT) if s.kind in ("masters-api", "fencing")] == []
    front = weaken(RESILIENT, ["write-back", "self-fencing"])
    extra = {s.name: s for s in services(front) if s.kind in ("masters-api", "fencing")}
    assert extra["api"].address == "198.18.0.22" and extra["api"].port == 2379
    assert extra["fencing"].address == ""  # the root namespace
    assert _argv(extra["api"], front, STATE, ["u1", "u2"])[-2:] == ["--members", "u1,u2"]
    assert not has_volume(extra["api"], front)
    # the compound weakness's front spools to a volume of its own, where storage faults reach it
    spooling = weaken(RESILIENT, ["compound"])
    [api] = [s for s in services(spooling) if s.kind == "masters-api"]
    assert has_volume(api, spooling)
    assert _argv(api, spooling, STATE, ["u1"])[-2:] == ["--spool", str(STATE / "mnt" / "api")]


def test_controls_are_validated_where_they_are_declared():
    with pytest.raises(ConfigError, match="a check label is the check's name and window"):
        experiment(verifies="HA", hypothesis="h", controls={"slow-election": ["writes time to recover"]})
    with pytest.raises(ConfigError, match="needs a list of check labels, not one string"):
        experiment(verifies="HA", hypothesis="h", controls={"slow-election": "writes lost [all]"})
    mark = controls({"write-back": ["writes lost (acknowledged) [all]"]})
    assert mark.mark.args[0] == {"write-back": ("writes lost (acknowledged) [all]",)}


def test_bad_lab_weakness_options_are_usage_errors(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess(
        "--lab-weakness", "slow-elections", "--lab-weakness", "slow-election", "--lab-weakness", "no-pre-vote"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--lab-weakness: unknown lab weakness 'slow-elections'" in err
    assert "'slow-election' and 'no-pre-vote' both change the masters" in err
    assert "Traceback" not in err
    result = pytester.runpytest_subprocess("--lab-profile", "fragile", "--lab-weakness", "slow-election")
    assert (
        "--lab-weakness applies to the resilient profile, not to --lab-profile 'fragile'"
        in result.stderr.str()
    )


def test_chaos_checks_lists_every_declared_control(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "chaos", "checks", "experiments/test_master_ha.py"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "experiments/test_master_ha.py::test_leader_loss_keeps_writes" in lines
    assert "    leader new leader elected [during]  <-  slow-election" in lines
    assert "    writes lost (acknowledged) [all]  <-  write-back" in lines
    assert lines[-1].startswith("2 experiments, 7 checks with a control, 3 weaknesses")


def test_every_declared_weakness_exists():
    out = subprocess.run(
        [sys.executable, "-m", "chaos", "checks"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr  # an unknown weakness name would be an error
    named = {line.rsplit("<-  ", 1)[1] for line in out.stdout.splitlines() if "<-  " in line}
    # every one is used; the compound weakness only a search can find, so no experiment names
    # it: tests/lab/test_experiments.py proves that exploration finds it
    used = {w.strip() for n in named for w in n.split(",")}
    assert used | {"compound"} == set(WEAKNESSES) and "compound" not in used
