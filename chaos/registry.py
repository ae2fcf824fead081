"""Where the pluggable parts live: each platform by name, and the undo function of each fault
kind by the module that registers it.

``chaos recover``, the dead man's switch and the plugin find an undo function here and import
its module only then, so none of them has to import every platform up front for its side
effects, and a run that touches no platform loads none. A new fault kind or platform adds one
line here; ``tests/test_registry.py`` checks that every kind registered in code is listed and
that every listed module registers the kinds it is listed for.
"""

from __future__ import annotations

import importlib
from typing import Any

# fault kind -> the module whose @register_undo(kind) undoes it
UNDO_MODULES: dict[str, str] = {
    "lab.etcd.restart": "chaos.lab.kill_master",
    "lab.iptables.delete": "chaos.lab.netfaults",
    "lab.process.stop": "chaos.lab.netfaults",
    "lab.tc.delete": "chaos.lab.netfaults",
    "lab.service.restart": "chaos.lab.kill_service",
    "lab.volume.restore": "chaos.lab.storage",
    "lab.standby.activate": "chaos.lab.cold_standby",
    "kube.actuator.delete": "chaos.kube.kill_master",
    "kube.etcd.killed": "chaos.kube.kill_master",
    "kube.pod.killed": "chaos.kube.pod_faults",
    "kube.deployment.scale": "chaos.kube.pod_faults",
    "kube.deployment.image": "chaos.kube.rollout",
    "kube.node.uncordon": "chaos.kube.node_faults",
    "kube.object.delete": "chaos.kube.objects",
    "memory.member.restart": "chaos.testing.memory_faults",
    "memory.partition.heal": "chaos.testing.memory_faults",
}

# platform name -> "module:function" building it (see chaos.platforms for the signature)
PLATFORMS: dict[str, str] = {
    "lab": "chaos.lab.platform:build",
    "kube": "chaos.kube.platform:build",
    "memory": "chaos.testing.memory:build",
}

# platforms whose faults die with the test process: their journal is the run's own, in its
# temporary directory, not the machine's (so they need neither root nor the state directory)
PRIVATE_JOURNAL = frozenset({"memory"})


def load_undo_module(kind: str) -> bool:
    """Import the module that registers ``kind``'s undo; False when no module is listed."""
    module = UNDO_MODULES.get(kind)
    if module is None:
        return False
    importlib.import_module(module)
    return True


def resolve(ref: str) -> Any:
    """The object a ``module:name`` reference names."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)
