"""Typed, frozen run configuration, validated once with every problem reported together."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import ConfigError
from chaos.probes import MAX_HZ
from chaos.registry import PLATFORMS
from chaos.userfiles import check_path, read_user_file

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """'250ms', '5s', '2m', '1h' or a plain number of seconds; must be > 0."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ConfigError(f"{what}: expected a duration such as 5s or 2m, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _DURATION.match(text)
        if not m:
            raise ConfigError(f"{what}: {text!r} is not a duration; write e.g. 500ms, 5s, 2m or 1h")
        value = float(m.group(1)) * _UNIT[m.group(2)]
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{what}: must be greater than zero and finite, got {text!r}")
    return value


GUARD_KINDS = ("http", "promql")


@dataclass(frozen=True)
class GuardSpec:
    """A run-wide stop condition: ``http`` — the URL's error rate over the last ``over``
    seconds stays at most ``limit``; ``promql`` — the query's latest value stays at most
    ``limit``."""

    kind: str
    target: str
    limit: float
    over: float = 2.0

    @classmethod
    def parse(cls, text: str) -> GuardSpec:
        """``max_error_rate=0.5,over=2s,http=URL`` or ``max=5,promql=QUERY``: options first,
        the target last (a query may contain commas)."""
        opts: dict[str, str] = {}
        rest = text.strip()
        while rest:
            key, sep, value = rest.partition("=")
            key = key.strip()
            if not sep or not key:
                break
            if key in GUARD_KINDS:
                opts[key] = value.strip()
                rest = ""
                break
            value, _, rest = value.partition(",")
            opts[key] = value.strip()
        example = "e.g. max_error_rate=0.5,over=2s,http=http://198.18.0.20/healthz or max=5,promql=QUERY"
        kinds = [k for k in GUARD_KINDS if opts.get(k)]
        if len(kinds) != 1 or rest:
            raise ConfigError(f"guard {text!r}: end with exactly one http=URL or promql=QUERY ({example})")
        kind = kinds[0]
        unknown = set(opts) - {kind, "over", "max_error_rate" if kind == "http" else "max"}
        if unknown:
            raise ConfigError(f"guard {text!r}: unknown option(s) {', '.join(sorted(unknown))} ({example})")
        limit_key = "max_error_rate" if kind == "http" else "max"
        if limit_key not in opts:
            raise ConfigError(f"guard {text!r}: give {limit_key}= ({example})")
        try:
            limit = float(opts[limit_key])
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit):
            raise ConfigError(f"guard {text!r}: {limit_key}={opts[limit_key]!r} is not a number")
        if kind == "http" and not 0 <= limit < 1:
            raise ConfigError(f"guard {text!r}: max_error_rate is a share from 0 up to (not including) 1")
        over = parse_duration(opts.get("over", "2s"), what=f"guard {text!r}: over")
        return cls(kind, opts[kind], limit, over)


@dataclass(frozen=True)
class RunConfig:
    platform: str = "lab"
    lab_profile: str = "resilient"
    lab_weaknesses: tuple[str, ...] = ()
    seed: int = 0
    dry_run: bool = False
    probe_hz: float = 20.0
    fault_ttl: float = 900.0
    reports: Path = Path("reports")
    guards: tuple[GuardSpec, ...] = ()
    progress: Path | None = None
    kube_contexts: tuple[tuple[str, str], ...] = ()  # (role, kubeconfig context)
    kubeconfig: Path | None = None
    kube_namespaces: tuple[str, ...] = ()
    kube_control_plane: bool = False
    kube_topology: Any = None  # chaos.kube.topology.Topology (imported lazily: kube is optional)
    kube_load: str = "cluster"  # where Locust runs on --platform kube: as pods, or here (local)
    lab_topology: Path | None = None  # a topology file the lab runs instead of the shop

    @property
    def lab_title(self) -> str:
        """What the lab runs: "resilient + slow-election", or "topology.yaml (fragile)"."""
        if self.lab_topology is not None:
            return f"{self.lab_topology} ({self.lab_profile})"
        return " + ".join((self.lab_profile, *self.lab_weaknesses))

    @classmethod
    def build(
        cls,
        *,
        platform: str,
        lab_profile: str,
        seed: int,
        dry_run: bool,
        probe_hz: float,
        fault_ttl: str,
        reports: Path,
        guards: list[str] | None = None,
        progress: Path | None = None,
        kube_contexts: list[str] | None = None,
        kube_clusters: Path | None = None,
        kubeconfig: Path | None = None,
        kube_namespaces: list[str] | None = None,
        kube_control_plane: bool = False,
        kube_topology: Path | None = None,
        kube_load: str = "cluster",
        lab_weaknesses: list[str] | None = None,
        lab_topology: Path | None = None,
    ) -> RunConfig:
        from chaos.lab.profiles import PROFILES
        from chaos.lab.weaknesses import check_names

        problems: list[str] = []
        if platform not in PLATFORMS:
            problems.append(f"--platform {platform!r}: choose one of {', '.join(PLATFORMS)}")
        contexts = parse_contexts([*clusters_file(kube_clusters, problems), *(kube_contexts or [])], problems)
        if platform == "kube":
            if not contexts:
                problems.append(
                    "--platform kube needs --kube-context ROLE=CONTEXT, e.g. --kube-context east=kind-east"
                )
            if not kube_namespaces:
                problems.append(
                    "--platform kube needs a blast radius: --kube-namespace NAMESPACE (repeatable)"
                )
        topology = None
        if kube_topology is not None:
            from chaos.kube.topology import load_topology

            topology = load_topology(kube_topology, {role for role, _ in contexts}, problems)
        if kube_load not in ("cluster", "local"):
            problems.append(f"--kube-load {kube_load!r}: cluster (Locust pods) or local (Locust here)")
        weaknesses = tuple(dict.fromkeys(lab_weaknesses or ()))
        if lab_topology is not None:
            from chaos.lab.topofile import load_topology as load_lab_topology
            from chaos.lab.topofile import variant_of

            try:
                check_path(lab_topology, "topology")  # before resolve(), which a NUL byte breaks
                lab_topology = lab_topology.resolve()
                load_lab_topology(lab_topology, variant_of(lab_profile))
            except ConfigError as exc:
                problems += [f"--lab-topology: {p}" for p in exc.problems]
            if weaknesses:
                problems.append(
                    "--lab-weakness seeds weaknesses into the shop, not into a --lab-topology: declare "
                    "a variant in the topology file (variants:) and pick it with --lab-profile"
                )
        elif lab_profile not in PROFILES:
            problems.append(f"--lab-profile {lab_profile!r}: choose one of {', '.join(PROFILES)}")
        problems += [f"--lab-weakness: {p}" for p in check_names(weaknesses)]
        if weaknesses and lab_profile != "resilient" and lab_topology is None:
            problems.append(
                f"--lab-weakness applies to the resilient profile, not to --lab-profile {lab_profile!r}"
            )
        if not 0 < probe_hz <= MAX_HZ:
            problems.append(f"--chaos-probe-hz {probe_hz!r}: use a rate above 0 and at most {MAX_HZ:g}")
        ttl = 0.0
        try:
            ttl = parse_duration(fault_ttl, what="--chaos-fault-ttl")
        except ConfigError as exc:
            problems.extend(exc.problems)
        specs = []
        for text in guards or []:
            try:
                specs.append(GuardSpec.parse(text))
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        return cls(
            platform,
            lab_profile,
            weaknesses,
            seed,
            dry_run,
            probe_hz,
            ttl,
            reports,
            tuple(specs),
            progress,
            tuple(contexts),
            kubeconfig,
            tuple(kube_namespaces or ()),
            kube_control_plane,
            topology,
            kube_load,
            lab_topology,
        )


def clusters_file(path: Path | None, problems: list[str]) -> list[str]:
    """A small YAML file mapping roles to kubeconfig contexts, e.g. ``{east: kind-east, west:
    kind-west}``, as ``ROLE=CONTEXT`` items."""
    if path is None:
        return []
    import yaml

    try:
        doc = yaml.safe_load(read_user_file(path, "clusters"))
    except ConfigError as exc:
        problems += [f"--kube-clusters {p}" for p in exc.problems]
        return []
    except yaml.YAMLError as exc:
        problems.append(f"--kube-clusters {path}: not valid YAML: {exc}")
        return []
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        problems.append(f"--kube-clusters {path}: a mapping of role: context, e.g. {{east: kind-east}}")
        return []
    return [f"{role}={context}" for role, context in doc.items()]


def parse_contexts(items: list[str], problems: list[str]) -> list[tuple[str, str]]:
    """``ROLE=CONTEXT`` (or a bare CONTEXT, whose role is its name) for each cluster."""
    out: list[tuple[str, str]] = []
    for item in items:
        role, sep, context = item.partition("=")
        role, context = (role.strip(), context.strip()) if sep else (item.strip(), item.strip())
        if not role or not context:
            problems.append(f"--kube-context {item!r}: write ROLE=CONTEXT, e.g. east=kind-east")
        elif role in {r for r, _ in out}:
            problems.append(f"--kube-context {item!r}: role {role!r} is given twice")
        else:
            out.append((role, context))
    return out
