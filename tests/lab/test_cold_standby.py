"""Holding the lab's backup cluster cold: refused for the primary and for a cluster there is
not, before anything changes; in force, every gateway of west is gone and its router sends to
none; the activation (the revert) starts them all at once; `chaos recover` activates west after
a killed run."""

import json

import httpx
import pytest

from chaos import ConfigError, RunContext, cold_standby
from chaos.context import default_journal
from chaos.lab import LabPlatform, procs, services, topology
from chaos.lab.autoscaler import stats
from chaos.lab.services import socket_path
from chaos.wait import wait_until
from tests.lab.conftest import chaos_cli, kill_a_run_when_ready

pytestmark = pytest.mark.lab


def west_gateways(lab):
    return {
        s.name: s.proc.alive() for s in lab.state().services if s.kind == "gateway" and s.cluster == "west"
    }


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ("east", "east is the primary cluster; only a backup cluster can be held cold: west"),
        ("north", "no cluster 'north' in this lab; clusters are: east, west"),
    ],
)
def test_bad_input_is_refused_before_anything_changes(resilient_lab, cluster, message):
    with (
        pytest.raises(ConfigError, match=message),
        cold_standby(LabPlatform(resilient_lab, RunContext()), cluster),
    ):
        pass
    assert default_journal().entries() == []
    assert all(west_gateways(resilient_lab).values())


def test_west_is_cold_while_held_and_activated_all_at_once(resilient_lab):
    with cold_standby(LabPlatform(resilient_lab, RunContext()), "west") as cold:
        assert not any(west_gateways(resilient_lab).values())
        router = stats(str(socket_path(resilient_lab.root, "west-router")))
        assert not [n for n, row in router.items() if row["status"] == "UP"]
        cold.revert()  # the activation
        assert all(west_gateways(resilient_lab).values())
        # five replicas started together: about one start, not five in a row
        assert cold.details()["activation_s"] < 5
    assert default_journal().entries() == []
    assert resilient_lab.status().problems == []


KILLED_RUN = """
    import pathlib, time
    from chaos import cold_standby

    def test_hangs_with_west_cold(platform):
        with cold_standby(platform, "west"):
            pathlib.Path({ready!r}).write_text("cold")
            time.sleep(120)
"""


def test_chaos_recover_activates_west_after_a_killed_run(resilient_lab, tmp_path):
    kill_a_run_when_ready(tmp_path, KILLED_RUN)
    [entry] = default_journal().entries()
    assert entry.kind == "lab.standby.activate"
    assert not any(west_gateways(resilient_lab).values())
    out = chaos_cli("recover")
    assert out.returncode == 0, out.stderr
    assert "undone: activate west" in out.stdout
    assert all(west_gateways(resilient_lab).values())
    assert json.loads(chaos_cli("lab", "status", "--json").stdout)["problems"] == []


def test_a_replica_started_but_never_recorded_is_replaced_not_doubled(resilient_lab):
    """A run killed between starting a replica and recording its pid leaves one the lab does
    not know (crash trials found it). The next start must stop that stray first: a second
    process cannot bind the port, exits, and the lab records it while the stray serves."""
    st = resilient_lab.state()
    name = sorted(west_gateways(resilient_lab))[0]
    procs.kill(st.service(name).proc)
    plan = next(p for p in topology.services(st.shape) if p.name == name)
    stray = services.spawn(plan, st.shape, resilient_lab.root, [m.client_url for m in st.members])
    with httpx.Client() as http:
        wait_until(
            lambda: services.healthy(stray, http), timeout=10, interval=0.05, what="the stray to serve"
        )
    resilient_lab.start_services([name])
    recorded = resilient_lab.state().service(name).proc
    assert not stray.proc.alive()
    assert recorded != stray.proc and recorded.alive()
    assert resilient_lab.status().problems == []
