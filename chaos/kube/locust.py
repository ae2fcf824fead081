"""Distributed load on a cluster: a Locust master pod and worker pods, the locustfile and load
shape in a ConfigMap, stats read back through the API server's pod proxy (the master's
``/stats/requests``) into the timeline while the load runs.

Bounded and self-stopping three ways: the master runs ``--run-time`` and quits ``--autoquit``
seconds later (the workers with it); every pod has ``activeDeadlineSeconds``; and every object
is journaled before it is created, labelled with its expiry, deleted when the load ends, and
reaped if our process died. Users, rate and duration have the local engine's limits."""

from __future__ import annotations

import contextlib
import json
import uuid
from importlib.metadata import version
from typing import Any

from chaos.context import RunContext
from chaos.errors import RollbackError
from chaos.kube.connect import Cluster
from chaos.kube.masters import managed_metadata
from chaos.kube.netpol import ROLE
from chaos.kube.objects import Owned, create_journaled, get
from chaos.kube.targets import BlastRadius
from chaos.load import STATS_INTERVAL, FinalStats, LoadError, LoadPoint, LoadRun, LoadSpec
from chaos.wait import WaitAborted, WaitTimeout, wait_until

WEB_PORT = 8089
MASTER_PORT = 5557
MOUNT = "/locust"
START_WITHIN_S = 120.0  # image pull and scheduling on a real cluster
DEADLINE_MARGIN_S = 120


def default_image() -> str:
    """The official image of the Locust version this framework runs locally."""
    return f"locustio/locust:{version('locust')}"


class KubeLoad(LoadRun):
    """A load whose Locust runs as pods on ``cluster`` (``with KubeLoad(...) as run:``); its
    measures (availability, latency, failed, rps) are every run's (``LoadRun``)."""

    def __init__(
        self,
        ctx: RunContext,
        spec: LoadSpec,
        cluster: Cluster,
        radius: BlastRadius,
        name: str = "load",
        *,
        image: str = "",
        workers: int = 2,
    ) -> None:
        super().__init__(ctx, spec, name=name)
        self.cluster, self.radius = cluster, radius
        self.namespace = radius.namespaces[0] if radius.namespaces else ""
        self.image = image or default_image()
        self.workers = max(workers, spec.workers)
        self.id = f"chaos-locust-{uuid.uuid4().hex[:6]}"
        self.master = f"{self.id}-master"
        self.owned = Owned(ctx)
        self.state = ""
        self._over = False

    # -- objects ----------------------------------------------------------------------------------
    def _pod(self, name: str, role: str, args: list[str]) -> dict[str, Any]:
        ttl = self.ctx.fault_ttl
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": managed_metadata(name, ttl, {ROLE: f"locust-{role}", "chaos.io/load": self.id}),
            "spec": {
                "restartPolicy": "Never",
                "activeDeadlineSeconds": int(self.spec.duration) + DEADLINE_MARGIN_S,
                "volumes": [{"name": "locustfile", "configMap": {"name": self.id}}],
                "containers": [
                    {
                        "name": "locust",
                        "image": self.image,
                        "command": ["locust", "-f", f"{MOUNT}/locustfile.py,{MOUNT}/shape.py", *args],
                        "env": [{"name": k, "value": v} for k, v in sorted(self.spec.load_env().items())],
                        "ports": [{"containerPort": WEB_PORT}, {"containerPort": MASTER_PORT}],
                        "volumeMounts": [{"name": "locustfile", "mountPath": MOUNT}],
                    }
                ],
            },
        }

    def _master_args(self) -> list[str]:
        return [
            "--master",
            "--autostart",
            "--autoquit",
            "5",
            "--expect-workers",
            str(self.workers),
            *self.spec.run_args(),
            "--web-port",
            str(WEB_PORT),
            "--master-bind-port",
            str(MASTER_PORT),
        ]

    def _create(self, kind: str, body: dict[str, Any]) -> None:
        create_journaled(self.owned, self.cluster, kind, self.namespace, body, grace=0)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.spec.validate()
        self.radius.check(self.namespace)
        # a dry run creates nothing on the cluster: no load either
        if self._dry_run(f"would run Locust as {self.workers + 1} pods in {self.namespace}"):
            self._over = True
            return
        files = {
            "locustfile.py": self.spec.locustfile.read_text(),
            "shape.py": self.spec.shape_file().read_text(),
        }
        try:
            cm = managed_metadata(self.id, self.ctx.fault_ttl, {"chaos.io/load": self.id})
            self._create(
                "ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": cm, "data": files}
            )
            self._create("Pod", self._pod(self.master, "master", self._master_args()))
            ip = self._wait(
                lambda: get(self.cluster, "Pod", self.namespace, self.master).status.pod_ip, "an IP"
            )
            worker_args = ["--worker", "--master-host", str(ip), "--master-port", str(MASTER_PORT)]
            for i in range(self.workers):
                self._create("Pod", self._pod(f"{self.id}-w{i}", "worker", worker_args))
            self._started(workers=self.workers, engine=f"pods in {self.namespace} on {self.cluster.role}")
            self._wait(lambda: self._poll() and self.points[-1].users > 0, "its first users")
        except BaseException:
            with contextlib.suppress(RollbackError):
                self.owned.release()
            raise
        self._start_tail()

    def _wait(self, ready: Any, what: str) -> Any:
        try:
            return wait_until(
                ready,
                timeout=START_WITHIN_S,
                interval=0.2,
                what=f"Locust master {self.master} to report {what}",
                abort=self._died_early,
            )
        except (WaitAborted, WaitTimeout) as exc:
            raise LoadError(
                f"{exc}: can {self.cluster.role} pull {self.image} and reach {self.spec.host}? "
                f"(kubectl -n {self.namespace} logs {self.master})"
            ) from exc

    def _died_early(self) -> str | None:
        phase = get(self.cluster, "Pod", self.namespace, self.master).status.phase
        return f"the Locust master pod ended ({phase})" if phase in ("Succeeded", "Failed") else None

    @property
    def running(self) -> bool:
        return not self._over and self.state not in ("stopped", "quitting")

    def wait(self) -> None:
        """Block until the load has run its duration (the master reports it stopped)."""
        if self.ctx.dry_run:
            return
        try:
            wait_until(
                lambda: self.state in ("stopped", "quitting"),
                timeout=self.spec.duration + 30,
                interval=STATS_INTERVAL,
                what="the distributed load to finish its run",
            )
        except WaitTimeout as exc:
            raise LoadError(f"the Locust master did not stop {self.spec.duration:g} s into its run") from exc

    def stop(self, *, quiet: bool = False) -> None:
        """Stop the pods (their figures so far are kept); a master that ended early is what
        the figures show, not an error: the pods are bounded by their own deadlines."""
        if self._over:
            return
        self._over = True
        self._join_tail()
        self._poll()  # the last figures, unless the master has already quit
        self._ended()
        self.owned.release()

    # -- stats ----------------------------------------------------------------------------------------
    def _stats(self) -> dict[str, Any] | None:
        try:
            raw = self.cluster.core.connect_get_namespaced_pod_proxy_with_path(
                f"{self.master}:{WEB_PORT}",
                self.namespace,
                "stats/requests",
                _preload_content=False,
                _request_timeout=2,
            )
            report: dict[str, Any] = json.loads(raw.data)
        except Exception:  # noqa: BLE001  not up yet, or already quit: no stats this round
            return None
        return report

    def _poll(self) -> bool:
        report = self._stats()
        if not report or not report.get("stats"):
            return False
        self.state = str(report.get("state", ""))
        total = report["stats"][-1]
        current = report.get("current_response_time_percentiles") or {}
        point = LoadPoint(
            self.ctx.tl.now(),
            int(report.get("user_count", 0)),
            float(total.get("current_rps") or 0.0),
            float(total.get("current_fail_per_sec") or 0.0),
            current.get("response_time_percentile_0.5"),
            current.get("response_time_percentile_0.95"),
            None,
            int(total["num_requests"]),
            int(total["num_failures"]),
        )
        self.add_point(point, point.p95_ms)
        self.final = FinalStats(
            requests=int(total["num_requests"]),
            failures=int(total["num_failures"]),
            rps=_number(total.get("total_rps")),
            percentiles_ms={
                50: _number(total.get("median_response_time")),
                95: _number(total.get("response_time_percentile_0.95")),
                99: _number(total.get("response_time_percentile_0.99")),
            },
        )
        return True


def _number(value: Any) -> float | None:
    """A figure from Locust's JSON stats; None when it has none yet."""
    return float(value) if isinstance(value, int | float) else None
