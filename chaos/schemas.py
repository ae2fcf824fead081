"""JSON Schemas of the files users write — lab topology files, game-day plans, kube topology
files — so an editor with a YAML language server checks and completes them as they are typed
(``# yaml-language-server: $schema=.../topology.schema.json``). ``chaos schema NAME`` prints
one; ``schemas/`` holds them all. The loaders stay the authority (they also check what a schema
cannot: that a placeholder names a node, a program is installed, a volume fits); a test keeps
each schema's keys equal to its loader's."""

from __future__ import annotations

from typing import Any

from chaos.errors import ConfigError

DRAFT = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]

_TEXT: Schema = {"type": "string"}
_NAME: Schema = {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,11}$"}
_SCALAR: Schema = {"type": ["string", "number", "boolean"]}
_HOSTS: Schema = {
    "type": "object",
    "description": "machines the nodes share: lose_host takes every node on one at once",
    "propertyNames": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$"},
    "additionalProperties": {"type": "array", "items": _TEXT, "minItems": 1, "uniqueItems": True},
}


def _number_or_var(kind: str) -> Schema:
    return {"oneOf": [{"type": kind}, {"type": "string", "pattern": "^\\$\\{var:[A-Za-z0-9_.-]+\\}$"}]}


def _closed(properties: Schema, required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": False, **extra}
    if required:
        out["required"] = list(required)
    return out


def _document(title: str, properties: Schema, required: tuple[str, ...] = ()) -> Schema:
    return {"$schema": DRAFT, "title": title, **_closed(properties, required)}


def _one_key(key: str, value: Schema, **more: Schema) -> Schema:
    return _closed({key: value, **more}, (key, *more))


def _node(required: tuple[str, ...]) -> Schema:
    ready = {
        "oneOf": [
            _closed({"tcp": {"const": True}, "within": {"type": "number"}}, ("tcp",)),
            _closed({"http": {"type": "string", "pattern": "^/"}, "within": {"type": "number"}}, ("http",)),
            _closed({"command": _TEXT, "within": {"type": "number"}}, ("command",)),
        ]
    }
    return _closed(
        {
            "address": {"type": "string", "description": "in 198.18.0.2-198.18.0.254; assigned if left out"},
            "cluster": _TEXT,
            "kind": _TEXT,
            "command": {
                "description": "a string split as a shell would, or a list of arguments",
                "oneOf": [_TEXT, {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1}],
            },
            "env": {"type": "object", "additionalProperties": _SCALAR},
            "user": _TEXT,
            "stop": {"type": "string", "pattern": "^SIG[A-Z0-9]+$"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "ready": ready,
            "volume": {"type": "integer", "minimum": 16, "maximum": 4096, "description": "MB, at ${data}"},
            "files": {"type": "object", "additionalProperties": _TEXT},
        },
        required,
    )


def _adapter() -> Schema:
    return {
        "oneOf": [
            {"const": "etcd"},
            _one_key("http", _closed({"put": _TEXT, "list": _TEXT}, ("put", "list"))),
            _one_key("python", {"type": "string", "pattern": "^[A-Za-z_][\\w.]*:[A-Za-z_]\\w*$"}),
        ]
    }


def topology() -> Schema:
    leader = {
        "oneOf": [
            {"const": "etcd"},
            _closed({"http": {"type": "string", "pattern": "^/"}, "json": _TEXT}, ("http", "json")),
            _one_key("command", _TEXT),
        ]
    }
    return _document(
        "chaos lab topology (docs/your-system.md)",
        {
            "name": _TEXT,
            "description": _TEXT,
            "vars": {"type": "object", "additionalProperties": _SCALAR},
            "nodes": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": _NAME,
                "additionalProperties": _node(("command", "port")),
            },
            "entry": _TEXT,
            "masters": _closed(
                {
                    "members": {"type": "array", "items": _TEXT, "minItems": 1},
                    "leader": leader,
                    "durability": _adapter(),
                },
                ("members",),
            ),
            "stores": {
                "type": "object",
                "additionalProperties": _closed(
                    {"node": _TEXT, "durability": _adapter()}, ("node", "durability")
                ),
            },
            "metrics": {"type": "object", "additionalProperties": {"type": "string", "pattern": "^/"}},
            "hosts": _HOSTS,
            "clusters": {
                "type": "object",
                "description": "in order: the first is the primary, the others its backups",
                "additionalProperties": _closed(
                    {
                        "entry": {"type": "string", "description": "the cluster's own entry (cluster_url)"},
                        "replicas": {
                            "type": "array",
                            "items": _TEXT,
                            "uniqueItems": True,
                            "description": "the nodes cold_standby stops and capacity counts",
                        },
                        "autoscale": _closed(
                            {
                                "socket": {
                                    "type": "string",
                                    "description": "the balancer's HAProxy runtime API",
                                },
                                "backend": _TEXT,
                                "min": _number_or_var("integer"),
                                "target_rps": _number_or_var("number"),
                                "scale_out_after": _number_or_var("number"),
                                "scale_in_after": _number_or_var("number"),
                            },
                            ("socket", "backend", "min", "target_rps"),
                        ),
                    }
                ),
            },
            "variants": {
                "type": "object",
                "additionalProperties": _closed(
                    {
                        "description": _TEXT,
                        "vars": {"type": "object", "additionalProperties": _SCALAR},
                        "nodes": {"type": "object", "additionalProperties": _node(())},
                        "hosts": _HOSTS,
                    }
                ),
            },
        },
        ("nodes",),
    )


def plan() -> Schema:
    """From the model the loader checks types with (`chaos.plan.PlanFile`): one source."""
    from chaos.plan import PlanFile

    return {"$schema": DRAFT, **PlanFile.model_json_schema()}


def kube_topology() -> Schema:
    """From the model the loader checks types with (`chaos.kube.topology.KubeTopologyFile`)."""
    from chaos.kube.topology import KubeTopologyFile

    return {"$schema": DRAFT, **KubeTopologyFile.model_json_schema()}


SCHEMAS = {"topology": topology, "plan": plan, "kube-topology": kube_topology}


def schema(name: str) -> Schema:
    if name not in SCHEMAS:
        raise ConfigError(f"no schema {name!r}; schemas: {', '.join(SCHEMAS)}")
    return SCHEMAS[name]()
