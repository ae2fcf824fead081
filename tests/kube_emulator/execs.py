"""``pods/exec`` as a real API server serves it: a WebSocket upgrade (the channel protocol
``v4.channel.k8s.io``: one byte of channel, then data; 1 stdout, 2 stderr, 3 the final Status),
refused before the upgrade for RBAC (403) or a missing pod (404).

The only program the emulated containers run is ``etcdctl endpoint status -w json`` in an etcd
member: answered from the etcd model when it is given the member's own certificate paths (as
its pod's command names them, with ``leader: 0`` and etcd's "no leader" error while the
member has no leader); for a killed member whose container is being restarted, the kubelet's
own error ("container is not created or running")."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.kube_emulator.answers import status_body

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOL = "v4.channel.k8s.io"
NOT_RUNNING = (
    "Internal error occurred: error executing command in container: container is not created or running"
)


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked frame, as a server sends it."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code(code: int, message: str) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {message}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def member_id(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:15], 16)


def flag(argv: list[str], name: str) -> str:
    prefix = f"--{name}="
    return next((a[len(prefix) :] for a in argv if a.startswith(prefix)), "")


class Execs:
    """Mixed into the emulator: needs ``pods``, ``etcd``, ``_deny`` and ``requests``."""

    pods: dict[tuple[str, str], dict[str, Any]]
    requests: list[tuple[str, str]]

    def exec_request(self, raw_path: str) -> tuple[int, dict[str, Any]] | list[tuple[int, bytes]]:
        """A refusal before the upgrade (status, Status body), or the frames to send after it
        as (channel, data), the last one channel 3's Status."""
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        parts = [unquote(p) for p in url.path.split("/") if p]
        self.requests.append(("GET", url.path))  # an upgrade: RBAC calls it create, nothing is written
        if len(parts) != 7 or parts[:3] != ["api", "v1", "namespaces"] or parts[4::2] != ["pods", "exec"]:
            return 404, status_body(404, "NotFound", f"the emulator does not serve {url.path}")
        ns, name = parts[3], parts[5]
        denied = self._deny("create", "pods/exec", ns)  # type: ignore[attr-defined]
        if denied:
            return denied  # type: ignore[no-any-return]
        pod = self.pods.get((ns, name))
        if pod is None:
            return 404, status_body(404, "NotFound", f'pods "{name}" not found')
        argv = query.get("command", [])
        etcd = self.etcd  # type: ignore[attr-defined]
        if name not in etcd.members:
            return [
                (2, f'exec: "{argv[0] if argv else ""}": executable file not found\n'.encode()),
                (3, json.dumps(exit_code(127, "exit code 127")).encode()),
            ]
        if not etcd.alive(name):
            failure = status_body(500, "InternalError", NOT_RUNNING)
            return [(3, json.dumps(failure).encode())]
        return self._etcdctl(pod, name, argv)

    def _etcdctl(self, pod: dict[str, Any], name: str, argv: list[str]) -> list[tuple[int, bytes]]:
        def fail(text: str) -> list[tuple[int, bytes]]:
            return [(2, f"{text}\n".encode()), (3, json.dumps(exit_code(1, "exit code 1")).encode())]

        if (
            not argv
            or argv[0] != "etcdctl"
            or argv[-4:]
            not in (
                ["endpoint", "status", "-w", "json"],
                ["endpoint", "status", "--write-out", "json"],
            )
        ):
            return fail(f"Error: the emulator's etcdctl only answers `endpoint status -w json`, not {argv}")
        own = pod["spec"]["containers"][0].get("command", [])
        for mine, theirs in (("cacert", "trusted-ca-file"), ("cert", "cert-file"), ("key", "key-file")):
            given = flag(argv, mine)
            if given != flag(own, theirs):
                return fail(f"Error: open {given or '(none)'}: no such file or directory")
        etcd = self.etcd  # type: ignore[attr-defined]
        leader = etcd.current_leader()
        index = etcd.raft_index
        status = [
            {
                "Endpoint": flag(argv, "endpoints"),
                "Status": {
                    "header": {
                        "cluster_id": 1,
                        "member_id": member_id(name),
                        "revision": index,
                        "raft_term": 2,
                    },
                    "version": "3.5.15",
                    "dbSize": 1 << 20,
                    "leader": member_id(leader) if leader else 0,
                    "raftIndex": index,
                    "raftTerm": 2,
                    "raftAppliedIndex": index,
                    "dbSizeInUse": 1 << 19,
                    **({} if leader else {"errors": ["etcdserver: no leader"]}),
                },
            }
        ]
        return [(1, json.dumps(status).encode()), (3, json.dumps(success()).encode())]
