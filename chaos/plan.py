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

from chaos.config import GuardSpec, parse_duration
from chaos.errors import ConfigError
from chaos.lab.profiles import PROFILES
from chaos.registry import PLATFORMS
from chaos.userfiles import read_user_file

KEYS = (
    "name",
    "platform",
    "profile",
    "seed",
    "experiments",
    "guards",
    "slo",
    "contexts",
    "namespaces",
    "control_plane",
    "topology",
    "schedule",
    "time_limit",
    "reports",
)
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

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.items.append(f"{self.path}{line}: {message}")


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
    nodes: dict[str, yaml.Node] = {}
    for key_node, value_node in root.value:
        key = str(key_node.value)
        if key not in KEYS:
            problems.add(key_node, f"unknown key {key!r}; plan keys are: {', '.join(KEYS)}")
        nodes[key] = value_node
    values = {k: scalar(n) for k, n in nodes.items() if k in KEYS}
    base = Path.cwd()  # paths in a plan are relative to where it is run, as pytest's are

    def text(key: str, default: str, example: str) -> str:
        """The value of ``key`` as text, or ``default`` (with a problem) when it is not text."""
        value = values.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.add(nodes.get(key), f"{key}: {value!r} is not text; write e.g. {key}: {example}")
            return default
        return str(value)

    name = text("name", path.stem, "weekly")
    platform = text("platform", "lab", "lab")
    if platform not in PLATFORMS:
        problems.add(nodes.get("platform"), f"platform {platform!r}: use one of {', '.join(PLATFORMS)}")
    elif platform == "kube" and not values.get("contexts"):
        problems.add(nodes.get("platform"), "platform kube needs contexts: {ROLE: kubeconfig context}")
    namespaces = values.get("namespaces") or []
    if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
        problems.add(nodes.get("namespaces"), "namespaces: a list of namespace names, e.g. [shop]")
        namespaces = []
    if platform == "kube" and not namespaces:
        problems.add(nodes.get("platform"), "platform kube needs namespaces: the blast radius, e.g. [shop]")
    control_plane = values.get("control_plane", False)
    if not isinstance(control_plane, bool):
        problems.add(nodes.get("control_plane"), f"control_plane {control_plane!r}: true or false")
        control_plane = False
    profile = text("profile", "resilient", "resilient")
    if profile not in PROFILES and not (platform == "lab" and values.get("topology")):  # else a variant
        problems.add(nodes.get("profile"), f"profile {profile!r}: use one of {', '.join(PROFILES)}")
    seed = values.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.add(nodes.get("seed"), f"seed {seed!r}: an integer")
        seed = 0

    experiments: list[str] = []
    exp_node = nodes.get("experiments")
    if not isinstance(exp_node, yaml.SequenceNode) or not exp_node.value:
        problems.add(exp_node or root, "experiments: a list of files or file::test, at least one")
    else:
        for item in exp_node.value:
            spec = scalar(item)
            if not isinstance(spec, str):
                problems.add(item, f"experiment {spec!r}: a path such as experiments/test_master_ha.py")
                continue
            why = _check_experiment(base, spec)
            if why:
                problems.add(item, why)
            experiments.append(str(base / spec))

    guards: list[GuardSpec] = []
    guard_args: list[str] = []
    guard_node = nodes.get("guards")
    if guard_node is not None and not isinstance(guard_node, yaml.SequenceNode):
        problems.add(
            guard_node, "guards: a list of {http: URL, max_error_rate: X, over: 2s} or {promql: Q, max: X}"
        )
    for item in guard_node.value if isinstance(guard_node, yaml.SequenceNode) else []:
        g = scalar(item)
        if not isinstance(g, dict):
            problems.add(item, "a guard is a mapping, e.g. {http: URL, max_error_rate: 0.5, over: 3s}")
            continue
        # the command-line form: options first, the target last (a query may hold commas)
        parts = [f"{k}={v}" for k, v in g.items() if k not in ("http", "promql")]
        parts += [f"{k}={g[k]}" for k in ("http", "promql") if k in g]
        arg = ",".join(parts)
        try:
            guards.append(GuardSpec.parse(arg))
            guard_args.append(arg)
        except ConfigError as exc:
            for p in exc.problems:
                problems.add(item, p)

    slo: dict[str, float] = {}
    slo_raw = values.get("slo") or {}
    if not isinstance(slo_raw, dict):
        problems.add(nodes.get("slo"), "slo: a mapping of NAME: NUMBER, e.g. {p99_ms: 300}")
    else:
        for k, v in slo_raw.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                problems.add(nodes.get("slo"), f"slo {k}: {v!r} is not a number")
            else:
                slo[str(k)] = float(v)

    contexts_raw = values.get("contexts") or {}
    contexts: dict[str, str] = {}
    if not isinstance(contexts_raw, dict):
        problems.add(
            nodes.get("contexts"), "contexts: a mapping of role: kubeconfig context, e.g. {east: kind-east}"
        )
    elif contexts_raw:
        known = kube_contexts()
        for role, ctx in contexts_raw.items():
            contexts[str(role)] = str(ctx)
            if known is None:
                problems.add(
                    nodes.get("contexts"), f"context {ctx!r} (role {role}): no kubeconfig to find it in"
                )
            elif ctx not in known:
                problems.add(
                    nodes.get("contexts"),
                    f"unknown context {ctx!r} (role {role}); "
                    f"the kubeconfig has: {', '.join(known) or 'none'}",
                )
        if platform == "lab":
            problems.add(nodes.get("contexts"), "contexts apply to platform kube, not to the lab")

    topology = None
    if text("topology", "", "topology.yaml"):
        topology = base / str(values["topology"])
        if platform == "lab":
            from chaos.lab.topofile import load_topology as load_lab_topology
            from chaos.lab.topofile import variant_of

            try:
                load_lab_topology(topology, variant_of(str(values.get("profile", "resilient"))))
            except ConfigError as exc:
                for p in exc.problems:
                    problems.add(nodes.get("topology"), p)
        elif platform == "kube":
            from chaos.kube.topology import load_topology

            found: list[str] = []
            load_topology(topology, set(contexts), found)
            for p in found:
                problems.add(nodes.get("topology"), p)

    schedule = text("schedule", "", "'0 3 * * 1'") or None
    if schedule is not None:
        fields = str(schedule).split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            problems.add(
                nodes.get("schedule"),
                f"schedule {schedule!r}: a cron expression of 5 fields, e.g. '0 3 * * 1'",
            )

    time_limit = 3600.0
    if "time_limit" in values:
        try:
            time_limit = parse_duration(values["time_limit"], what="time_limit")
        except ConfigError as exc:
            for p in exc.problems:
                problems.add(nodes.get("time_limit"), p)

    reports = Path(text("reports", "", "reports/gameday") or "reports/gameday")
    if problems.items:
        raise ConfigError(problems.items)
    return Plan(
        path=path,
        name=name,
        experiments=tuple(experiments),
        platform=platform,
        profile=profile,
        seed=seed,
        guards=tuple(guards),
        guard_args=tuple(guard_args),
        slo=slo,
        contexts=contexts,
        namespaces=tuple(namespaces),
        control_plane=control_plane,
        topology=topology,
        schedule=schedule,
        time_limit=time_limit,
        reports=reports if reports.is_absolute() else base / reports,
    )
