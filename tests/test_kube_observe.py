"""Observation on the API emulator: readiness by watch (one request), HPA status, and capacity
with the reserve held by placeholder pods of a negative PriorityClass."""

import threading
import time

import pytest

from chaos import ConfigError, PlatformError
from chaos.kube import connect
from chaos.kube.observe import capacity, cpu_millis, hpa, wait_ready
from chaos.wait import wait_until
from tests.kube_emulator import Emulator


@pytest.fixture
def emu():
    e = Emulator()
    e.add_node("node-1", 4000)
    e.add_node("node-2", 4000)
    e.add_priority_class("reserve", -10)
    e.add_pod("shop", "api-1", {"app": "api"}, cpu_millis=2000)
    e.add_pod("shop", "api-2", {"app": "api"}, cpu_millis=2400)
    e.add_pod("shop", "placeholder-1", {"app": "reserve"}, cpu_millis=1600, priority_class="reserve")
    e.add_pod("shop", "waiting", {"app": "api"}, cpu_millis=500, phase="Pending")
    return e


@pytest.fixture
def cluster(emu, tmp_path):
    with emu.serving(tmp_path) as kubeconfig:
        yield connect("east", "emu-east", kubeconfig=kubeconfig)


@pytest.mark.parametrize(("q", "m"), [("250m", 250), ("2", 2000), ("0.5", 500), (None, 0), ("", 0)])
def test_cpu_quantities(q, m):
    assert cpu_millis(q) == m


def test_capacity_counts_the_placeholder_reserve_apart(cluster):
    c = capacity(cluster)
    assert c["allocatable_mcpu"] == 8000
    assert c["used_mcpu"] == 4400 and c["reserve_mcpu"] == 1600
    assert c["free_mcpu"] == 2000
    assert c["reserve"] == pytest.approx(0.2) and c["headroom"] == pytest.approx(0.45)
    assert c["pending"] == 1 and c["nodes"] == 2


def test_hpa_status(emu, cluster):
    emu.add_hpa("shop", "api", current=2, desired=4, lo=2, hi=10)
    assert hpa(cluster, "shop", "api") == {"current": 2, "desired": 4, "min": 2, "max": 10}


def test_readiness_is_watched_not_polled(emu, cluster):
    emu.add_deployment("shop", "web", 1, {"app": "web"})  # ready at once
    # the watch's first event says so (no poll interval waited: the request list below proves it)
    assert wait_ready(cluster, "shop", "web", timeout=5) < 2  # not the 5 s timeout (nice 19 in CI)
    emu.ready_delay = 0.4
    emu.handle("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale", b'{"spec": {"replicas": 3}}')
    emu.requests.clear()
    took = wait_ready(cluster, "shop", "web", timeout=5)
    assert 0.2 < took < 2  # the two new replicas get ready 0.4 s after the scale-up
    watches = [p for m, p in emu.requests if m == "GET"]
    assert watches == ["/apis/apps/v1/namespaces/shop/deployments"]  # one watch, no polling


def test_a_deployment_that_never_gets_ready_times_out_clearly(emu, cluster):
    emu.ready_delay = 60
    emu.add_deployment("shop", "slow", 0, {"app": "slow"})
    emu.handle("PATCH", "/apis/apps/v1/namespaces/shop/deployments/slow/scale", b'{"spec": {"replicas": 2}}')
    with pytest.raises(PlatformError, match="deployment shop/slow on east not ready within 1 s"):
        wait_ready(cluster, "shop", "slow", timeout=1)


def test_cluster_events_go_on_the_timeline(emu, cluster):
    from chaos.clock import SystemClock
    from chaos.kube.events import EventRecorder
    from chaos.timeline import Timeline

    emu.add_deployment("shop", "web", 2, {"app": "web"})
    tl = Timeline(SystemClock())
    recorder = EventRecorder(cluster, ("shop",), tl).start()
    try:
        threading.Event().wait(0.3)
        victim = next(name for ns, name in emu.pods if name.startswith("web-"))
        emu.handle("DELETE", f"/api/v1/namespaces/shop/pods/{victim}", b"")
        deadline = threading.Event()
        for _ in range(100):  # the kill's event, then the controller's, 50 ms later from its own thread
            reasons = {e.data.get("reason") for e in tl.events}
            if {"Killing", "SuccessfulCreate"} <= reasons:
                break
            deadline.wait(0.05)
    finally:
        recorder.stop()
    notes = [e.data for e in tl.events if e.name == "k8s"]
    assert {
        "reason": "Killing",
        "object": f"pod shop/{victim}",
        "message": f"Stopping container {victim}",
        "cluster": "east",
    } in notes
    assert any(n["reason"] == "SuccessfulCreate" for n in notes)  # the controller's replacement


def test_an_expired_event_watch_resumes_without_replaying_or_looping(emu, cluster):
    """A quiet namespace's last event leaves the server's watch window within minutes on a real
    cluster: the watch from it is answered 410 Gone. The recorder starts again from a fresh
    list (saying so once), keeps recording, and notes nothing from before it started."""
    from chaos.clock import SystemClock
    from chaos.kube.events import EventRecorder
    from chaos.timeline import Timeline

    emu.add_deployment("shop", "web", 2, {"app": "web"})  # two events from before the run
    tl = Timeline(SystemClock())
    recorder = EventRecorder(cluster, ("shop",), tl).start()
    try:
        threading.Event().wait(0.3)
        emu.handle(
            "DELETE",
            f"/api/v1/namespaces/shop/pods/{next(n for _, n in emu.pods if n.startswith('web-'))}",
            b"",
        )
        wait_until(lambda: recorder.recorded >= 2, timeout=5, what="the kill and its replacement")
        emu.compact()  # the version the watch resumes from is gone
        threading.Event().wait(2.5)  # two 1 s watch rounds: the old code retried the dead version
        emu.handle(
            "DELETE",
            f"/api/v1/namespaces/shop/pods/{next(n for _, n in emu.pods if n.startswith('web-'))}",
            b"",
        )
        wait_until(lambda: recorder.recorded >= 4, timeout=5, what="the second kill and its replacement")
    finally:
        recorder.stop()
    names = [e.name for e in tl.events]
    assert names.count("k8s events resumed") == 1 and "k8s events unavailable" not in names
    notes = [e.data["reason"] for e in tl.events if e.name == "k8s"]
    assert sorted(notes) == ["Killing", "Killing", "SuccessfulCreate", "SuccessfulCreate"]


def test_a_statefulset_is_ready_when_its_last_replica_is(emu, cluster):
    emu.ready_delay = 0.15
    t0 = time.monotonic()
    emu.add_statefulset("shop", "db", replicas=3, ready=0)
    took = wait_ready(cluster, "shop", "db", kind="statefulset", timeout=5)
    since_added = time.monotonic() - t0
    # not before the last of three replicas, one after another (timed from the add: on a busy
    # machine the watch may start late, so `took` alone can be shorter than 3 x 0.15 s)
    assert since_added >= 3 * 0.15 - 0.01
    assert took <= since_added and took < 2
    with pytest.raises(ConfigError, match="use deployment or statefulset"):
        wait_ready(cluster, "shop", "db", kind="daemonset")


def test_readiness_is_awaited_across_watches_the_server_ends_early(emu, cluster):
    """An API server restarting (as in a master kill) or a proxy's idle limit ends a watch long
    before its timeout: the wait resumes from the last version seen, with bookmarks keeping it
    fresh, instead of reporting "not ready" at the first hang-up."""
    emu.add_deployment("shop", "web", 1, {"app": "web"})
    emu.watch_drop_s = 0.25
    # ready 2 s after the scale-up: time for a client slow to start on a busy machine (its
    # first watch began so late once that no drop came before the replicas were ready)
    emu.ready_delay = 2.0
    emu.handle("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale", b'{"spec": {"replicas": 3}}')
    took = wait_ready(cluster, "shop", "web", timeout=10)
    assert 1.0 < took < 6
    assert len(emu.watches) >= 2
    first, *again = emu.watches
    assert "resourceVersion" not in first  # from the current state
    assert all(q.get("resourceVersion") and q.get("allowWatchBookmarks") == "true" for q in again)


def test_a_watch_whose_version_was_compacted_starts_again_from_the_current_state(emu, cluster):
    emu.add_deployment("shop", "web", 1, {"app": "web"})
    emu.watch_drop_s = 0.25
    emu.bookmarks = False  # they would keep the version fresh past the compaction
    emu.ready_delay = 2.0

    def compact_once_watched() -> None:
        # while the wait is on, and after the controller's last change before the replicas get
        # ready (one after the compaction would give the client a version newer than it): the
        # next resume is 410 Gone (watches end every 0.25 s until the replicas are ready)
        wait_until(
            lambda: emu.watches and emu.deployments[("shop", "web")]["status"].get("replicas") == 2,
            timeout=5,
            interval=0.01,
            what="a first watch, and the controller's scale-up",
        )
        emu.compact()

    emu.handle("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale", b'{"spec": {"replicas": 2}}')
    compactor = threading.Thread(target=compact_once_watched, daemon=True)
    compactor.start()
    took = wait_ready(cluster, "shop", "web", timeout=10)
    compactor.join()
    assert 1.0 < took < 6
    assert emu.gone >= 1
    after_gone = emu.watches[[bool(q.get("resourceVersion")) for q in emu.watches].index(True) :]
    assert any("resourceVersion" not in q for q in after_gone)  # relisted after the 410


def test_a_refused_watch_names_the_rule_to_grant_with_its_api_group(emu, cluster):
    from chaos.kube.connect import Forbidden

    emu.add_statefulset("shop", "db", 3, 3)
    emu.denied.add(("watch", "statefulsets", "shop"))
    with pytest.raises(Forbidden) as err:
        wait_ready(cluster, "shop", "db", kind="statefulset", timeout=5)
    text = str(err.value)
    assert "watch statefulsets in namespace shop on cluster east" in text
    assert 'apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["watch"]' in text
