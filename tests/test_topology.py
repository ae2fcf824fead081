"""The lab's plan and generated configurations, checked by the real tools where they exist."""

import ipaddress
import subprocess

import pytest

from chaos.http_probes import PrometheusUnavailable, PromQL
from chaos.lab.haproxy import gtm_config, router_config
from chaos.lab.profiles import PROFILES
from chaos.lab.prometheus import prometheus_config
from chaos.lab.topology import SUBNET, services
from tests.conftest import require


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_every_service_has_a_unique_lab_address_and_a_short_enough_name(profile):
    svcs = [s for s in services(profile) if s.kind != "autoscaler"]  # the autoscaler has no node
    addrs = [s.address for s in svcs]
    assert len(set(addrs)) == len(addrs)
    assert all(ipaddress.ip_address(a) in SUBNET for a in addrs)
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("198.18.0.0/15") for a in addrs)
    assert all(len(f"ch-{s.name}") <= 15 for s in svcs)  # Linux interface names
    masters = {str(SUBNET.network_address + 10 + i) for i in range(1, profile.masters + 1)}
    assert not masters & set(addrs)


def test_fragile_has_no_backup_cluster_and_no_breaker():
    fragile, resilient = PROFILES["fragile"], PROFILES["resilient"]
    assert [s.name for s in services(resilient) if s.kind == "autoscaler"] == ["east-scaler", "west-scaler"]
    assert not [s for s in services(fragile) if s.kind == "autoscaler"]
    assert resilient.reserved_slots == 1 and fragile.reserved_slots == 0
    assert {s.cluster for s in services(fragile)} == {"", "east"}
    assert {s.cluster for s in services(resilient)} == {"", "east", "west"}
    assert resilient.breaker and not fragile.breaker


def configs(profile, tmp_path):
    svcs = services(profile)
    routers = [s for s in svcs if s.kind == "router"]
    gtm = next(s for s in svcs if s.kind == "gtm")
    out = {"gtm": gtm_config(gtm, routers, tmp_path / "gtm.sock", profile)}
    for r in routers:
        out[r.name] = router_config(  # as the lab writes it: min_replicas in rotation
            r,
            [s for s in svcs if s.kind == "gateway" and s.cluster == r.cluster],
            tmp_path / f"{r.name}.sock",
            in_rotation=profile.min_replicas,
        )
    return out


def test_traffic_manager_prefers_east_and_backs_up_to_west(tmp_path):
    gtm = configs(PROFILES["resilient"], tmp_path)["gtm"]
    checks = "check inter 200ms fastinter 200ms downinter 200ms fall 2 rise 2"
    assert f"server east 198.18.0.30:80 {checks}\n" in gtm
    assert f"server west 198.18.0.40:80 {checks} backup\n" in gtm
    fragile = configs(PROFILES["fragile"], tmp_path)["gtm"]
    assert "backup" not in fragile.split("backend clusters", 1)[1]


def test_routers_health_check_every_gateway_every_200ms(tmp_path):
    east = configs(PROFILES["resilient"], tmp_path)["east-router"]
    assert "server east-gw1 198.18.0.31:8080 check\n" in east
    assert "server east-gw2 198.18.0.32:8080 check\n" in east
    assert "server east-gw5 198.18.0.35:8080 check disabled\n" in east  # warm slot, out of rotation
    assert "inter 200ms" in east and "option redispatch" in east and "retries 2" in east


@pytest.mark.parametrize("profile", list(PROFILES))
def test_haproxy_accepts_every_generated_config(tmp_path, profile):
    haproxy = require("haproxy")
    for name, text in configs(PROFILES[profile], tmp_path).items():
        path = tmp_path / f"{name}.cfg"
        path.write_text(text)
        out = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{name}: {out.stdout}{out.stderr}"


def test_promtool_accepts_the_prometheus_config(tmp_path):
    promtool = require("promtool")
    path = tmp_path / "prometheus.yml"
    path.write_text(prometheus_config(services(PROFILES["resilient"])))
    out = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promql_probe_says_clearly_when_prometheus_is_not_there():
    from chaos.ports import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusUnavailable, match=rf"Prometheus at {url} is unavailable \(ConnectError\)"):
        PromQL(url, "up").check_reachable()
    with pytest.raises(PrometheusUnavailable, match="unreachable"):
        PromQL(url, "up")()
