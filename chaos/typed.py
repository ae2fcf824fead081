"""The types of a file a user writes, checked by a pydantic model, each problem reported at
the line it is on.

A model says what each key holds (text, a number, a list of ...); `check` validates the
file's values against it in strict mode (a boolean is not a number, a date is not text) and
turns every error into ``file:line: key: what is wrong; write e.g. ...``, taking the example
from the field. What types cannot say (an experiment file exists, a context is in the
kubeconfig) stays with the loader, which runs on values whose types are then known. The same
model gives the file's JSON Schema (`chaos schema`), so the editor and the loader agree.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class Reporter(Protocol):
    def add(self, node: yaml.Node | None, message: str) -> None: ...


def check(
    model: type[M], values: Any, root: yaml.Node, problems: Reporter, where: tuple[Any, ...] = ()
) -> tuple[M, set[str]]:
    """``values`` as ``model``, and the top-level keys that were wrong. Each error becomes a
    problem in ``problems``; the keys at fault are then left out and take their defaults (every
    field of such a model has one), so the loader's own checks still run on the rest and every
    problem of the file is reported at once. ``root`` is the node ``values`` came from, and
    ``where`` its place in the file (for a part validated on its own, e.g. one service)."""
    try:
        return model.model_validate(values, strict=True), set()
    except ValidationError as exc:
        bad: set[str] = set()
        # a union's branches fail one by one: one problem per place, naming every branch
        grouped: dict[str, list[Any]] = {}
        for err in exc.errors(include_url=False):
            grouped.setdefault(_path(tuple(err["loc"])), []).append(err)
        for errs in grouped.values():
            loc = tuple(errs[0]["loc"])
            problems.add(node_at(root, loc), describe(model, loc, errs, where))
            bad.add(str(loc[0]) if loc else "")
        rest = {k: v for k, v in values.items() if k not in bad} if isinstance(values, dict) else {}
        return model.model_validate(rest, strict=True), bad


def describe(
    model: type[BaseModel], loc: tuple[Any, ...], errs: list[Any], prefix: tuple[Any, ...] = ()
) -> str:
    where = _path(prefix + loc)
    first = errs[0]
    if first["type"] == "extra_forbidden":
        keys = ", ".join(model.model_fields)
        if len(loc) == 1:
            return f"unknown key {where!r}; the keys are: {keys}"
        return f"{where}: unknown key"
    if first["type"] == "missing":
        return f"{where}: missing; {_example(model, loc)}"
    wants = [e["msg"].removeprefix("Input should be ") for e in errs]
    want = wants[0] if len(wants) == 1 else ", ".join(wants[:-1]) + " or " + wants[-1]
    got = repr(first.get("input"))
    shown = got if len(got) <= 60 else got[:57] + "..."
    return f"{where}: {shown}: should be {want}; {_example(model, loc)}"


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "int", "float", "bool", "list", "dict") or "[" in str(part):
            continue  # the branch of a union pydantic tried, not a key of the file
        else:
            out += f".{part}" if out else str(part)
    return out


def _example(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    field = model.model_fields.get(str(loc[0])) if loc else None
    examples = field.examples if field is not None else None
    if not examples:
        return "see `chaos schema` for what it takes"
    # a scalar dumps as a document with an end marker ("...") after it
    shown = yaml.safe_dump(examples[0], default_flow_style=True).removesuffix("\n...\n").strip()
    return f"write e.g. {loc[0]}: {shown}"


def node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The node ``loc`` (keys and indexes, as pydantic gives them) points at, or the nearest
    one above it that exists (a missing key is reported at its mapping)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next((v for k, v in node.value if str(k.value) == str(part)), None)
            if hit is None:
                return node
            node = hit
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node
