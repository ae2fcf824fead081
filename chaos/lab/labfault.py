"""The base of every lab fault: journaled steps are watched by the dead man's switch."""

from __future__ import annotations

import math
import uuid
from typing import Any

from chaos.context import RunContext
from chaos.errors import PlatformError
from chaos.fault import Fault
from chaos.lab.deadman import spawn as spawn_deadman
from chaos.lab.etcd_member import PEER_PORT
from chaos.lab.lab import Lab

# a fault that fails a share of operations (flaky storage, a lossy link) is sampled until one
# fails: 30 / rate tries, which misses a fault in force once in e^30. Below this rate that takes
# longer than the fault is worth, and the fault's own mechanism in place is the evidence.
MIN_SAMPLED_RATE = 0.005


def sample_budget(rate: float) -> int:
    """Tries that must show at least one failure of a fault failing ``rate`` of them."""
    return min(5000, math.ceil(30 / rate))


class LabFault(Fault):
    """A lab fault: each journaled step is also handed to a dead man's switch."""

    def __init__(self, ctx: RunContext, lab: Lab) -> None:
        super().__init__(ctx)
        self.lab = lab
        self.tag = uuid.uuid4().hex[:10]

    def journaled(self, kind: str, undo: dict[str, Any], description: str) -> None:
        super().journaled(kind, undo, description)
        spawn_deadman(self.ctx.journal, self._steps[-1])

    def _endpoints(self) -> dict[str, tuple[str, int]]:
        """Every node of the lab: name -> (address, a port it listens on)."""
        st = self.lab.state()
        if st is None:
            raise PlatformError("the lab is not up: run `chaos lab up`")
        # etcd's peer port is the one a partition must cut; a topology's member serves its own
        nodes = {m.name: (m.address, m.port if st.topology else PEER_PORT) for m in st.members}
        nodes.update({s.name: (s.address, s.port) for s in st.services if s.address})
        return nodes
