"""The frame every probe runs in: one deadline, latency, never raising.

`guarded` runs a probe's attempt under `asyncio.timeout` for the target's whole
timeout (connect + request + read), turns any exception into a finding through
`_errors.classify`, stamps latency and the wall-clock time, and finally runs an
optional cleanup (closing a socket politely) bounded by the same deadline. Only
`CancelledError` (and other BaseExceptions) pass through.

latency_ms is the time from the start of the probe to its finding, for every
outcome: an UP result carries the service's answer time (for tcp: the connect
time), a failure the time it took to fail (about the timeout for a TIMEOUT).

A probe calls `mark_connected()` once its connection is open: a deadline that
passes after that is NO_ANSWER (the host is reachable, the service hangs), one
that passes before it TIMEOUT (a firewall, or the host unreachable). The mark
lives in a context variable, so it belongs to the probe's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable

from agent import __version__
from agent.core.model import ProbeResult, ProbeTarget
from agent.edges.probes._errors import Finding, classify

__all__ = [
    "USER_AGENT",
    "Attempt",
    "Cleanup",
    "Clock",
    "guarded",
    "mark_connected",
    "url_host",
]

Attempt = Callable[[], Awaitable[Finding]]
Cleanup = Callable[[], Awaitable[None]]
Clock = Callable[[], float]

USER_AGENT = f"tailnet-agent/{__version__} (probe)"

_connected: contextvars.ContextVar[bool] = contextvars.ContextVar("probe_connected", default=False)


def mark_connected() -> None:
    """The running probe has its connection: the host answered the handshake."""
    _connected.set(True)


def url_host(host: str) -> str:
    """A host as it is written in a URL or a Host header: IPv6 in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def guarded(
    target: ProbeTarget,
    attempt: Attempt,
    *,
    clock: Clock,
    cleanup: Cleanup | None = None,
) -> ProbeResult:
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + target.timeout_s
    token = _connected.set(False)
    try:
        try:
            async with asyncio.timeout_at(deadline):
                state, reason, detail = await attempt()
        except Exception as exc:  # TimeoutError of the deadline included
            connected = _connected.get()
            state, reason, detail = classify(
                exc, target.timeout_s, target.host, connected=connected
            )
        latency_ms = (loop.time() - start) * 1000.0
    finally:
        _connected.reset(token)
        if cleanup is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout_at(deadline):
                    await cleanup()
    return ProbeResult(state, reason, detail, latency_ms, clock())
