"""One sweep, end to end: read Tailscale, plan, probe, judge; and the loop sweeps run on.

This is the composition of one pass of the flow in DESIGN.md; the `check`
command runs it once and the monitor runs it on a schedule. `sweep` reads Tailscale
(`edges.tailscale.read_status`), finds which node this machine is, plans
(`core.plan`), sends the probes (`edges.probes.run_probes`) and judges the results
(`core.health`) into a Snapshot; the caller chooses the tailscale CLI, the node
(--node), the HTTP client the probes share and the clock.

`run(main, probes=n)` is `asyncio.run(main)` made for sweeps of n probes: on
uvloop's event loop when n is large enough to pay for it and uvloop is installed
(Linux, macOS; about 30 % less CPU per probe, see docs/benchmarks.md), else on
asyncio's own, and with the objects alive at start (modules, classes, the
topology) frozen out of the cyclic collector's way.

With DEBUG logging (-v) a sweep says which node this machine is and how that was
found, and each probe's outcome and time (the tailscale reader logs its own run).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import httpx

from agent.core.health import judge
from agent.core.model import ProbeResult, ProbeTarget, ServiceKey, Snapshot, Topology
from agent.core.plan import plan_sweep
from agent.core.tailnet import identify_self_by
from agent.edges.probes import run_probes
from agent.edges.tailscale import read_status

__all__ = ["UVLOOP_MIN_PROBES", "loop_factory", "run", "sweep"]

T = TypeVar("T")

log = logging.getLogger(__name__)

TAILSCALE_TIMEOUT_S = 5.0

UVLOOP_MIN_PROBES = 48
"""From this many probes a sweep on, sweeps run on uvloop (where it is installed)."""


async def sweep(
    topology: Topology,
    *,
    tailscale_cli: str | None,
    node_override: str | None = None,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Run one sweep and judge it. Never raises for an operational failure."""
    tailnet = await read_status(tailscale_cli, TAILSCALE_TIMEOUT_S)
    self_id: str | None
    if node_override:
        self_id, how = node_override, "--node"
    else:
        self_id, how = identify_self_by(topology, tailnet)
    if self_id is not None:
        log.debug("this machine is node %s (%s)", self_id, how)
    else:
        log.debug("this machine is no node of the topology: %s", how)
    plan = plan_sweep(topology, self_id, tailnet, now=clock())
    probed = await run_probes(plan.targets, client, clock=clock)
    results = dict(plan.skipped)
    for target, result in zip(plan.targets, probed, strict=True):
        results[(target.node_id, target.service.name)] = result
    if log.isEnabledFor(logging.DEBUG):
        _log_probes(plan.targets, probed, plan.skipped)
    return judge(topology, tailnet, self_id, results, plan.addresses, now=clock())


def _log_probes(
    targets: Sequence[ProbeTarget],
    results: Sequence[ProbeResult],
    skipped: dict[ServiceKey, ProbeResult],
) -> None:
    for target, result in zip(targets, results, strict=True):
        took = "" if result.latency_ms is None else f" in {result.latency_ms:.1f} ms"
        log.debug(
            "probe %s/%s %s %s:%d: %s%s — %s",
            target.node_id,
            target.service.name,
            target.service.check.value,
            target.host,
            target.service.port,
            result.state.value,
            took,
            result.detail,
        )
    for (node_id, name), result in skipped.items():
        log.debug("not probed: %s/%s — %s", node_id, name, result.detail)


def loop_factory(probes: int) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop for sweeps of `probes` probes (the topology's services):
    uvloop's from UVLOOP_MIN_PROBES on, where it is installed; asyncio's otherwise.

    uvloop takes about 30 % off the CPU of each probe, but its import costs about 3 ms
    and 2 MiB of RSS: a few dozen probes a sweep do not win that back, a few hundred do.
    """
    if probes >= UVLOOP_MIN_PROBES:
        try:
            import uvloop
        except ImportError:  # Windows, or not installed: the stdlib loop does the same work
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


@functools.cache
def _freeze_startup_objects() -> None:
    gc.freeze()


def run(main: Coroutine[Any, Any, T], *, probes: int) -> T:
    """Run `main` to completion on a new event loop from `loop_factory(probes)`, like
    asyncio.run (same clean-up), and return its result.

    On the first call in a process, everything alive at that point (modules, classes, the
    topology) is moved out of the cyclic garbage collector's sight (gc.freeze): a sweep
    makes many short-lived objects, and without this every full collection walks all of
    start-up's objects again. Only once: a later freeze could also pin the garbage of the
    runs before it.
    """
    _freeze_startup_objects()
    with asyncio.Runner(loop_factory=loop_factory(probes)) as runner:
        return runner.run(main)
