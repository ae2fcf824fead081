"""The registry: every undo kind registered in code is listed with its module, every listed
module registers its kinds, every platform builds from its entry, and option checking loads
no platform."""

import importlib
import subprocess
import sys

import pytest

from chaos import journal
from chaos.errors import ChaosError
from chaos.registry import PLATFORMS, UNDO_MODULES, resolve


def _python(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (nothing imported yet)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_every_listed_module_registers_the_kinds_it_is_listed_for():
    for module in sorted(set(UNDO_MODULES.values())):
        importlib.import_module(module)
    registered = {k for k in journal._UNDO if not k.startswith("test.")}
    assert registered == set(UNDO_MODULES), "add each new fault kind to chaos.registry.UNDO_MODULES"


def test_an_undo_is_found_without_importing_its_platform_first():
    code = (
        "import sys\n"
        "from chaos.journal import undo_for\n"
        "assert 'chaos.lab.netfaults' not in sys.modules\n"
        "fn = undo_for('lab.iptables.delete')\n"
        "print(fn.__module__)\n"
    )
    assert _python(code) == "chaos.lab.netfaults"


def test_an_unknown_kind_says_which_kinds_are_known():
    with pytest.raises(ChaosError, match="no undo registered for fault kind 'nope'.*lab.etcd.restart"):
        journal.undo_for("nope")


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_every_platform_entry_resolves_to_a_builder(name):
    assert callable(resolve(PLATFORMS[name]))


def test_checking_options_loads_no_platform():
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from chaos.config import RunConfig\n"
        "RunConfig.build(platform='lab', lab_profile='resilient', lab_weaknesses=['slow-election'], seed=0,\n"
        "    dry_run=False, probe_hz=20, fault_ttl='15m', reports=Path('r'))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pyroute2', 'kubernetes', 'chaos.lab.lab',\n"
        "    'chaos.lab.netfaults', 'chaos.lab.storage', 'chaos.kube.platform'))))\n"
    )
    assert _python(code) == "[]"
