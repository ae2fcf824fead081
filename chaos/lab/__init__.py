"""The embedded lab platform: real etcd masters, clusters and services in network namespaces
on this machine.

``Lab`` and ``LabPlatform`` load on first use, so that reading a profile or a weakness
(``chaos.lab.profiles``, as option checking does) does not load pyroute2 and every fault
module. Undo functions are found through ``chaos.registry``, not by importing this package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos.lab.lab import Lab
    from chaos.lab.platform import LabPlatform

__all__ = ["Lab", "LabPlatform"]


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from chaos.lab.lab import Lab

        return Lab
    if name == "LabPlatform":
        from chaos.lab.platform import LabPlatform

        return LabPlatform
    raise AttributeError(f"module 'chaos.lab' has no attribute {name!r}")
