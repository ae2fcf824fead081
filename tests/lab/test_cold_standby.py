"""Holding the lab's backup cluster cold: refused for the primary and for a cluster there is
not, before anything changes; in force, every gateway of west is gone and its router sends to
none; the activation (the revert) starts them all at once; `chaos recover` activates west after
a killed run."""

import json

import pytest

from chaos import ConfigError, RunContext, cold_standby
from chaos.context import default_journal
from chaos.lab import LabPlatform
from chaos.lab.autoscaler import stats
from chaos.lab.services import socket_path
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
