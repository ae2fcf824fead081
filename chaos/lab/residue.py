"""What faults can leave in a running lab once nothing should be in force: their iptables
rules (each carries the comment ``chaos:TAG``), traffic-control qdiscs, fault proxies, dead
man's switches, storage faults a volume's daemon still applies, fill and probe files, and
journal entries. Empty after every revert and after ``chaos recover``; crash trials and
``chaos lab status`` read it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from chaos.context import default_journal
from chaos.lab import net
from chaos.lab.store import LabStore

# the lab's own helper processes that exist only while a fault is in force
FAULT_PROCESSES = ("chaos.lab.faultproxy", "chaos.lab.deadman")


def _in_netns(ns: str, *argv: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=False
    ).stdout


def _runs(cmdline: str, module: str) -> bool:
    """Whether a command line runs ``module``, by name (``-m``) or by its file's path."""
    return f"-m {module} " in f"{cmdline} " or f"/{module.replace('.', '/')}.py " in f"{cmdline} "


def fault_processes() -> list[str]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone since the listing
        marker = next((m for m in FAULT_PROCESSES if _runs(cmdline, m)), None)
        if marker:
            out.append(f"process {marker.rsplit('.', 1)[1]} (pid {p.name})")
    return out


def residue(lab: LabStore) -> list[str]:
    """Every trace of a fault left in the lab, one line each; [] when there is none."""
    out = []
    for ns in net.lab_netns():
        rules = [line for line in _in_netns(ns, "iptables-save").splitlines() if "chaos:" in line]
        if rules:
            out.append(f"{len(rules)} iptables rule(s) in {ns}")
        qdiscs = _in_netns(ns, "tc", "qdisc", "show", "dev", "eth0")
        for kind in ("netem", "tbf"):
            if f"qdisc {kind}" in qdiscs:
                out.append(f"qdisc {kind} on {ns} eth0")
    out += fault_processes()
    st = lab.state()
    for served in st.volumes if st else ():
        vol = lab.volume(served.name)
        try:
            mode = json.loads(vol.status.read_text()).get("mode", "none")
        except (OSError, ValueError):
            mode = "unknown"
        if mode != "none":
            out.append(f"volume {served.name}: storage fault {mode!r} in force")
        try:
            scratch = sorted(p.name for p in vol.disk.glob(".chaos-*"))
        except OSError as exc:  # a disk an I/O-error fault shut down refuses even a listing
            scratch = [f"(unreadable: {exc.strerror})"]
        out += [f"volume {served.name}: {name} left" for name in scratch]
    out += [f"journaled fault {e.kind}: {e.description}" for e in default_journal().entries()]
    return out
