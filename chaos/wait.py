"""Every wait in the framework goes through here (tenacity), with the clock injected."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity

from chaos.clock import Clock, SystemClock
from chaos.errors import ChaosError

T = TypeVar("T")


class WaitTimeout(ChaosError):
    """A condition did not become true in time; says what was awaited and the last result."""


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    clock: Clock | None = None,
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Call ``check`` until it returns something truthy (returned) or ``timeout`` passes.

    Exceptions raised by ``check`` count as "not yet"; the last one is chained on timeout.
    A ``ChaosError`` marked ``lasting`` (a permission refused) is raised at once: waiting
    cannot change it.
    ``abort`` may return a reason to stop waiting at once (e.g. the awaited process died).
    """
    clk = clock or SystemClock()
    last: list[object] = [None]

    def attempt() -> T:
        result = check()
        last[0] = result
        if not result:
            raise _NotYet(repr(result))
        return result

    start = clk.now()

    # tenacity's own stop_after_delay reads time.monotonic(); ours reads the injected clock
    # so a FakeClock drives timeouts in tests.
    aborted: list[str] = []

    def out_of_time(_state: tenacity.RetryCallState) -> bool:
        reason = abort() if abort else None
        if reason:
            aborted.append(reason)
            return True
        return clk.now() - start >= timeout

    retrying = tenacity.Retrying(
        stop=out_of_time,
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_exception(lambda e: not (isinstance(e, ChaosError) and e.lasting)),
        sleep=clk.sleep,
        reraise=False,
    )
    try:
        return retrying(attempt)
    except tenacity.RetryError as exc:
        cause = exc.last_attempt.exception()
        if aborted:
            raise WaitAborted(f"gave up waiting for {what}: {aborted[0]}") from cause
        detail = f"last: {cause}" if cause is not None else f"last result: {last[0]!r}"
        raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what} ({detail})") from cause


class WaitAborted(WaitTimeout):
    """Waiting stopped early because the awaited thing can no longer happen."""


class _NotYet(Exception):
    pass
