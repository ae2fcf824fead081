"""A game-day plan: which experiments to run where, with which guards, on what schedule.

    name: weekly-game-day
    platform: lab                 # lab, kube (then contexts and namespaces) or memory
    profile: resilient            # lab profile
    seed: 7
    experiments:                  # files or file::test, relative to where the plan is run
      - experiments/test_master_ha.py::test_follower_loss_keeps_writes
      - experiments/test_workload_storage.py
    guards:                       # stop conditions for every experiment
      - http: http://198.18.0.20/healthz
        max_error_rate: 0.5
        over: 3s
      - promql: 'sum(rate(workload_requests_total{code=~"5.."}[5s]))'
        max: 5
    slo: {p99_ms: 300}            # --chaos-slo overrides
    contexts: {east: kind-east}   # kube only: role -> kubeconfig context
    namespaces: [shop]            # kube only: the blast radius
    control_plane: false          # kube only: allow faults on etcd members
    topology: topology.yaml       # kube: what the experiments' names mean (docs/kube.md);
                                  # lab: the system the lab runs (docs/your-system.md)
    schedule: "0 3 * * 1"         # cron, for the CronJob / CI schedule that runs this plan
    time_limit: 30m               # the whole run; it is stopped (faults reverted) after this
    reports: reports/gameday      # each run gets a directory under it

Every problem is reported at once, with the file and line, before anything runs.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from chaos.config import GuardSpec, parse_duration
from chaos.errors import ConfigError
from chaos.lab.profiles import PROFILES
from chaos.registry import PLATFORMS
from chaos.typed import check, node_at
from chaos.userfiles import read_user_file


class PlanFile(BaseModel):
    """A game-day plan: which experiments to run where, with which guards, on what schedule."""

    # types only: `load_plan` checks the rest (files exist, contexts are known, cron parses)

    model_config = ConfigDict(
        extra="forbid",
        title="chaos game-day plan (docs/gameday.md)",
        json_schema_extra={"required": ["experiments"]},
    )

    name: str | None = Field(
        None, description="the plan's name; the file's stem if left out", examples=["weekly"]
    )
    platform: str = Field("lab", examples=["lab"], json_schema_extra={"enum": list(PLATFORMS)})
    profile: str = Field(
        "resilient", description="a lab profile, or a lab topology's variant", examples=["resilient"]
    )
    seed: int = Field(0, examples=[7])
    experiments: list[str] = Field(
        default_factory=list,
        description="files, directories or file::test, relative to where the plan is run",
        examples=[["experiments/test_master_ha.py"]],
        json_schema_extra={"minItems": 1},
    )
    guards: list[dict[str, str | int | float]] | None = Field(
        None,
        description="stop conditions for every experiment",
        examples=[[{"http": "http://198.18.0.20/healthz", "max_error_rate": 0.5, "over": "3s"}]],
    )
    slo: dict[str, float] | None = Field(None, examples=[{"p99_ms": 300}])
    contexts: dict[str, str] | None = Field(
        None, description="kube only: role -> kubeconfig context", examples=[{"east": "kind-east"}]
    )
    namespaces: list[str] | None = Field(None, description="kube only: the blast radius", examples=[["shop"]])
    control_plane: bool = Field(
        False, description="kube only: allow faults on etcd members", examples=[False]
    )
    topology: str | None = Field(None, examples=["topology.yaml"])
    schedule: str | None = Field(None, description="cron, 5 fields", examples=["0 3 * * 1"])
    time_limit: str | float | None = Field(None, description="the whole run, e.g. 30m", examples=["30m"])
    reports: str | None = Field(None, examples=["reports/gameday"])


KEYS = tuple(PlanFile.model_fields)
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")


@dataclass(frozen=True)
class Plan:
    path: Path
    name: str
    experiments: tuple[str, ...]
    platform: str = "lab"
    profile: str = "resilient"
    seed: int = 0
    guards: tuple[GuardSpec, ...] = ()
    guard_args: tuple[str, ...] = ()
    slo: dict[str, float] = field(default_factory=dict)
    contexts: dict[str, str] = field(default_factory=dict)
    namespaces: tuple[str, ...] = ()
    control_plane: bool = False
    topology: Path | None = None
    schedule: str | None = None
    time_limit: float = 3600.0
    reports: Path = Path("reports/gameday")


class Problems:
    """Every problem of a YAML file, each with the file and line: reported at once."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path, self.prefix = path, prefix
        self.items: list[str] = []

    def add(self, node: yaml.Node | None, message: str) -> None:
        self.at(node.start_mark.line + 1 if node is not None else 0, message)

    def at(self, line: int, message: str) -> None:
        """A problem at ``line`` (1-based; 0 for the file as a whole)."""
        where = f":{line}" if line else ""
        self.items.append(f"{self.prefix}{self.path}{where}: {message}")


def compose(path: Path, what: str) -> yaml.Node | None:
    """The YAML file's node tree (nodes keep their lines); ConfigError with the line when it
    does not parse."""
    text = read_user_file(path, what)
    try:
        return yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def scalar(node: yaml.Node) -> Any:
    """A composed node's plain value (the node keeps the line for error messages)."""
    return yaml.safe_load(yaml.serialize(node))


def kube_contexts(kubeconfig: Path | None = None) -> list[str] | None:
    """Context names in the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``), or None
    when there is none to read."""
    path = (
        kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()
    )
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return [c.get("name", "") for c in doc.get("contexts", []) or [] if isinstance(c, dict)]


def _check_experiment(base: Path, spec: str) -> str | None:
    """Why ``spec`` (file or file::test) names no experiment, or None."""
    file, _, test = spec.partition("::")
    path = base / file
    if not test and path.is_dir():
        return None if any(path.glob("test_*.py")) else f"experiment {spec!r}: no test_*.py in {path}"
    if not path.is_file():
        return f"experiment {spec!r}: no file {path}"
    if not test:
        return None
    name = test.split("[", 1)[0]
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        return f"experiment {spec!r}: {path} does not parse: {exc.msg} (line {exc.lineno})"
    tests = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    if name not in tests:
        return f"experiment {spec!r}: no test {name!r} in {file}; it has: {', '.join(tests) or 'none'}"
    return None


def load_plan(path: Path) -> Plan:
    """Read and validate a plan; raises ConfigError listing every problem with file:line."""
    problems = Problems(path)
    root = compose(path, "plan")
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}: a plan is a mapping of keys ({', '.join(KEYS)})")
    given = scalar(root)
    plan, bad = check(PlanFile, given, root, problems)
    base = Path.cwd()  # paths in a plan are relative to where it is run, as pytest's are

    def at(*loc: Any) -> yaml.Node | None:
        return node_at(root, loc)

    platform = plan.platform
    contexts = plan.contexts or {}
    namespaces = plan.namespaces or []
    if platform == "kube" and not contexts:
        problems.add(at("platform"), "platform kube needs contexts: {ROLE: kubeconfig context}")
    if platform == "kube" and not namespaces:
        problems.add(at("platform"), "platform kube needs namespaces: the blast radius, e.g. [shop]")
    if plan.profile not in PROFILES and not (platform == "lab" and plan.topology):  # else a variant
        problems.add(at("profile"), f"profile {plan.profile!r}: use one of {', '.join(PROFILES)}")

    experiments: list[str] = []
    if platform not in PLATFORMS:
        problems.add(at("platform"), f"platform {platform!r}: use one of {', '.join(PLATFORMS)}")
    if not plan.experiments and "experiments" not in bad:
        problems.add(at("experiments") or root, "experiments: a list of files or file::test, at least one")
    for i, spec in enumerate(plan.experiments):
        why = _check_experiment(base, spec)
        if why:
            problems.add(at("experiments", i), why)
        experiments.append(str(base / spec))

    guards: list[GuardSpec] = []
    guard_args: list[str] = []
    for i, g in enumerate(plan.guards or []):
        # the command-line form: options first, the target last (a query may hold commas)
        parts = [f"{k}={v}" for k, v in g.items() if k not in ("http", "promql")]
        parts += [f"{k}={g[k]}" for k in ("http", "promql") if k in g]
        arg = ",".join(parts)
        try:
            guards.append(GuardSpec.parse(arg))
            guard_args.append(arg)
        except ConfigError as exc:
            for p in exc.problems:
                problems.add(at("guards", i), p)

    if contexts:
        known = kube_contexts()
        for role, ctx in contexts.items():
            if known is None:
                problems.add(at("contexts"), f"context {ctx!r} (role {role}): no kubeconfig to find it in")
            elif ctx not in known:
                problems.add(
                    at("contexts"),
                    f"unknown context {ctx!r} (role {role}); "
                    f"the kubeconfig has: {', '.join(known) or 'none'}",
                )
        if platform == "lab":
            problems.add(at("contexts"), "contexts apply to platform kube, not to the lab")

    topology = None
    if plan.topology:
        topology = base / plan.topology
        if platform == "lab":
            from chaos.lab.topofile import load_topology as load_lab_topology
            from chaos.lab.topofile import variant_of

            try:
                load_lab_topology(topology, variant_of(plan.profile))
            except ConfigError as exc:
                for p in exc.problems:
                    problems.add(at("topology"), p)
        elif platform == "kube":
            from chaos.kube.topology import load_topology

            found: list[str] = []
            load_topology(topology, set(contexts), found)
            for p in found:
                problems.add(at("topology"), p)

    schedule = plan.schedule or None
    if schedule is not None:
        fields = schedule.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            problems.add(
                at("schedule"), f"schedule {schedule!r}: a cron expression of 5 fields, e.g. '0 3 * * 1'"
            )

    time_limit = 3600.0
    if plan.time_limit is not None:
        try:
            time_limit = parse_duration(plan.time_limit, what="time_limit")
        except ConfigError as exc:
            for p in exc.problems:
                problems.add(at("time_limit"), p)

    reports = Path(plan.reports or "reports/gameday")
    if problems.items:
        raise ConfigError(problems.items)
    return Plan(
        path=path,
        name=plan.name or path.stem,
        experiments=tuple(experiments),
        platform=platform,
        profile=plan.profile,
        seed=plan.seed,
        guards=tuple(guards),
        guard_args=tuple(guard_args),
        slo=dict(plan.slo or {}),
        contexts=dict(contexts),
        namespaces=tuple(namespaces),
        control_plane=plan.control_plane,
        topology=topology,
        schedule=schedule,
        time_limit=time_limit,
        reports=reports if reports.is_absolute() else base / reports,
    )
