"""The docs stay true to the layout: every module path and dotted module the README and docs
name exists."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_a_doc_names_exists(doc):
    named = set(re.findall(r"`((?:chaos|experiments|benchmarks|tests|loadtests)/[\w/.-]*)`", doc.read_text()))
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"{doc.name} names what does not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_module_a_doc_names_imports(doc):
    named = set(re.findall(r"`(chaos(?:\.[a-z_]+)+)(?![/\w-])", doc.read_text()))
    missing = [dotted for dotted in sorted(named) if not _resolves(dotted)]
    assert not missing, f"{doc.name} names modules that do not exist: {missing}"


def _resolves(dotted: str) -> bool:
    """The longest importable module prefix, then attributes (``chaos.load.Load``)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        module = ".".join(parts[:n])
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:  # a prefix of it is a module, not a package
            continue
        obj = importlib.import_module(module)
        for attr in parts[n:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_the_stability_promise_lists_the_whole_public_surface(pytestconfig):
    """docs/stability.md names every public name, pytest option and command: what is added to
    the surface is added to the promise (or left out of it on purpose, by changing this test)."""
    import chaos
    from chaos.cli import main

    promise = (ROOT / "docs" / "stability.md").read_text()
    missing = [f"`{name}`" for name in chaos.__all__ if f"`{name}`" not in promise]
    plugin = (ROOT / "chaos" / "plugin.py").read_text()
    missing += [
        o
        for o in sorted(set(re.findall(r'"(--(?:chaos|lab|kube|platform|dry)[\w-]*)"', plugin)))
        if o not in promise
    ]
    missing += [
        f"chaos {c}" for c in main.commands if f"chaos {c}" not in promise and f"`{c}`" not in promise
    ]
    assert not missing, f"docs/stability.md does not list: {missing}"
