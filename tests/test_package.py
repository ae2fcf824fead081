"""``import chaos`` is lazy (the lab's daemons start without loading pytest), and every public
name still resolves to what it names, whatever was imported first."""

import importlib
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import chaos


def test_every_public_name_is_the_object_not_a_submodule_of_the_same_name():
    """Importing a submodule sets it as an attribute of the package: a public name equal to a
    submodule's (``chaos.experiment`` the decorator, ``chaos/experiment.py`` the module it came
    from) turns into that module once anything imports it."""
    for info in pkgutil.iter_modules(chaos.__path__):
        if info.name != "__main__":  # that one runs the command line
            importlib.import_module(f"chaos.{info.name}")
    for name in chaos.__all__:
        assert not isinstance(getattr(chaos, name), types.ModuleType), name
    assert sorted(dir(chaos)) == sorted(chaos.__all__)


def test_importing_chaos_loads_neither_pytest_nor_httpx():
    heavy = "('pytest', 'httpx', 'yaml')"
    code = f"import sys, chaos, chaos.lab; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_lab_s_daemons_load_only_what_they_run():
    """A lab starts twenty of these, and a fault's revert restarts one: what each imports is
    time the outage lasts. The inventory needs neither the gateway's HTTP client nor the
    framework; the fault proxy needs nothing but the standard library."""
    heavy = "('httpx', 'chaos.platform', 'chaos.lab.profiles', 'asyncio')"
    check = f"print(sorted(m for m in {heavy} if m in sys.modules))"
    inventory = (
        "import sys, chaos.lab.workload.__main__ as w, chaos.lab.workload.inventory, "
        f"chaos.lab.workload.server; {check}"
    )
    path = Path(chaos.__file__).parent / "lab" / "faultproxy.py"
    proxy = f"import sys, runpy; runpy.run_path({str(path)!r}); {check}"
    for code in (inventory, proxy):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", code
