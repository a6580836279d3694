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

A probe that read an answer calls `record_answer(status, body)` (the HTTP probe: the
status and the start of the body it has already read); `guarded` puts those facts, the
body cut and scrubbed (agent.core.redact), into the result: the evidence behind a state
change (agent.core.evidence). No probe sends anything more for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
from collections.abc import Awaitable, Callable

from agent import __version__
from agent.core.model import ProbeResult, ProbeTarget
from agent.core.redact import scrub
from agent.edges.probes._errors import Finding, classify

__all__ = [
    "REQUEST_HEADERS",
    "USER_AGENT",
    "Attempt",
    "Cleanup",
    "Clock",
    "guarded",
    "mark_connected",
    "record_answer",
    "url_host",
]

Attempt = Callable[[], Awaitable[Finding]]
Cleanup = Callable[[], Awaitable[None]]
Clock = Callable[[], float]

USER_AGENT = f"tailnet-agent/{__version__} (probe)"
REQUEST_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"Connection", b"keep-alive"),
    (b"User-Agent", USER_AGENT.encode("ascii")),
)
"""The headers of every HTTP probe, after Host, in httpx's order: the plain path writes them
and the shared httpx client is given them (the decoders httpx always has: gzip, deflate)."""
EXCERPT_MAX = 120  # characters of a body kept as evidence

_connected: contextvars.ContextVar[bool] = contextvars.ContextVar("probe_connected", default=False)
# (HTTP status, body excerpt) of the answer the running probe read, if any
_answer: contextvars.ContextVar[tuple[int | None, str]] = contextvars.ContextVar(
    "probe_answer", default=(None, "")
)


def mark_connected() -> None:
    """The running probe has its connection: the host answered the handshake."""
    _connected.set(True)


def record_answer(status: int | None, body: str = "") -> None:
    """The running probe read an answer: its status and (for a failure) its body's start."""
    _answer.set((status, scrub(body, EXCERPT_MAX)))


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
    answer_token = _answer.set((None, ""))
    status: int | None = None
    excerpt = ""
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
        status, excerpt = _answer.get()
    finally:
        _connected.reset(token)
        _answer.reset(answer_token)
        if cleanup is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout_at(deadline):
                    await cleanup()
    result = ProbeResult(state, reason, detail, latency_ms, clock())
    if status is None and not excerpt:
        return result
    return dataclasses.replace(result, http_status=status, excerpt=excerpt)
