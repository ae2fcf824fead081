"""What the API server answers besides objects: Status bodies, and which verbs write."""

from __future__ import annotations

from typing import Any

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
