"""A free loopback port, for a helper the framework starts on this machine (a Locust master)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nothing listens on now (the kernel's pick; another process may take
    it before the caller binds it, which is why callers bind it at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
