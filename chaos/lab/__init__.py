"""The embedded lab platform: real etcd masters, clusters and services in network namespaces
on this machine. Importing it registers the undo function of every lab fault (through
``LabPlatform``, which imports every fault module)."""

from chaos.lab.lab import Lab
from chaos.lab.platform import LabPlatform

__all__ = ["Lab", "LabPlatform"]
