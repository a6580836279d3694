"""The Redis probe: a RESP PING, no credentials.

`+PONG` is UP. Any RESP error line also means a Redis answered, so it is UP with
the error in the detail: NOAUTH / WRONGPASS / "operation not permitted" read
"up (authentication required)", anything else (LOADING, DENIED in protected
mode, ...) "up (Redis answered: ...)". An answer that is not RESP, or a
connection closed without an answer, is DOWN PROTOCOL_MISMATCH.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from agent.core.model import ProbeResult, ProbeState, ProbeTarget, Reason
from agent.edges.probes._errors import Finding, one_line
from agent.edges.probes._run import Clock, guarded, mark_connected

if TYPE_CHECKING:
    from agent.edges.probes.http import HttpClient

__all__ = ["PING", "probe"]

PING = b"*1\r\n$4\r\nPING\r\n"
_LINE_LIMIT = 512
_AUTH_MARKERS = ("NOAUTH", "WRONGPASS", "AUTH", "OPERATION NOT PERMITTED")


def _finding(line: bytes) -> Finding:
    text = line.split(b"\r\n", 1)[0].decode("utf-8", errors="replace")
    if text.startswith("+"):
        answer = text[1:]
        return ProbeState.UP, None, "PONG" if answer == "PONG" else one_line(f"up ({answer})")
    error = text[1:]
    if any(marker in error.upper() for marker in _AUTH_MARKERS):
        return ProbeState.UP, None, "up (authentication required)"
    return ProbeState.UP, None, one_line(f"up (Redis answered: {error})")


async def _attempt(target: ProbeTarget) -> Finding:
    reader, writer = await asyncio.open_connection(target.host, target.service.port)
    mark_connected()
    try:
        writer.write(PING)
        line = await reader.read(_LINE_LIMIT)
        if not line:
            return (
                ProbeState.DOWN,
                Reason.PROTOCOL_MISMATCH,
                "the connection closed without an answer (not Redis)",
            )
        if line[:1] not in (b"+", b"-"):
            return (
                ProbeState.DOWN,
                Reason.PROTOCOL_MISMATCH,
                "something else answers on this port (not Redis)",
            )
        while b"\r\n" not in line and len(line) < _LINE_LIMIT:
            more = await reader.read(_LINE_LIMIT - len(line))
            if not more:
                break
            line += more
        return _finding(line)
    finally:
        writer.transport.abort()


async def probe(
    target: ProbeTarget, client: HttpClient | None = None, *, clock: Clock = time.time
) -> ProbeResult:
    """Probe one Redis (the client is not used)."""
    return await guarded(target, lambda: _attempt(target), clock=clock)
