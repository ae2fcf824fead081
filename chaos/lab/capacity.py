"""A cluster's capacity as its balancer sees it: the slots of an HAProxy backend, which of them
are in rotation and up, and what the lab's autoscaler wants (the shop's routers and a
topology's autoscaled clusters alike)."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.lab.autoscaler import stats
from chaos.platform import Capacity


def in_rotation(
    socket: str,
    backend: str,
    slots: list[str],
    state: Path,
    *,
    reserve: float,
    reserved: int,
    autoscaled: bool,
) -> Capacity:
    """``slots`` (servers of ``backend``) as ``socket``'s HAProxy reports them now: used (not in
    maintenance or draining), ready (up), free, headroom (free over all), with the reserve the
    cluster holds and the autoscaler's desired count, rate and scale events from ``state``."""
    st = stats(socket, backend)
    present = [n for n in slots if n in st]
    used = [n for n in present if "MAINT" not in st[n]["status"] and "DRAIN" not in st[n]["status"]]
    ready = [n for n in used if st[n]["status"] == "UP"]
    try:
        scaler = json.loads(state.read_text())
    except (FileNotFoundError, ValueError):
        scaler = {}
    capacity = len(present)
    return Capacity(
        headroom=(capacity - len(used)) / capacity if capacity else 0.0,
        reserve=reserve,
        ready=len(ready),
        desired=scaler.get("desired"),
        unit="slots",
        events=tuple(scaler.get("events", [])),
        figures={
            "capacity": capacity,
            "used": len(used),
            "free": capacity - len(used),
            "reserved_slots": reserved,
            "autoscaler": autoscaled,
            "rate": scaler.get("rate"),
        },
    )
