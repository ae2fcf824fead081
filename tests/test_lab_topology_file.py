"""Lab topology files: a valid file becomes nodes with addresses, commands and roles; a bad one
is refused with every problem at once, each with its file and line, before anything starts."""

import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given

from chaos import ConfigError
from chaos.config import RunConfig
from chaos.gameday import pytest_argv
from chaos.lab.topofile import load_topology, variant_of
from chaos.plan import load_plan
from tests.fuzzing import replaced, replacements
from tests.lab.conftest import ROOT

EXAMPLES = ROOT / "examples"


def refused_with(path: Path, expected: list[tuple[int, str]]) -> None:
    """Loading ``path`` fails naming every (line, text) expected, each at its line."""
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    for line, text in expected:
        assert any(p.startswith(f"{path}:{line}: ") and text in p for p in info.value.problems), (
            line,
            text,
            info.value.problems,
        )


def write(tmp_path: Path, text: str, name: str = "topology.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = f"""\
    name: pair
    nodes:
      a: &node
        command: {sys.executable} -m http.server --bind ${{address}} ${{port}}
        port: 8000
        ready: {{http: /, within: 5}}
        files: {{peer.conf: "peer ${{address:b}}:${{port:b}} cost $${{dollar}}"}}
      b: *node
      c:
        address: 198.18.0.50
        command: [sleep, "100"]
        port: 9
        volume: 32
        env: {{DATA: "${{data}}/x"}}
    entry: http://${{address:a}}:${{port:a}}/
    masters: {{members: [a, b], leader: {{http: /status, json: raft.leader}}, durability: etcd}}
    stores:
      c: {{node: c, durability: {{http: {{put: "http://${{address}}:${{port}}/kv/${{key}}", list: "http://${{address}}:${{port}}/kv?p=${{prefix}}"}}}}}}
    variants:
      slow: {{description: slower, nodes: {{b: {{port: 8001}}}}}}
    """


def test_a_valid_topology_gets_addresses_and_fills_its_placeholders(tmp_path):
    topo = load_topology(write(tmp_path, GOOD))
    assert topo.name == "pair" and [n.name for n in topo.nodes] == ["a", "b", "c"]
    a, b, c = topo.nodes
    assert (a.address, b.address, c.address) == ("198.18.0.100", "198.18.0.101", "198.18.0.50")
    root = Path("/state")
    assert topo.argv(a, root)[-3:] == ["--bind", "198.18.0.100", "8000"]
    assert topo.render(a.files["peer.conf"], a, root) == "peer 198.18.0.101:8000 cost ${dollar}"
    assert topo.render(c.env["DATA"], c, root) == "/state/mnt/c/x"
    assert topo.render(topo.entry, None, root) == "http://198.18.0.100:8000/"
    assert topo.masters is not None and topo.masters.members == ("a", "b")
    assert topo.masters.leader is not None and topo.masters.leader.key == "raft.leader"
    assert a.ready.kind == "http" and a.ready.within == 5
    assert topo.stores[0].durability.kind == "http" and topo.variants == ("slow",)
    slow = load_topology(tmp_path / "topology.yaml", "slow")
    assert slow.title == "pair (slow)" and slow.nodes[1].port == 8001 and slow.nodes[0].port == 8000


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path):
    path = write(
        tmp_path,
        """\
        nodes:
          a:
            command: no-such-binary-anywhere ${nope}
            address: 10.0.0.1
          b:
            command: [sleep, "1"]
            address: 198.18.0.1
            port: 80
            volume: 999999
            ready: {http: nope}
            colour: blue
          c:
            command: [sleep, "${address:zz}"]
            address: 198.18.0.99
            port: 80
          d:
            command: [sleep, "1", "${data}"]
            address: 198.18.0.99
            port: 81
        masters: {members: [a, q], leader: {http: /x}}
        entry: http://${address:e}/
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    said = "\n".join(info.value.problems)
    for line, text in [
        (4, "address 10.0.0.1 is outside the lab's node range"),
        (3, "command 'no-such-binary-anywhere' is not found on PATH"),
        (3, "node a: needs port"),
        (7, "address 198.18.0.1 is outside"),  # the bridge's own
        (9, "volume is a size in MB"),
        (10, "ready is one of"),
        (11, "unknown key 'colour'"),
        (3, "unknown placeholder ${nope}"),
        (13, "${address:zz} names no node"),
        (18, "address 198.18.0.99 is also c's"),
        (17, "${data} needs a volume"),
        (20, "masters: 'q' is not a node"),
        (20, "masters: leader is etcd"),
        (21, "${address:e} names no node"),
    ]:
        assert f"{path}:{line}: " in said and text in said, (line, text, said)
        assert any(p.startswith(f"{path}:{line}: ") and text in p for p in info.value.problems), (line, text)


def test_hosts_place_nodes_on_machines_a_variant_can_rearrange_and_mistakes_are_named(tmp_path):
    base = """\
        nodes:
          a: &n {command: [sleep, "9"], port: 80}
          b: *n
          c: *n
        hosts:
          rack-a: [a, b]
          rack-b: [c]
        variants:
          packed: {hosts: {rack-a: [a, b, c]}}
        """
    topo = load_topology(write(tmp_path, base))
    assert topo.hosts == {"rack-a": ("a", "b"), "rack-b": ("c",)}
    assert load_topology(tmp_path / "topology.yaml", "packed").hosts == {"rack-a": ("a", "b", "c")}
    bad = write(
        tmp_path,
        """\
        nodes:
          a: &n {command: [sleep, "9"], port: 80}
          b: *n
        hosts:
          Rack: [a]
          two: [a, b]
          none: []
          ghost: [z]
        """,
        "bad.yaml",
    )
    refused_with(
        bad,
        [
            (5, "host name 'Rack'"),
            (6, "hosts: a is on Rack and on two: a node runs on one host"),
            (7, "hosts: none: a list of the nodes on it"),
            (8, "hosts: ghost: 'z' is not a node"),
        ],
    )


def test_clusters_keep_the_files_order_and_their_replicas_must_be_their_own(tmp_path):
    base = """\
        nodes:
          e1: {command: [sleep, "9"], port: 80, cluster: east}
          elb: {command: [sleep, "9"], port: 81, cluster: east}
          w1: {command: [sleep, "9"], port: 80, cluster: west}
        clusters:
          west: {entry: "http://${address:w1}:80", replicas: [w1]}
          east: {replicas: [e1]}
        """
    topo = load_topology(write(tmp_path, base))
    assert [c.name for c in topo.clusters] == ["west", "east"]  # the first is the primary
    assert topo.cluster(None).name == "west" and topo.cluster("east").replicas == ("e1",)
    assert topo.render(topo.cluster("west").entry, None, Path("/s")) == "http://198.18.0.102:80"
    with pytest.raises(ConfigError, match="no cluster 'south' in topology .*; clusters are: west, east"):
        topo.cluster("south")
    bad = write(
        tmp_path,
        """\
        nodes:
          m1: {command: [sleep, "9"], port: 80, cluster: east}
          e1: {command: [sleep, "9"], port: 80, cluster: east}
          w1: {command: [sleep, "9"], port: 80, cluster: west}
          s1: {command: [sleep, "9"], port: 80, cluster: south}
        masters: {members: [m1]}
        clusters:
          east: {replicas: [e1, w1, m1, ghost], entry: "http://${address:nobody}/"}
          west: {replicas: [w1, w1], standby: true}
          north: {replicas: []}
        """,
        "bad.yaml",
    )
    refused_with(
        bad,
        [
            (8, "clusters: east: w1 is a node of cluster west; give it cluster: east"),
            (8, "clusters: east: m1 is a member of the masters, not a service replica"),
            (8, "clusters: east: 'ghost' is not a node"),
            (8, "${address:nobody} names no node"),
            (9, "clusters: west: unknown key 'standby'"),
            (9, "clusters: west: a replica is listed twice"),
            (10, "clusters: north: no node declares cluster: north"),
            (5, "node s1: cluster 'south' is not under clusters: (clusters: east, west, north)"),
        ],
    )
    without = load_topology(write(tmp_path, 'nodes: {a: {command: [sleep, "9"], port: 80}}', "plain.yaml"))
    with pytest.raises(ConfigError, match="declares no clusters"):
        without.cluster(None)


def test_an_autoscaled_cluster_names_its_balancer_and_a_variant_can_change_its_numbers(tmp_path):
    base = """\
        vars: {after: 0}
        nodes:
          w1: &n {command: [sleep, "9"], port: 80, cluster: east}
          w2: *n
          w3: *n
          lb: {command: [sleep, "9"], port: 81, cluster: east}
        clusters:
          east:
            replicas: [w1, w2, w3]
            autoscale: {socket: "${config:lb}/admin.sock", backend: web, min: 2, target_rps: 15,
                        scale_out_after: "${var:after}"}
        variants:
          slow: {vars: {after: 10}}
        """
    topo = load_topology(write(tmp_path, base))
    scale = topo.cluster("east").autoscale
    assert scale is not None and (scale.min, scale.target_rps, scale.scale_out_after) == (2, 15, 0)
    assert scale.scale_in_after == 5  # the default
    assert topo.render(scale.socket, None, Path("/s")) == "/s/config/lb/admin.sock"
    assert topo.cluster("east").scaler == "east-autoscaler"
    slow = load_topology(tmp_path / "topology.yaml", "slow").cluster("east").autoscale
    assert slow is not None and slow.scale_out_after == 10
    bad = write(
        tmp_path,
        """\
        nodes:
          w1: &n {command: [sleep, "9"], port: 80, cluster: east}
          w2: *n
          east-autoscaler: {command: [sleep, "9"], port: 80, cluster: west}
        clusters:
          east:
            replicas: [w1, w2]
            autoscale: {socket: "${config:nope}/s", backend: web, min: 3, target_rps: fast, every: 1}
          west:
            replicas: [east-autoscaler]
            autoscale: {socket: /s, min: "${var:none}"}
        """,
        "bad.yaml",
    )
    refused_with(
        bad,
        [
            (8, "clusters: east: autoscale: unknown key 'every'"),
            (7, "clusters: east: the lab runs its autoscaler as east-autoscaler; rename that node"),
            (11, "clusters: west: autoscale: needs backend, target_rps"),
        ],
    )
    bad2 = write(
        tmp_path,
        """\
        nodes:
          w1: &n {command: [sleep, "9"], port: 80, cluster: east}
          w2: *n
        clusters:
          east:
            replicas: [w1, w2]
            autoscale: {socket: "${config:nope}/s", backend: web, min: 3, target_rps: fast,
                        scale_in_after: "${var:x}"}
        """,
        "bad2.yaml",
    )
    refused_with(
        bad2,
        [
            (7, "${config:nope} names no node"),
            (7, "clusters: east: autoscale: min is a number from 1 to 2"),
            (7, "clusters: east: autoscale: target_rps is a number from 0.01"),
            (8, "clusters: east: autoscale: scale_in_after: ${var:x} names no var"),
        ],
    )


def test_files_that_are_not_topologies(tmp_path):
    for text, expected in [
        ("nodes: [a, b\n", "not valid YAML"),
        ("", "the file is empty"),
        ("- a\n- b\n", "a topology must be a mapping"),
        ("name: x\n", "a topology needs nodes"),
        ("nodes:\n  a: {command: [sleep, '1'], port: 1}\n  b:\n    <<: {command: x}\n", "merge keys"),
    ]:
        with pytest.raises(ConfigError, match=expected):
            load_topology(write(tmp_path, text))
    with pytest.raises(ConfigError, match="no such topology file"):
        load_topology(tmp_path / "missing.yaml")


def test_variants_are_checked_and_resilient_is_the_file_as_written(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="no variant 'fast' in this topology; variants: slow"):
        load_topology(path, "fast")
    assert variant_of("resilient") == "" and variant_of("slow") == "slow"
    bad = write(
        tmp_path,
        GOOD.replace(
            "slow: {description: slower, nodes: {b: {port: 8001}}}", "resilient: {nodes: {z: {port: 1}}}"
        ),
        "bad.yaml",
    )
    with pytest.raises(ConfigError) as info:
        load_topology(bad, "resilient")
    said = "\n".join(info.value.problems)
    assert "that name is the file as written" in said


def test_run_config_and_game_day_plans_take_a_lab_topology(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    topo = write(tmp_path, GOOD)
    common = dict(platform="lab", seed=0, dry_run=False, probe_hz=20.0, fault_ttl="15m", reports=tmp_path)
    cfg = RunConfig.build(lab_profile="slow", lab_topology=topo, **common)
    assert cfg.lab_topology == topo.resolve() and cfg.lab_title.endswith("(slow)")
    with pytest.raises(ConfigError) as info:
        RunConfig.build(lab_profile="nope", lab_topology=topo, lab_weaknesses=["slow-election"], **common)
    said = "\n".join(info.value.problems)
    assert "--lab-topology: " in said and "no variant 'nope'" in said
    assert "--lab-weakness seeds weaknesses into the shop" in said
    plan = write(
        tmp_path,
        "name: own\nplatform: lab\nprofile: slow\ntopology: topology.yaml\nexperiments: [.]\n",
        "p.yaml",
    )
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    loaded = load_plan(plan)
    argv = pytest_argv(loaded, tmp_path / "run", tmp_path / "progress")
    assert argv[argv.index("--lab-topology") + 1] == str(tmp_path / "topology.yaml")
    assert argv[argv.index("--lab-profile") + 1] == "slow"


@pytest.mark.parametrize("example", ["etcd", "web", "failover", "autoscale"])
def test_the_shipped_examples_load_with_every_variant(example):
    path = EXAMPLES / example / "topology.yaml"
    topo = load_topology(path)
    assert topo.description and topo.variants
    for variant in topo.variants:
        assert load_topology(path, variant).variant == variant
    assert load_topology(path.parent).path == path.resolve()  # the directory names its file


def test_metrics_get_a_prometheus_node_scraping_each_declared_path(tmp_path):
    import json

    topo = load_topology(write(tmp_path, GOOD + "metrics: {a: /metrics, c: /stats}\n"))
    prom = topo.nodes[-1]
    assert prom.name == "prometheus" and prom.kind == "prometheus" and prom.port == 9090
    assert prom.address not in {n.address for n in topo.nodes[:-1]}
    config = json.loads(topo.render(prom.files["prometheus.yml"], prom, Path("/state")))
    targets = config["scrape_configs"][0]["static_configs"]
    assert targets == [
        {"targets": ["198.18.0.100:8000"], "labels": {"node": "a", "__metrics_path__": "/metrics"}},
        {"targets": ["198.18.0.50:9"], "labels": {"node": "c", "__metrics_path__": "/stats"}},
    ]
    assert dict(topo.metrics) == {"a": "/metrics", "c": "/stats"}
    with pytest.raises(ConfigError) as info:
        load_topology(write(tmp_path, GOOD + "metrics: {zz: /metrics, a: metrics}\n", "bad.yaml"))
    said = "\n".join(info.value.problems)
    assert "metrics: 'zz' is not a node" in said and "metrics: a: the path it serves metrics on" in said


def test_vars_fill_placeholders_and_variants_change_only_declared_vars(tmp_path):
    path = write(
        tmp_path,
        """\
        vars: {timeout_ms: 100, fast: true, mode: ""}
        nodes:
          a:
            command: [sleep, "${var:timeout_ms}", "--fast=${var:fast}", "${var:mode}"]
            port: 80
        variants:
          slow: {vars: {timeout_ms: 5000}}
        """,
    )
    base, slow = load_topology(path), load_topology(path, "slow")
    root = Path("/state")
    assert base.argv(base.nodes[0], root)[1:] == ["100", "--fast=true", ""]
    assert slow.argv(slow.nodes[0], root)[1:] == ["5000", "--fast=true", ""]
    bad = write(
        tmp_path,
        """\
        vars: {timeout_ms: 100, nested: [1]}
        nodes:
          a: {command: [sleep, "${var:timout_ms}"], port: 80}
        variants:
          slow: {vars: {timeout: 5000}}
        """,
        "bad.yaml",
    )
    with pytest.raises(ConfigError) as info:
        load_topology(bad, "slow")
    said = "\n".join(info.value.problems)
    assert f"{bad}:1: vars: nested: a var's value is text or a number" in said
    assert f"{bad}:3: node a: ${{var:timout_ms}} names no var; vars: timeout_ms" in said
    assert f"{bad}:5: variant slow: vars: 'timeout' is not a var of the file (vars: timeout_ms)" in said


# -- fuzzed: any YAML a user could write ends in a topology or a clear ConfigError ----------------

_VALID = {
    "name": "fuzz",
    "vars": {"t": 1},
    "nodes": {
        "a": {
            "command": ["sleep", "1"],
            "port": 80,
            "ready": {"tcp": True},
            "volume": 16,
            "env": {"X": "${address}"},
        },
        "b": {"command": "sleep ${var:t}", "port": 81, "files": {"f.conf": "${address:a}"}},
        "c": {"command": ["sleep", "1"], "port": 82, "cluster": "east"},
    },
    "entry": "http://${address:a}:80/",
    "hosts": {"h": ["a", "c"]},
    "clusters": {
        "east": {
            "entry": "http://${address:c}:82",
            "replicas": ["c"],
            "autoscale": {"socket": "${config:c}/s", "backend": "web", "min": 1, "target_rps": "${var:t}"},
        }
    },
    "masters": {"members": ["a", "b"], "leader": {"http": "/l", "json": "leader"}, "durability": "etcd"},
    "stores": {"s": {"node": "a", "durability": {"python": "x:Y"}}},
    "metrics": {"a": "/metrics"},
    "variants": {"v": {"nodes": {"b": {"port": 82}}, "vars": {"t": 2}}},
}

_PATHS = [
    ("name",),
    ("vars",),
    ("vars", "t"),
    ("variants", "v", "vars"),
    ("nodes",),
    ("nodes", "a"),
    ("nodes", "a", "command"),
    ("nodes", "a", "port"),
    ("nodes", "a", "ready"),
    ("nodes", "a", "volume"),
    ("nodes", "a", "env"),
    ("nodes", "a", "user"),
    ("nodes", "a", "stop"),
    ("nodes", "a", "address"),
    ("nodes", "b", "files"),
    ("entry",),
    ("masters",),
    ("masters", "members"),
    ("masters", "leader"),
    ("masters", "durability"),
    ("stores",),
    ("stores", "s"),
    ("metrics",),
    ("variants",),
    ("variants", "v"),
    ("variants", "v", "nodes"),
    ("nodes", "c", "cluster"),
    ("hosts",),
    ("hosts", "h"),
    ("clusters",),
    ("clusters", "east"),
    ("clusters", "east", "entry"),
    ("clusters", "east", "replicas"),
    ("clusters", "east", "autoscale"),
    ("clusters", "east", "autoscale", "socket"),
    ("clusters", "east", "autoscale", "min"),
    ("clusters", "east", "autoscale", "target_rps"),
]


@given(pairs=replacements(_PATHS))
def test_any_field_of_any_type_gives_a_topology_or_a_clear_error(tmp_path_factory, pairs):
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "topology.yaml"
    path.write_text(yaml.safe_dump(replaced(_VALID, pairs)))
    for variant in ("", "v"):
        try:
            load_topology(path, variant, check_machine=not variant)
        except ConfigError as exc:
            assert exc.problems and all(p.startswith(str(path)) for p in exc.problems), exc.problems


def test_a_labs_topology_is_read_again_when_a_new_lab_writes_a_new_copy(tmp_path):
    from chaos.lab.state import LabState

    copy = write(tmp_path, "nodes: {a: {command: [sleep, '1'], port: 80}}\n", "copy.yaml")
    st = LabState("default", (), 0.0, topology=str(copy))
    assert [n.name for n in st.topo.nodes] == ["a"]
    write(
        tmp_path,
        "nodes: {b: {command: [sleep, '1'], port: 80}, c: {command: [sleep, '1'], port: 81}}\n",
        "copy.yaml",
    )
    assert [n.name for n in st.topo.nodes] == ["b", "c"]
    copy.unlink()
    with pytest.raises(ConfigError, match="copy of its topology file is gone"):
        _ = st.topo
