"""Small helpers shared by the probe tests: building targets and running probes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agent.core.model import CheckKind, ProbeResult, ProbeTarget, Service
from agent.edges.probes import PROBES

__all__ = ["FIXED_NOW", "HANG_GUARD_S", "fixed_clock", "probe_once", "target", "timed"]

HANG_GUARD_S = 2.0  # a probe with a 0.3 s timeout must be back well before this
FIXED_NOW = 1_700_000_000.5


def fixed_clock() -> float:
    return FIXED_NOW


def target(
    kind: str | CheckKind,
    address: tuple[str, int],
    *,
    timeout: float = 3.0,
    name: str = "svc",
    **service: Any,
) -> ProbeTarget:
    host, port = address
    return ProbeTarget("node", Service(name, port, CheckKind(kind), **service), host, timeout)


def timed(coro: Callable[[], Awaitable[ProbeResult]]) -> tuple[ProbeResult, float]:
    """Run one probe coroutine in a fresh loop; return its result and wall time."""
    start = time.monotonic()
    result = asyncio.run(_call(coro))
    return result, time.monotonic() - start


async def _call(coro: Callable[[], Awaitable[ProbeResult]]) -> ProbeResult:
    return await coro()


def probe_once(t: ProbeTarget) -> ProbeResult:
    """Run the probe of the target's kind once (with a client made for it when HTTP)."""
    result, _ = timed(lambda: PROBES[t.service.check](t, None, clock=fixed_clock))
    return result
