"""The TCP probe: UP when a connection to host:port opens; closed at once, nothing sent.

Its latency is the connect time (one round trip), the best link-latency figure a
service check gives.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from agent.core.model import ProbeResult, ProbeState, ProbeTarget
from agent.edges.probes._errors import Finding
from agent.edges.probes._run import Clock, guarded

if TYPE_CHECKING:
    from agent.edges.probes.http import HttpClient

__all__ = ["probe"]


async def _attempt(target: ProbeTarget) -> Finding:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, target.host, target.service.port)
    transport.close()
    return ProbeState.UP, None, "connection accepted"


async def probe(
    target: ProbeTarget, client: HttpClient | None = None, *, clock: Clock = time.time
) -> ProbeResult:
    """Probe one TCP port (the client is not used)."""
    return await guarded(target, lambda: _attempt(target), clock=clock)
