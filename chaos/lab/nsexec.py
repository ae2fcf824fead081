"""Run a little Python inside a lab node's network namespace, in-process.

setns(2) for a network namespace changes only the calling thread, so the work runs on a
short-lived thread that enters the namespace, does it, and ends; no other thread moves.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from chaos.errors import PlatformError
from chaos.lab.net import NETNS_DIR

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def run_in(ns: str, fn: Callable[[], T]) -> T:
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY)
        except FileNotFoundError:
            error.append(PlatformError(f"no network namespace {ns}"))
            return
        try:
            # os.setns arrives in Python 3.12; libc's is the same call
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                error.append(PlatformError(f"setns into {ns} failed: {os.strerror(err)}"))
                return
        finally:
            os.close(fd)
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001  handed back to the caller's thread below
            error.append(exc)

    t = threading.Thread(target=body, name=f"netns:{ns}", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def can_connect(ns: str, address: str, port: int, timeout: float = 0.3) -> bool:
    """Whether a TCP connection from node namespace ``ns`` to ``address:port`` succeeds."""

    def attempt() -> bool:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return True
        except OSError:
            return False

    return run_in(ns, attempt)
