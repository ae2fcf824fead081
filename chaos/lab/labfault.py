"""The base of every lab fault: journaled steps are watched by the dead man's switch."""

from __future__ import annotations

import uuid
from typing import Any

from chaos.context import RunContext
from chaos.errors import PlatformError
from chaos.fault import Fault
from chaos.lab.deadman import spawn as spawn_deadman
from chaos.lab.etcd_member import PEER_PORT
from chaos.lab.lab import Lab


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
