"""Lab networking: one bridge with no uplink, one network namespace per node.

Addresses come from 198.18.0.0/15 (RFC 2544's benchmarking range). Namespaces get no
default route, so nothing a node sends can leave the machine.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from pathlib import Path

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from chaos.errors import PlatformError

BRIDGE = "chaosbr0"
SUBNET = ipaddress.ip_network("198.18.0.0/24")
BRIDGE_ADDR = "198.18.0.1"
NETNS_DIR = Path("/run/netns")


def lab_netns() -> list[str]:
    """Namespaces with the lab's naming, whoever made them."""
    return sorted(n for n in netns.listnetns() if n.startswith("chaos-"))


def bridge_exists() -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=BRIDGE))


def ensure_bridge() -> None:
    with IPRoute() as ipr:
        if not ipr.link_lookup(ifname=BRIDGE):
            ipr.link("add", ifname=BRIDGE, kind="bridge")
        idx = ipr.link_lookup(ifname=BRIDGE)[0]
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx)}
        if BRIDGE_ADDR not in have:
            ipr.addr("add", index=idx, address=BRIDGE_ADDR, prefixlen=SUBNET.prefixlen)
        ipr.link("set", index=idx, state="up")


def add_node(name: str, address: str) -> None:
    """Create namespace ``chaos-<name>`` with ``eth0`` on the bridge at ``address``."""
    ns = f"chaos-{name}"
    host_if = f"ch-{name}"[:15]
    if ipaddress.ip_address(address) not in SUBNET:
        raise PlatformError(f"node {name}: {address} is outside the lab subnet {SUBNET}")
    try:
        netns.create(ns)
        with IPRoute() as ipr:
            ipr.link("add", ifname=host_if, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
            br = ipr.link_lookup(ifname=BRIDGE)[0]
            hidx = ipr.link_lookup(ifname=host_if)[0]
            ipr.link("set", index=hidx, master=br, state="up")
        with NetNS(ns) as nsr:
            lo = nsr.link_lookup(ifname="lo")[0]
            nsr.link("set", index=lo, state="up")
            eth = nsr.link_lookup(ifname="eth0")[0]
            nsr.addr("add", index=eth, address=address, prefixlen=SUBNET.prefixlen)
            nsr.link("set", index=eth, state="up")
    except (NetlinkError, OSError) as exc:
        raise PlatformError(f"could not create lab node {name} ({ns}, {address}): {exc}") from exc


def remove_node(name: str) -> None:
    """Delete the node's namespace (its veth pair goes with it); idempotent."""
    ns = f"chaos-{name}"
    if ns in netns.listnetns():
        netns.remove(ns)
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=f"ch-{name}"[:15])
        if idx:
            try:
                ipr.link("del", index=idx[0])
            except NetlinkError as exc:
                # the kernel removes the host end of a veth by itself once the namespace
                # end is gone; losing that race is success
                if exc.code != errno.ENODEV:
                    raise PlatformError(f"could not remove interface ch-{name}: {exc}") from exc


def remove_bridge() -> None:
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=BRIDGE)
        if idx:
            ipr.link("del", index=idx[0])


def host_links() -> list[str]:
    """Host-side interfaces with the lab's naming (bridge and veth ends)."""
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(n for n in names if n == BRIDGE or n.startswith("ch-"))


def pids_in_netns(ns: str) -> list[int]:
    """Processes whose network namespace is ``ns`` (compared by inode)."""
    try:
        target = os.stat(NETNS_DIR / ns).st_ino
    except FileNotFoundError:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino == target:
                pids.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return pids
