import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from chaos.lab import Lab, procs
from tests.lab.conftest import ROOT, chaos_cli, machine_snapshot

pytestmark = pytest.mark.lab


def test_up_status_down_leaves_the_machine_as_it_was():
    Lab().down()
    before = machine_snapshot()
    up = chaos_cli("lab", "up")
    assert up.returncode == 0, up.stderr
    assert "lab up (resilient" in up.stdout
    status = json.loads(chaos_cli("lab", "status", "--json").stdout)
    assert status["up"] and status["profile"] == "resilient"
    assert [m["healthy"] for m in status["members"]] == [True, True, True]
    assert sum(m["leader"] for m in status["members"]) == 1
    assert all(m["address"].startswith("198.18.") for m in status["members"])
    again = chaos_cli("lab", "up")
    assert again.returncode == 0 and "already up" in again.stdout
    assert status["entry"] == "http://198.18.0.20:80"
    kinds = sorted({x["kind"] for x in status["services"]})
    assert kinds == ["autoscaler", "gateway", "gtm", "inventory", "prometheus", "router"]
    assert all(x["running"] and x["healthy"] for x in status["services"]), status["services"]
    assert {x["cluster"] for x in status["services"]} == {"", "east", "west"}
    during = machine_snapshot()
    nodes = {f"chaos-{m['name']}" for m in status["members"]}
    nodes |= {f"chaos-{x['name']}" for x in status["services"] if x["address"]}  # the autoscaler has none
    assert set(during["netns"]) - set(before["netns"]) == nodes
    assert len(during["processes"]) > len(before["processes"])
    served = [m.split()[1] for m in during["mounts"] if " fuse.chaosfs " in m]
    disks = [m.split()[1] for m in during["mounts"] if m.split()[1].startswith("/var/lib/chaos-lab/disk/")]
    volumes = {"m1", "m2", "m3", "east-inv", "west-inv"}
    assert {Path(p).name for p in served} == volumes == {Path(p).name for p in disks}
    assert len(during["loops"]) - len(before["loops"]) == len(volumes)
    down = chaos_cli("lab", "down")
    assert down.returncode == 0, down.stderr
    assert "removed bridge chaosbr0" in down.stdout
    assert machine_snapshot() == before
    assert chaos_cli("lab", "down").stdout.strip().endswith("nothing to remove")


def test_down_also_takes_down_a_lab_recorded_under_another_state_directory(tmp_path):
    """The lab's names (namespaces, bridge, addresses) are the machine's: a lab brought up under
    another CHAOS_STATE_DIR is taken down too, its processes outside the namespaces (the
    autoscalers) and its volumes included, not only the namespaces this directory can see."""
    Lab().down()
    before = machine_snapshot()
    elsewhere = {"CHAOS_STATE_DIR": str(tmp_path / "elsewhere")}
    up = chaos_cli("lab", "up", env=elsewhere)
    assert up.returncode == 0, up.stdout + up.stderr
    down = chaos_cli("lab", "down")
    assert down.returncode == 0, down.stderr
    assert f"taking down the lab recorded in {tmp_path / 'elsewhere'}" in down.stdout, down.stdout
    assert machine_snapshot() == before
    assert chaos_cli("lab", "status", env=elsewhere).stdout.strip().startswith("lab is down")


def test_down_also_takes_down_another_directory_s_lab_whose_processes_all_died(tmp_path):
    """With every process of that lab dead (a crashed machine's runner, an OOM kill), no
    process names it any more; its mounted volumes still do, and lead down to its record."""
    Lab().down()
    before = machine_snapshot()
    elsewhere = tmp_path / "elsewhere"
    up = chaos_cli("lab", "up", env={"CHAOS_STATE_DIR": str(elsewhere)})
    assert up.returncode == 0, up.stdout + up.stderr
    mine = procs.with_role(f"{elsewhere}:")  # the processes that lab up started, by their role
    assert len(mine) > 10, mine
    for pid in mine:
        os.kill(pid, signal.SIGKILL)
    down = chaos_cli("lab", "down")
    assert down.returncode == 0, down.stderr
    assert f"taking down the lab recorded in {elsewhere}" in down.stdout, down.stdout
    assert machine_snapshot() == before


def test_a_stale_lab_is_recognised_and_cleared(resilient_lab):
    # a run that died takes its processes with it but leaves namespaces and mounts behind
    for m in resilient_lab.state().members:
        os.kill(m.pid, signal.SIGKILL)
    out = chaos_cli("lab", "up")
    assert out.returncode == 0, out.stderr
    assert "clearing a stale lab (etcd m1 not running" in out.stdout
    st = Lab().status()
    assert all(m["healthy"] for m in st.members) and st.leader is not None


def test_names_taken_by_something_else_are_refused_with_nothing_started():
    Lab().down()
    before = machine_snapshot()
    subprocess.run(["ip", "netns", "add", "chaos-m2"], check=True)
    try:
        out = chaos_cli("lab", "up")
        assert out.returncode == 1
        assert out.stderr.strip().splitlines() == [
            "chaos: error: lab names are taken but no lab is recorded (chaos-m2): "
            "if they are left from an earlier lab, `chaos lab down` removes them"
        ]
        after = machine_snapshot()
        after["netns"].remove("chaos-m2")
        after["mounts"] = [m for m in after["mounts"] if "/run/netns/chaos-m2 " not in m]
        assert after == before
    finally:
        subprocess.run(["ip", "netns", "del", "chaos-m2"], check=False)


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (
            ["lab", "up", "--profile", "sturdy"],
            {},
            2,
            "unknown lab profile 'sturdy'; choose one of: resilient, fragile",
        ),
        (
            ["lab", "up"],
            {"CHAOS_ETCD": "/nonexistent/etcd"},
            1,
            "etcd: /nonexistent/etcd (from the environment) is not executable",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_half_started(args, env, code, message):
    Lab().down()
    before = machine_snapshot()
    out = chaos_cli(*args, env=env)
    assert out.returncode == code
    assert out.stderr.strip() == f"chaos: error: {message}"
    assert machine_snapshot() == before


def test_a_different_profile_is_refused_while_the_lab_is_up(resilient_lab):
    out = chaos_cli("lab", "up", "--profile", "fragile")
    assert out.returncode == 2
    assert "already up as 'resilient', not 'fragile': run `chaos lab down` first" in out.stderr


def test_without_root_the_lab_says_so_and_experiments_skip():
    tmp_path = Path(tempfile.mkdtemp(prefix="chaos-nobody-"))  # pytest's tmp is root-only
    tmp_path.chmod(0o777)
    try:
        _run_as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _run_as_nobody(tmp_path):
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {**os.environ, "HOME": str(tmp_path), "CHAOS_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run(
        [*nobody, *CHAOS_ARGS, "lab", "up"], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "chaos: error: the lab needs root (network namespaces, iptables, loop mounts): "
        "run as root or with sudo"
    )
    run = subprocess.run(
        [
            *nobody,
            *PYTEST_ARGS,
            "experiments/test_master_ha.py",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--chaos-reports",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 skipped" in run.stdout
    assert "the lab needs root" in run.stdout


CHAOS_ARGS = [str(ROOT / ".venv" / "bin" / "python"), "-m", "chaos"]
PYTEST_ARGS = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest"]
