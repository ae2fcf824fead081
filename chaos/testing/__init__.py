"""Helpers for testing experiments without a cluster or root.

``MemoryPlatform`` is a Platform whose three masters live in this process: they elect, lose
their leader and keep acknowledged writes as the ``Masters`` Protocol describes. Run an
experiment on it with ``pytest --platform memory``, or build one in a unit test::

    from chaos import RunContext
    from chaos.testing import MemoryPlatform

    platform = MemoryPlatform(RunContext(journal=Journal(tmp_path / "journal.json")))
"""

from chaos.testing.memory import MemoryMasters, MemoryPlatform

__all__ = ["MemoryMasters", "MemoryPlatform"]
