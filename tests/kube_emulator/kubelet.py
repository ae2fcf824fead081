"""A kubelet for one image: a pod whose command is ``locust`` runs as a real local Locust
process on an address of its own, and the pod proxy forwards to it."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

from tests.kube_emulator.answers import status_body


class Kubelet:
    def _run_locust(self, ns: str, pod: dict[str, Any]) -> None:
        """Run the pod's Locust here: volumes from its ConfigMaps, the master at 127.0.0.1."""
        container = pod["spec"]["containers"][0]
        args = list(container["command"][1:])
        for vol in pod["spec"].get("volumes", []):
            cm = self.configmaps.get((ns, vol.get("configMap", {}).get("name", "")))
            mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == vol["name"])
            where = self.run_dir / pod["metadata"]["name"] / vol["name"]
            where.mkdir(parents=True, exist_ok=True)
            for fname, text in (cm or {}).get("data", {}).items():
                (where / fname).write_text(text)
            args = [a.replace(mount.rstrip("/") + "/", f"{where}/") for a in args]
        # each pod its own loopback address, as each pod has its own IP: two masters never clash
        n = next(self._loopback)
        ip = f"127.1.{n // 250}.{n % 250 + 1}"
        if "--master" in args:
            args += ["--web-host", ip, "--master-bind-host", ip]
        env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}}
        log = open(self.run_dir / f"{pod['metadata']['name']}.log", "wb")
        self.procs[(ns, pod["metadata"]["name"])] = subprocess.Popen(
            [sys.executable, "-m", "locust", *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        pod["status"] = {"phase": "Running", "podIP": ip}

    def _proxy(self, ns: str, target: str, path: str) -> tuple[int, dict[str, Any]]:
        name, _, port = target.partition(":")
        if (ns, name) not in self.procs or (ns, name) not in self.pods:
            return 404, status_body(404, "NotFound", f'pods "{name}" not found')
        ip = self.pods[(ns, name)]["status"]["podIP"]
        try:
            with urlopen(f"http://{ip}:{port}/{path}", timeout=2) as resp:
                return resp.status, {"_text": resp.read().decode()}
        except (URLError, OSError) as exc:
            return 503, status_body(503, "ServiceUnavailable", f"error trying to reach service: {exc}")

    def _pod_phases(self) -> None:
        for key, proc in self.procs.items():
            code = proc.poll()
            if code is not None and key in self.pods:
                self.pods[key]["status"]["phase"] = "Succeeded" if code == 0 else "Failed"

    def stop_processes(self) -> None:
        for proc in self.procs.values():
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s, as a kubelet stops a container (a process we started)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
