"""Service probes (edge): one async probe per check kind, run concurrently.

`run_probes(targets)` sends every probe of a sweep at once and returns one
ProbeResult per target, in the targets' order. Each probe is bounded by its
target's timeout as a whole (connect + request + read) and never raises: a
failure is a result with a reason (see `_errors` for the mapping and `_run` for
latency). A service found up that offers rich details (core.details) is then asked for
them (`details`), within another timeout; its result's latency stays the probe's.
HTTP probes share one client: pass an httpx client (`make_http_client()`), or none and
run_probes gives them a `http.SharedClient` for the sweep, which makes the httpx client
only if a target needs it (a sweep of plain targets never imports httpx) and closes it,
as every sweep of `check` and the monitor does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from agent.core.details import detail_source
from agent.core.model import CheckKind, ProbeResult, ProbeState, ProbeTarget, Reason
from agent.edges.probes import http, postgres, redis, tcp, websocket
from agent.edges.probes._run import Clock
from agent.edges.probes.details import fetch_details
from agent.edges.probes.http import HttpClient, SharedClient, make_http_client

if TYPE_CHECKING:
    import httpx

__all__ = ["PROBES", "ProbeFn", "make_http_client", "run_probes"]


class ProbeFn(Protocol):
    def __call__(
        self, target: ProbeTarget, client: HttpClient | None = None, *, clock: Clock = ...
    ) -> Awaitable[ProbeResult]: ...


PROBES: Mapping[CheckKind, ProbeFn] = {
    CheckKind.HTTP: http.probe,
    CheckKind.TCP: tcp.probe,
    CheckKind.REDIS: redis.probe,
    CheckKind.POSTGRES: postgres.probe,
    CheckKind.WEBSOCKET: websocket.probe,
}


async def _no_probe(target: ProbeTarget, clock: Clock) -> ProbeResult:
    detail = f"no probe for check kind {target.service.check!r}"
    return ProbeResult(ProbeState.UNKNOWN, Reason.ERROR, detail, None, clock())


async def _with_details(
    target: ProbeTarget, job: Awaitable[ProbeResult], client: HttpClient | None
) -> ProbeResult:
    result = await job
    if result.state is not ProbeState.UP:
        return result
    details = await fetch_details(target, client)
    return dataclasses.replace(result, details=details) if details else result


async def _reporting(
    index: int, job: Awaitable[ProbeResult], on_result: Callable[[int, ProbeResult], None]
) -> ProbeResult:
    result = await job
    on_result(index, result)
    return result


async def run_probes(
    targets: Sequence[ProbeTarget],
    client: httpx.AsyncClient | None = None,
    *,
    clock: Clock = time.time,
    on_result: Callable[[int, ProbeResult], None] | None = None,
) -> list[ProbeResult]:
    """Probe all targets concurrently; results in the same order. Never raises
    (except CancelledError). A supplied client is left open. `on_result(index,
    result)` is called as each result becomes known (progress, streaming output)."""
    if not targets:
        return []
    own: SharedClient | None = None
    shared: HttpClient | None = client
    if client is None and any(t.service.check is CheckKind.HTTP for t in targets):
        shared = own = SharedClient()
    try:
        jobs: list[Awaitable[ProbeResult]] = []
        for target in targets:
            probe = PROBES.get(target.service.check)
            if probe is None:
                jobs.append(_no_probe(target, clock))
            elif detail_source(target.service) is not None:
                jobs.append(_with_details(target, probe(target, shared, clock=clock), shared))
            else:
                jobs.append(probe(target, shared, clock=clock))
        if on_result is not None:
            jobs = [_reporting(i, job, on_result) for i, job in enumerate(jobs)]
        return list(await asyncio.gather(*jobs))
    finally:
        if own is not None:
            await own.aclose()
