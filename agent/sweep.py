"""One sweep, end to end: read Tailscale, plan, probe, judge.

This is the composition of one pass of the flow in DESIGN.md; the `check`
command runs it once and the monitor runs it on a schedule. The edges it calls
(the tailscale reader, the probes) are passed in where a caller wants its own.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx

from agent.core.health import judge
from agent.core.model import Snapshot, TailnetView, Topology
from agent.core.plan import plan_sweep
from agent.core.tailnet import identify_self
from agent.probes import run_probes
from agent.tailscale import read_status

__all__ = ["StatusReader", "sweep"]

StatusReader = Callable[[], Awaitable[TailnetView]]

TAILSCALE_TIMEOUT_S = 5.0


async def sweep(
    topology: Topology,
    *,
    tailscale_cli: str | None,
    node_override: str | None = None,
    client: httpx.AsyncClient | None = None,
    read_tailnet: StatusReader | None = None,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Run one sweep and judge it. Never raises for an operational failure."""
    if read_tailnet is None:
        tailnet = await read_status(tailscale_cli, TAILSCALE_TIMEOUT_S)
    else:
        tailnet = await read_tailnet()
    self_id = node_override or identify_self(topology, tailnet)
    plan = plan_sweep(topology, self_id, tailnet, now=clock())
    probed = await run_probes(plan.targets, client, clock=clock)
    results = dict(plan.skipped)
    for target, result in zip(plan.targets, probed, strict=True):
        results[(target.node_id, target.service.name)] = result
    return judge(topology, tailnet, self_id, results, plan.addresses, now=clock())
