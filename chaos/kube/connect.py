"""Connecting to clusters: one ``ApiClient`` per kubeconfig context (never the client's global
default), explicit timeouts, and API errors turned into messages that say what was refused."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chaos.errors import ConfigError, EnvironmentNotReady, PlatformError

T = TypeVar("T")
IN_CLUSTER = "in-cluster"
TIMEOUT_S = 10.0
THROTTLE_TRIES = 4  # a request API priority and fairness throttled (429 + Retry-After): tries in all
THROTTLE_WAIT_S = 5.0  # the longest Retry-After honoured between them
REWATCH_PAUSE_S = 0.2  # between a watch that broke (connection lost, 5xx) and the next


class Forbidden(PlatformError):
    """RBAC refused a request; the message names the verb, resource and namespace."""

    lasting = True  # no wait grants a permission


class NotFound(PlatformError):
    """The object is not there (any more)."""


class Refused(PlatformError):
    """The API server declined for now (429), e.g. an eviction a PodDisruptionBudget forbids."""


def kubeconfig_path(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    return Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()


@dataclass
class Cluster:
    """One cluster, by role (e.g. ``east``) and kubeconfig context, with its own client."""

    role: str
    context: str
    kubeconfig: Path | None
    api: Any = field(repr=False)  # kubernetes.client.ApiClient (untyped)
    timeout: float = TIMEOUT_S
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api)

    def call(
        self, verb: str, resource: str, namespace: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Make one API call with this cluster's timeout; errors say what was asked of whom."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        where = self._where(verb, resource, namespace)
        try:
            return self._throttled(resource, lambda: fn(*args, _request_timeout=self.timeout, **kwargs))
        except ApiException as exc:
            if exc.status == 403:
                raise Forbidden(f"forbidden: {where}: {forbidden_advice(verb, resource, exc)}") from exc
            if exc.status == 404:
                raise NotFound(f"not found: {where}") from exc
            if exc.status == 429:
                raise Refused(f"refused: {where}: {api_message(exc)}") from exc
            raise PlatformError(f"{where}: HTTP {exc.status} {exc.reason}: {api_message(exc)}") from exc
        except HTTPError as exc:
            host = self.api.configuration.host
            raise PlatformError(f"cannot reach the API server of {self.role} at {host}: {exc}") from exc

    def _where(self, verb: str, resource: str, namespace: str) -> str:
        """What was asked of whom, as every API error says it."""
        return f"{verb} {resource} in namespace {namespace} on cluster {self.role} (context {self.context})"

    def watch(
        self, resource: str, namespace: str, fn: Callable[..., Any], *args: Any, until: float, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """The changes ``fn`` (a ``list_*`` method) reports until ``until`` (monotonic): ADDED
        for what is there, then every change, across as many watch requests as it takes. A
        watch the server ends early (its own timeout, a restarting API server, a proxy's idle
        limit) resumes from the last version seen; one whose version has been compacted away
        (410 Gone) starts again from the current state; bookmarks keep the version fresh and are
        not passed on. A refusal (403) is ``Forbidden``: waiting cannot grant it."""
        from kubernetes import watch as untyped_watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        watch: Any = untyped_watch  # the watch helper is untyped
        where = self._where("watch", resource, namespace)
        since = ""
        while (left := until - self.monotonic()) > 0:
            try:
                stream = watch.Watch().stream(
                    fn,
                    *args,
                    resource_version=since or None,
                    allow_watch_bookmarks=True,
                    timeout_seconds=max(1, math.ceil(left)),
                    _request_timeout=left + self.timeout,
                    **kwargs,
                )
                for event in stream:
                    since = _version(event["object"]) or since
                    if event["type"] != "BOOKMARK":
                        yield event
            except ApiException as exc:
                if exc.status == 403:
                    raise Forbidden(
                        f"forbidden: {where}: {forbidden_advice('watch', resource, exc)}"
                    ) from exc
                if exc.status == 410:
                    since = ""  # too old to resume: from the current state again
                    continue
                if exc.status < 500:
                    raise PlatformError(
                        f"{where}: HTTP {exc.status} {exc.reason}: {api_message(exc)}"
                    ) from exc
                self.sleep(REWATCH_PAUSE_S)
            except HTTPError:
                self.sleep(REWATCH_PAUSE_S)  # the connection broke: watch again from ``since``

    def _throttled(self, resource: str, attempt: Callable[[], T]) -> T:
        """API priority and fairness answers an overloaded server's requests 429 with
        Retry-After, without executing them: safe to send again, even a create, after the
        wait it asks for (at most THROTTLE_WAIT_S, THROTTLE_TRIES times). An eviction's 429 is
        a PodDisruptionBudget's refusal and is never retried: a refused eviction stays refused."""
        import tenacity
        from kubernetes.client.exceptions import ApiException

        def throttled(exc: BaseException) -> bool:
            return (
                isinstance(exc, ApiException)
                and exc.status == 429
                and resource != "pods/eviction"
                and _retry_after(exc) is not None
            )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return min(THROTTLE_WAIT_S, _retry_after(exc) or 1.0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(throttled),
            wait=wait,
            stop=tenacity.stop_after_attempt(THROTTLE_TRIES),
            reraise=True,
        )
        return retrying(attempt)


def _version(obj: Any) -> str:
    """An event object's resourceVersion: a typed object's, or a bookmark's (left a dict)."""
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return str(getattr(getattr(obj, "metadata", None), "resource_version", None) or "")


def _retry_after(exc: BaseException | None) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# the API group of each resource the framework touches: an RBAC rule names it, and a rule for
# the wrong group grants nothing
API_GROUPS: dict[str, str] = {
    "pods": "",
    "pods/eviction": "",
    "pods/exec": "",
    "pods/proxy": "",
    "configmaps": "",
    "events": "",
    "nodes": "",
    "persistentvolumeclaims": "",
    "deployments": "apps",
    "deployments/scale": "apps",
    "statefulsets": "apps",
    "horizontalpodautoscalers": "autoscaling",
    "networkpolicies": "networking.k8s.io",
    "priorityclasses": "scheduling.k8s.io",
    "networkchaos": "chaos-mesh.org",
    "iochaos": "chaos-mesh.org",
}


def forbidden_advice(verb: str, resource: str, exc: Any) -> str:
    """What to grant, as the RBAC rule a cluster admin writes: the API group from the
    server's own message where it says one, else from the table above."""
    import re

    said = re.search(r'in API group "([^"]*)"', api_message(exc))
    group = said.group(1) if said else API_GROUPS.get(resource, "")
    return (
        f"the credentials may not {verb} {resource}; grant it with a rule "
        f'{{apiGroups: ["{group}"], resources: ["{resource}"], verbs: ["{verb}"]}} '
        "(deploy/rbac.yaml is the least the framework needs) or leave the namespace out"
    )


def api_message(exc: Any) -> str:
    """The message of an API error's Status body, or the start of whatever came instead."""
    import json

    try:
        return str(json.loads(exc.body).get("message", exc.body))
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or exc.reason)[:200]


def connect(
    role: str, context: str, *, kubeconfig: Path | None = None, timeout: float = TIMEOUT_S
) -> Cluster:
    """A client for ``context`` of the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``),
    or for the pod's own service account with context ``in-cluster``."""
    from kubernetes import client
    from kubernetes import config as untyped_config

    config: Any = untyped_config  # the client's config helpers are untyped
    if context == IN_CLUSTER:
        conf = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=conf)
        except config.ConfigException as exc:
            raise EnvironmentNotReady(
                f"context in-cluster: not running in a pod with a service account ({exc})"
            ) from exc
        return Cluster(role, context, None, client.ApiClient(conf), timeout)
    path = kubeconfig_path(kubeconfig)
    if not path.is_file():
        raise EnvironmentNotReady(f"no kubeconfig at {path}: set KUBECONFIG or pass the file explicitly")
    try:
        contexts, _current = config.list_kube_config_contexts(config_file=str(path))
    except config.ConfigException as exc:
        raise ConfigError(f"{path} is not a usable kubeconfig: {exc}") from exc
    names = [c["name"] for c in contexts]
    if context not in names:
        raise ConfigError(
            f"unknown context {context!r} (role {role}) in {path}; contexts are: {', '.join(names)}"
        )
    api = config.new_client_from_config(config_file=str(path), context=context, persist_config=False)
    api.configuration.retries = 2
    return Cluster(role, context, path, api, timeout)


def locator(cluster: Cluster) -> dict[str, Any]:
    """What a journal entry records to reach ``cluster`` again from another process."""
    return {
        "cluster": cluster.role,
        "context": cluster.context,
        "kubeconfig": str(cluster.kubeconfig) if cluster.kubeconfig else None,
    }


def reconnect(entry: dict[str, Any]) -> Cluster:
    """The cluster a journal entry's ``locator`` names (for undo after a crash)."""
    kubeconfig = Path(entry["kubeconfig"]) if entry.get("kubeconfig") else None
    return connect(entry["cluster"], entry["context"], kubeconfig=kubeconfig)
