"""The JSON Schemas users' editors check their files with: each is a valid schema, names exactly
the keys its loader reads, accepts every file we ship, refuses a typo'd key, and the copies in
schemas/ are what `chaos schema` prints."""

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from chaos.kube.topology import SERVICE_KEYS
from chaos.lab.topofile import NODE_KEYS, TOP_KEYS, VARIANT_KEYS
from chaos.plan import KEYS as PLAN_KEYS
from chaos.schemas import SCHEMAS, schema
from tests.lab.conftest import ROOT
from tests.test_kube_network_storage import TOPOLOGY as KUBE_TOPOLOGY

SHIPPED = {
    "topology": sorted((ROOT / "examples").glob("*/topology.yaml")),
    "plan": sorted((ROOT / "plans").glob("*.yaml")),
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_each_schema_is_valid_and_its_copy_in_schemas_is_current(name):
    built = schema(name)
    jsonschema.Draft202012Validator.check_schema(built)
    assert json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text()) == built
    printed = subprocess.run(
        [sys.executable, "-m", "chaos", "schema", name], capture_output=True, text=True, check=True
    )
    assert json.loads(printed.stdout) == built


def test_the_schemas_name_exactly_the_keys_the_loaders_read():
    topo = schema("topology")
    assert set(topo["properties"]) == set(TOP_KEYS)
    assert set(topo["properties"]["nodes"]["additionalProperties"]["properties"]) == set(NODE_KEYS)
    assert set(topo["properties"]["variants"]["additionalProperties"]["properties"]) == set(VARIANT_KEYS)
    assert set(schema("plan")["properties"]) == set(PLAN_KEYS)
    kube = schema("kube-topology")
    # plans and kube topologies: the schema is the loader's own model (pydantic), so these two
    # hold by construction; kept so a hand-written schema could not creep back unnoticed
    assert set(kube["$defs"]["ServiceFile"]["properties"]) == SERVICE_KEYS


@pytest.mark.parametrize(
    ("name", "path"), [(name, path) for name, paths in SHIPPED.items() for path in paths], ids=str
)
def test_every_shipped_file_is_valid(name, path):
    jsonschema.validate(yaml.safe_load(path.read_text()), schema(name))


def test_a_kube_topology_like_the_tests_use_is_valid():
    doc = yaml.safe_load(KUBE_TOPOLOGY)
    jsonschema.validate(doc, schema("kube-topology"))


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        ("topology", {"nodes": {"a": {"command": "sleep 1", "port": 80, "colour": "blue"}}}),
        ("topology", {"nodes": {"a": {"command": "sleep 1"}}}),  # no port
        ("topology", {"nodes": {"Web_1": {"command": "sleep 1", "port": 80}}}),
        ("plan", {"experiments": ["x.py"], "time_limt": "30m"}),
        ("kube-topology", {"entry_url": "shop.example.com"}),
    ],
)
def test_a_typo_or_a_missing_key_is_refused(name, doc):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema(name))
