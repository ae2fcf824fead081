"""What ``chaos lab status`` shows: every member and service with its health, every volume
with its fault and free space, and the problems that make a lab stale."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from chaos.lab import custom, net, services, topology, volumes
from chaos.lab.etcd_member import Member
from chaos.lab.residue import residue
from chaos.lab.services import Running
from chaos.lab.state import LabState, Status
from chaos.lab.store import LabStore


class LabStatus(LabStore):
    def _problems(self, st: LabState) -> list[str]:
        out = []
        for m in st.members:
            if not (m.pid and m.proc.alive()):
                out.append(f"{'member' if st.topology else 'etcd'} {m.name} not running")
            if f"chaos-{m.name}" not in net.lab_netns():
                out.append(f"namespace chaos-{m.name} missing")
        for svc in st.services:
            if not (svc.pid and svc.proc.alive()):
                out.append(f"{svc.kind} {svc.name} not running")
        for served in st.volumes:
            if not served.proc.alive():
                out.append(f"storage daemon of volume {served.name} not running")
        return out

    def status(self, *, traces: bool = False) -> Status:
        st = self.state()
        if st is None:
            return Status(up=False, profile=None)
        leader = self.leader()
        topo = st.topo
        http = httpx.Client()

        def ready(name: str) -> bool:
            # a topology's process is healthy when its own readiness check passes
            assert topo is not None
            return custom.ready(topo, topo.node(name), self.root, http)

        def member_ok(m: Member) -> bool:
            return ready(m.name) if topo else self.client(st).healthy(m.client_url, timeout=0.5)

        def service_ok(svc: Running) -> bool:
            # a topology's node by its own check; the lab's own processes (a topology's
            # autoscaler too, which has no HTTP face: while it runs) as the shop's
            return svc.proc.alive() and (
                ready(svc.name) if topo and svc.address else services.healthy(svc, http)
            )

        rows = []
        for m in st.members:
            running = bool(m.pid) and m.proc.alive()
            rows.append(
                {
                    "name": m.name,
                    "address": m.address,
                    "pid": m.pid,
                    "running": running,
                    "healthy": running and member_ok(m),
                    "leader": m.name == leader,
                    "volume": str(self.volume(m.name).mountpoint),
                }
            )
        try:
            svc_rows = [
                {
                    "name": svc.name,
                    "kind": svc.kind,
                    "cluster": svc.cluster,
                    "address": svc.address,
                    "port": svc.port,
                    "pid": svc.pid,
                    "running": svc.proc.alive(),
                    "healthy": service_ok(svc),
                }
                for svc in st.services
            ]
        finally:
            http.close()
        return Status(
            up=True,
            profile=st.profile,
            weaknesses=list(st.weaknesses),
            members=rows,
            services=svc_rows,
            volumes=[self.volume_status(v.name) for v in st.volumes],
            entry=(topo.render(topo.entry, None, self.root) or None) if topo else topology.entry_url(),
            topology=topo.title if topo else None,
            leader=leader,
            problems=self._problems(st),
            # a subprocess or two per namespace: asked for by `chaos lab status`, not by health waits
            fault_traces=residue(self) if traces else [],
        )

    def volume_status(self, name: str) -> dict[str, Any]:
        """A volume's storage daemon, the fault it applies, and the disk's free space."""
        st = self._require_state()
        vol, served = self.volume(name), st.daemon(name)
        row: dict[str, Any] = {"name": name, "mount": str(vol.mountpoint), "pid": served.pid if served else 0}
        row["running"] = bool(served and served.proc.alive())
        row["problem"] = volumes.managed(vol)
        try:
            row["fault"] = json.loads(vol.status.read_text()).get("mode", "none")
        except (OSError, ValueError):
            row["fault"] = "unknown"
        try:
            sv = os.statvfs(vol.disk)
            row["free_mb"] = round(sv.f_bavail * sv.f_frsize / 2**20, 1)
        except OSError as exc:  # a disk shut down by an I/O-error fault answers EIO
            row["free_mb"] = None
            row["problem"] = row["problem"] or f"disk: {exc.strerror}"
        return row
