"""The embedded lab platform: real etcd masters in network namespaces on this machine."""

from chaos.lab.lab import Lab
from chaos.lab.platform import LabPlatform

__all__ = ["Lab", "LabPlatform"]
