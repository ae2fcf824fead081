"""``chaos init``: a team's own repository of experiments, from templates shipped in the package.

It writes a ``pyproject.toml`` that depends on this package, a ``conftest.py``, one experiment
against the lab, a locustfile for the team's own service, a smoke game-day plan, a CI workflow
that publishes the report, a README with the two commands, and the Kubernetes manifests
(RBAC, scheduled game days, the reaper) under ``deploy/``. It never overwrites: when any
file it would write exists, it writes nothing and says which.
"""

from __future__ import annotations

import re
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from chaos.errors import ConfigError

SUFFIX = ".tmpl"


def version() -> str:
    try:
        return metadata.version("chaos-kube")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def _templates(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []
    for child in node.iterdir():
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            out += _templates(child, rel + "/")
        elif child.name.endswith(SUFFIX):
            out.append((rel.removesuffix(SUFFIX), child))
    return sorted(out)


def scaffold(dest: Path, name: str | None = None) -> list[Path]:
    """Write the templates under ``dest`` (created if missing); return what was written."""
    try:
        return _scaffold(dest, name)
    except OSError as exc:  # a name too long, no permission, a read-only or full file system
        raise ConfigError(f"{dest}: cannot create the project there: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(f"{str(dest)!r}: not a usable directory name ({exc})") from None


def _scaffold(dest: Path, name: str | None) -> list[Path]:
    name = name or dest.resolve().name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"--name {name!r}: a project name is letters, digits, '.', '_' and '-'")
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} is a file: give a directory for the new project")
    files = _templates(resources.files("chaos") / "scaffold")
    # the manifests for a team's clusters (RBAC, scheduled game days, the reaper), as shipped
    files += sorted(
        (f"deploy/{m.name}", m) for m in resources.files("chaos.deploy").iterdir() if m.name.endswith(".yaml")
    )
    taken = [rel for rel, _ in files if (dest / rel).exists()]
    if taken:
        raise ConfigError(
            f"{dest} already has {', '.join(taken)}: chaos init never overwrites; "
            "move them away or init another directory"
        )
    values = {"name": name, "version": version().split("+")[0]}
    written = []
    for rel, template in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = template.read_text()
        target.write_text(Template(text).safe_substitute(values) if template.name.endswith(SUFFIX) else text)
        written.append(target)
    return written
