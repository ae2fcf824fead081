"""The lab's service processes (traffic manager, routers, workload, Prometheus): their
configuration, command lines, start-up and health."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx

from chaos.lab import autoscaler, procs
from chaos.lab.binaries import find
from chaos.lab.haproxy import gtm_config, router_config, unchecked_lb_config
from chaos.lab.profiles import Profile
from chaos.lab.prometheus import prometheus_config
from chaos.lab.topology import Service, hosts, reserve_slots, services


@dataclass(frozen=True)
class Running:
    """A started service: what it is, where it listens, and its process."""

    name: str
    kind: str
    cluster: str
    address: str
    port: int
    health_path: str
    pid: int = 0
    start: str = ""

    @property
    def proc(self) -> procs.Proc:
        return procs.Proc(self.pid, self.start)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Running:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def socket_path(root: Path, name: str) -> Path:
    """HAProxy's runtime API socket of service ``name``."""
    return root / "run" / f"{name}.sock"


def _argv(svc: Service, profile: Profile, root: Path, etcd_urls: list[str]) -> list[str]:
    if svc.kind in ("router", "gtm") or (svc.kind == "masters-api" and profile.masters_api == "unchecked-lb"):
        return [find("haproxy"), "-db", "-f", str(root / "config" / f"{svc.name}.cfg")]
    build = _ARGV.get(svc.kind)
    if build is None:
        raise ValueError(f"unknown service kind {svc.kind!r}")
    return build(svc, profile, root, etcd_urls)


def _py(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def _inventory_argv(svc: Service, profile: Profile, root: Path, _etcd: list[str]) -> list[str]:
    argv = [
        *_py("chaos.lab.workload"),
        "inventory",
        "--listen",
        f"{svc.address}:{svc.port}",
        "--replica",
        svc.name,
        "--data-dir",
        str(root / "mnt" / svc.name),
        # what must outlive a restart (the sticky read-only block) lives off its volume
        "--state-file",
        str(root / "run" / f"{svc.name}.state.json"),
    ]
    return argv + [arg for flaw in profile.inventory_flaws for arg in ("--flaw", flaw)]


def _writeback_argv(svc: Service, profile: Profile, root: Path, etcd_urls: list[str]) -> list[str]:
    argv = [
        *_py("chaos.lab.writeback"),
        "--listen",
        f"{svc.address}:{svc.port}",
        "--members",
        ",".join(etcd_urls),
    ]
    # the spooling front spools to a lab volume of its own, so every storage fault reaches it
    return argv + (["--spool", str(root / "mnt" / svc.name)] if profile.masters_api == "spooling" else [])


def _fencing_argv(_svc: Service, _profile: Profile, root: Path, _etcd: list[str]) -> list[str]:
    return [*_py("chaos.lab.fencing"), "--state-dir", str(root), "--after", "3"]


def _autoscaler_argv(svc: Service, profile: Profile, root: Path, _etcd: list[str]) -> list[str]:
    slots = [s.name for s in services(profile) if s.kind == "gateway" and s.cluster == svc.cluster]
    return autoscaler.command(
        str(socket_path(root, f"{svc.cluster}-router")),
        slots,
        autoscaler.state_path(root, svc.cluster),
        min_replicas=profile.min_replicas,
        target_rps=profile.target_rps,
        scale_out_after=profile.scale_out_after_s,
        scale_in_after=profile.scale_in_after_s,
        hosts={slot: host for host, on in hosts(profile, svc.cluster).items() for slot in on},
    )


def _prometheus_argv(svc: Service, _profile: Profile, root: Path, _etcd: list[str]) -> list[str]:
    return [
        find("prometheus"),
        f"--config.file={root / 'config' / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'prometheus'}",
        f"--web.listen-address={svc.address}:{svc.port}",
        "--storage.tsdb.retention.time=2h",
        "--log.level=warn",
    ]


def _gateway_argv(svc: Service, profile: Profile, _root: Path, etcd_urls: list[str]) -> list[str]:
    inventory = next(s for s in services(profile) if s.kind == "inventory" and s.cluster == svc.cluster)
    argv = [
        *_py("chaos.lab.workload"),
        "gateway",
        "--listen",
        f"{svc.address}:{svc.port}",
        "--replica",
        svc.name,
        "--cluster",
        svc.cluster,
        "--inventory",
        inventory.url,
        "--etcd",
        ",".join(etcd_urls),
        "--inventory-timeout",
        f"{profile.inventory_timeout_s:g}",
        "--fail-max",
        str(profile.breaker_fail_max),
        "--reset-s",
        f"{profile.breaker_reset_s:g}",
    ]
    argv += [] if profile.breaker else ["--no-breaker"]
    argv += [] if profile.fallback else ["--no-fallback"]
    argv += ["--retries", profile.gateway_retries, "--pools", profile.gateway_pools]
    argv += ["--config", profile.gateway_config]
    if profile.gateway_flaw and svc.name == f"{svc.cluster}-gw1" and svc.cluster == profile.clusters[0]:
        argv += ["--flaw", profile.gateway_flaw]
    slot = int(svc.name.rsplit("gw", 1)[1])
    if profile.reserve_warmup and slot in reserve_slots(profile):
        argv += ["--cold", profile.reserve_warmup]
    return argv


_ARGV = {
    "gateway": _gateway_argv,
    "inventory": _inventory_argv,
    "masters-api": _writeback_argv,
    "fencing": _fencing_argv,
    "autoscaler": _autoscaler_argv,
    "prometheus": _prometheus_argv,
}


def write_configs(root: Path, profile: Profile) -> None:
    cfg = root / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (root / "run").mkdir(parents=True, exist_ok=True)
    svcs = services(profile)
    routers = [s for s in svcs if s.kind == "router"]
    for r in routers:
        gws = [s for s in svcs if s.kind == "gateway" and s.cluster == r.cluster]
        (cfg / f"{r.name}.cfg").write_text(
            router_config(r, gws, socket_path(root, r.name), in_rotation=profile.min_replicas)
        )
    gtm = next(s for s in svcs if s.kind == "gtm")
    (cfg / "gtm.cfg").write_text(gtm_config(gtm, routers, socket_path(root, "gtm"), profile))
    api = next((s for s in svcs if s.kind == "masters-api"), None)
    if api is not None and profile.masters_api == "unchecked-lb":
        (cfg / "api.cfg").write_text(unchecked_lb_config(api, profile.masters, socket_path(root, "api")))
    (cfg / "prometheus.yml").write_text(prometheus_config(svcs))


def check_binaries() -> None:
    for tool in ("haproxy", "prometheus"):
        find(tool)


def spawn(
    svc: Service, profile: Profile, root: Path, etcd_urls: list[str], *, restart: bool = False
) -> Running:
    """Start ``svc``; a ``restart`` first stops any stray of it (see `procs.evict`). A restart
    of a backup cluster's gateway (a cold standby activated) waits
    ``profile.standby_start_delay_s`` first, in a shell that then becomes the gateway, so the
    pid recorded is the gateway's."""
    netns = f"chaos-{svc.name}" if svc.address else None  # no address: the root namespace
    argv = _argv(svc, profile, root, etcd_urls)
    delay = profile.standby_start_delay_s
    if restart and delay and svc.kind == "gateway" and svc.cluster != profile.clusters[0]:
        argv = ["/bin/sh", "-c", 'sleep "$0"; exec "$@"', f"{delay:g}", *argv]
    proc = procs.spawn(
        argv,
        root / "logs" / f"{svc.name}.log",
        netns=netns,
        role=procs.role_of(root, svc.name),
        replacing=restart,
    )
    return Running(
        svc.name, svc.kind, svc.cluster, svc.address, svc.port, svc.health_path, proc.pid, proc.start
    )


def scraping_all(prom: Running, targets: int, up: int, http: httpx.Client) -> bool:
    """Prometheus has scraped every one of ``targets`` workload targets and found ``up`` of
    them up: until then a PromQL probe would see no series (or a stale 0 from before a service
    served) and a baseline would fail for no real reason."""
    query = 'count(up{job="workload"}) * 1000 + sum(up{job="workload"})'
    try:
        resp = http.get(f"{prom.url}/api/v1/query", params={"query": query}, timeout=0.5)
        result = resp.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return bool(result) and int(float(result[0]["value"][1])) == targets * 1000 + up


def healthy(svc: Running, http: httpx.Client, timeout: float = 0.5) -> bool:
    if not svc.health_path:  # no HTTP face (the autoscaler): healthy while it runs
        return svc.proc.alive()
    try:
        return http.get(f"{svc.url}{svc.health_path}", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
