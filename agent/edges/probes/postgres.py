"""The PostgreSQL probe: protocol level, no credentials, nothing logged as an error.

It sends an SSLRequest (int32 length 8, int32 80877103) and half-closes its side.
A PostgreSQL answers with exactly one byte: 'S' (TLS available) or 'N' (no TLS)
-> UP, and the probe closes without negotiating TLS (a server that said 'N' sees
a clean end of the connection and logs nothing). 'E' (an error packet from a very
old server) -> UP as well. Anything else, or a close without an answer, is DOWN
PROTOCOL_MISMATCH "not PostgreSQL". The half-close makes line-based servers (HTTP,
Redis) answer or hang up at once instead of waiting for a newline that never comes.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING

from agent.core.model import ProbeResult, ProbeState, ProbeTarget, Reason
from agent.edges.probes._errors import Finding
from agent.edges.probes._run import Clock, guarded, mark_connected

if TYPE_CHECKING:
    from agent.edges.probes.http import HttpClient

__all__ = ["SSL_REQUEST", "probe"]

SSL_REQUEST = struct.pack("!II", 8, 80877103)

_ANSWERS: dict[bytes, str] = {
    b"S": "up (accepts TLS)",
    b"N": "up (no TLS)",
}


def _finding(answer: bytes) -> Finding:
    if answer in _ANSWERS:
        return ProbeState.UP, None, _ANSWERS[answer]
    if answer[:1] == b"E":
        return ProbeState.UP, None, "up (an old server refused the SSL request)"
    if not answer:
        detail = "the connection closed without an answer (not PostgreSQL)"
    else:
        detail = "something else answers on this port (not PostgreSQL)"
    return ProbeState.DOWN, Reason.PROTOCOL_MISMATCH, detail


async def _attempt(target: ProbeTarget) -> Finding:
    reader, writer = await asyncio.open_connection(target.host, target.service.port)
    mark_connected()
    try:
        writer.write(SSL_REQUEST)
        if writer.can_write_eof():
            writer.write_eof()
        return _finding(await reader.read(64))
    finally:
        writer.transport.abort()


async def probe(
    target: ProbeTarget, client: HttpClient | None = None, *, clock: Clock = time.time
) -> ProbeResult:
    """Probe one PostgreSQL (the client is not used)."""
    return await guarded(target, lambda: _attempt(target), clock=clock)
