"""Config centre outage: the configuration store (the three etcd masters, where the gateways
keep the catalogue's configuration) becomes unreachable from every gateway. The catalogue must
keep serving on its last known configuration, and pick changes up again once the store returns.
"""

from collections.abc import Callable

from chaos import NotSupported, Platform, SLOs, Steady, experiment, partition

CONFIG = "/config/catalog"  # the gateways' key (chaos.lab.workload.gateway.CONFIG_KEY)
OUTAGE_S = 8.0


def configured(value: str) -> Callable[[object], bool]:
    return lambda body: isinstance(body, dict) and body.get("config") == value


@experiment(
    verifies="HA",
    hypothesis="with the config centre (the 3 etcd masters) unreachable from every gateway for 8 s, "
    "the catalogue stays available (>= 99 %) on its last known configuration, and a change "
    "written once the centre is back reaches it within 5 s",
    controls={
        "fail-closed-config": ["catalogue availability [during]"],
        "frozen-config": ["catalogue config updated [recovery]"],
    },
)
def test_services_outlive_their_config_centre(platform: Platform, steady: Steady, slo: SLOs) -> None:
    gateways = [n for n in platform.nodes() if n.startswith("east-gw")]
    if not gateways:
        raise NotSupported("no gateways named east-gw* to cut off from the config centre")
    config = platform.masters.kv()
    config.put(CONFIG, "v1", timeout=2.0)
    steady.hold(seconds=2.5, phase="warm-up")  # every gateway has read v1 (they refresh every second)
    catalogue = steady.http("catalogue", platform.entry_url + "/catalog", hz=10)
    steady.baseline(seconds=3)
    steady.require(catalogue.share(configured("v1"), "baseline", label="on v1") >= 0.99)
    with partition(platform, gateways, platform.masters.names(), label="config centre unreachable"):
        steady.hold(seconds=OUTAGE_S, phase="config centre unreachable")
    config.put(CONFIG, "v2", timeout=2.0)
    updated = catalogue.recovers(
        within=slo("config_update_s", 5.0), after="end", where=configured("v2"), label="config updated"
    )
    steady.wait_for(updated)
    steady.expect(catalogue.availability("during") >= slo("availability", 0.99), updated)
