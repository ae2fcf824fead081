"""The lab's service processes (traffic manager, routers, workload, Prometheus): their
configuration, command lines, start-up and health."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx

from chaos.lab import procs
from chaos.lab.binaries import find
from chaos.lab.haproxy import gtm_config, router_config
from chaos.lab.profiles import Profile
from chaos.lab.prometheus import prometheus_config
from chaos.lab.topology import Service, services


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
    py = [sys.executable, "-m", "chaos.lab.workload"]
    cfg = root / "config"
    if svc.kind == "gateway":
        inventory = next(s for s in services(profile) if s.kind == "inventory" and s.cluster == svc.cluster)
        argv = [
            *py,
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
        ]
        return argv + ([] if profile.breaker else ["--no-breaker"])
    if svc.kind == "inventory":
        return [
            *py,
            "inventory",
            "--listen",
            f"{svc.address}:{svc.port}",
            "--replica",
            svc.name,
            "--data-dir",
            str(root / "mnt" / svc.name),
        ] + ([] if profile.durable_storage else ["--write-behind"])
    if svc.kind in ("router", "gtm"):
        return [find("haproxy"), "-db", "-f", str(cfg / f"{svc.name}.cfg")]
    if svc.kind == "autoscaler":
        slots = [s.name for s in services(profile) if s.kind == "gateway" and s.cluster == svc.cluster]
        return [
            *[sys.executable, "-m", "chaos.lab.autoscaler"],
            "--socket",
            str(socket_path(root, f"{svc.cluster}-router")),
            "--servers",
            ",".join(slots),
            "--min",
            str(profile.min_replicas),
            "--max",
            str(profile.gateway_slots),
            "--target-rps",
            str(profile.target_rps),
            "--state",
            str(autoscaler_state(root, svc.cluster)),
        ]
    if svc.kind == "prometheus":
        return [
            find("prometheus"),
            f"--config.file={cfg / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'prometheus'}",
            f"--web.listen-address={svc.address}:{svc.port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ]
    raise ValueError(f"unknown service kind {svc.kind!r}")


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
    (cfg / "gtm.cfg").write_text(gtm_config(gtm, routers, socket_path(root, "gtm")))
    (cfg / "prometheus.yml").write_text(prometheus_config(svcs))


def check_binaries() -> None:
    for tool in ("haproxy", "prometheus"):
        find(tool)


def autoscaler_state(root: Path, cluster: str) -> Path:
    return root / "run" / f"autoscaler-{cluster}.json"


def spawn(svc: Service, profile: Profile, root: Path, etcd_urls: list[str]) -> Running:
    netns = None if svc.kind == "autoscaler" else f"chaos-{svc.name}"
    proc = procs.spawn(_argv(svc, profile, root, etcd_urls), root / "logs" / f"{svc.name}.log", netns=netns)
    return Running(
        svc.name, svc.kind, svc.cluster, svc.address, svc.port, svc.health_path, proc.pid, proc.start
    )


def scraping_all(prom: Running, expected: int, http: httpx.Client) -> bool:
    """Prometheus has scraped every workload target at least once and found it up: until
    then a PromQL probe would see no series and a baseline would fail for no real reason."""
    try:
        resp = http.get(f"{prom.url}/api/v1/query", params={"query": 'sum(up{job="workload"})'}, timeout=0.5)
        result = resp.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return bool(result) and int(float(result[0]["value"][1])) == expected


def healthy(svc: Running, http: httpx.Client, timeout: float = 0.5) -> bool:
    if not svc.health_path:  # no HTTP face (the autoscaler): healthy while it runs
        return svc.proc.alive()
    try:
        return http.get(f"{svc.url}{svc.health_path}", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
