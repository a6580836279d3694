"""One sweep, end to end: read Tailscale, plan, probe, judge.

This is the composition of one pass of the flow in DESIGN.md; the `check`
command runs it once and the monitor runs it on a schedule. `sweep` reads Tailscale
(`edges.tailscale.read_status`), finds which node this machine is, plans
(`core.plan`), sends the probes (`edges.probes.run_probes`) and judges the results
(`core.health`) into a Snapshot, with the diagnoses beside it: topology drift
(`core.drift`) and, on this machine's node, the exposure audit (`core.exposure`, over
`edges.listeners`); the caller chooses the tailscale CLI, the node
(--node) and the clock, or reads Tailscale its own way (`read_tailnet`: the demo's
simulated tailnet, served in-process because a frozen build has no interpreter to run
a stand-in `tailscale`). Alongside the probes, each online peer's path is measured with
`tailscale ping` (`edges.path_ping`): by a `PathPinger` the caller keeps (the monitor: once
a minute each), else by a fresh one (`check`: every peer; none for a tailnet read another way).
On a first run (the bundled example, this machine none of its nodes: core.first_run) the
sweep reads Tailscale and sends nothing to the example's nodes: no probe, ping or view.

With DEBUG logging (-v) a sweep says which node this machine is and how that was
found, and each probe's outcome and time (the tailscale reader logs its own run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from agent.core.drift import detect_drift
from agent.core.exposure import ExposureAudit, ListenerScan, audit_exposure, exposure_findings
from agent.core.first_run import is_first_run
from agent.core.health import judge
from agent.core.model import (
    FindingKind,
    FleetView,
    ProbeResult,
    ProbeTarget,
    ServiceKey,
    Snapshot,
    TailnetView,
    Topology,
)
from agent.core.plan import plan_sweep
from agent.core.tailnet import find_peer, identify_self_by, self_node_line
from agent.edges.listeners import scan_listeners
from agent.edges.path_ping import PathPinger
from agent.edges.probes import run_probes
from agent.edges.tailscale import read_status
from agent.edges.topology_source import is_bundled_topology

if TYPE_CHECKING:  # --share-view's readings come from its partner (agent.fleet): check has none
    from agent.core.share_view import PeerReading
    from agent.edges.child_process import StartedChild

__all__ = [
    "TAILSCALE_TIMEOUT_S",
    "PeerViewsPartner",
    "StatusReader",
    "audit_here",
    "exposure_audit",
    "sweep",
    "which_node",
]

log = logging.getLogger(__name__)

TAILSCALE_TIMEOUT_S = 5.0

StatusReader = Callable[[], Awaitable[TailnetView]]
"""Tailscale's view, read some other way than running `tailscale status --json`."""


class PeerViewsPartner(Protocol):
    """What `--share-view` adds to a sweep (agent.fleet.ShareView)."""

    async def fetch(
        self, topology: Topology, self_id: str | None, tailnet: TailnetView
    ) -> Sequence[PeerReading]: ...

    def place(
        self,
        topology: Topology,
        self_id: str | None,
        results: Mapping[ServiceKey, ProbeResult],
        readings: Sequence[PeerReading],
        now: float,
    ) -> FleetView: ...

    def publish(self, snapshot: Snapshot) -> None: ...


async def sweep(
    topology: Topology,
    *,
    tailscale_cli: str | None,
    node_override: str | None = None,
    read_tailnet: StatusReader | None = None,
    clock: Callable[[], float] = time.time,
    pinger: PathPinger | None = None,
    share: PeerViewsPartner | None = None,
    listeners: Callable[[], ListenerScan] = scan_listeners,
    is_example: Callable[[Topology], bool] = is_bundled_topology,
    started_status: StartedChild | None = None,
) -> Snapshot:
    """Run one sweep and judge it. Never raises for an operational failure. With `share`
    (--share-view) the peers' views are fetched while the probes run, place the failures,
    and the judged sweep is shared. `listeners` reads this machine's listening sockets (the
    monitor passes a ListenerCache); `is_example` tells the bundled example;
    `started_status` is `tailscale.start_status(tailscale_cli)`'s, when the caller started
    the Tailscale read early (check does, before its imports)."""
    if read_tailnet is None:
        tailnet = await read_status(tailscale_cli, TAILSCALE_TIMEOUT_S, started=started_status)
    else:
        tailnet = await read_tailnet()
    self_id = which_node(topology, tailnet, node_override)
    first_run = is_first_run(tailnet, self_id, bundled=is_example(topology))
    plan = plan_sweep(topology, self_id, tailnet, now=clock(), first_run=first_run)
    if first_run:
        share = None  # a peer's view is asked of its address too
    if pinger is None:  # a tailnet read another way (the demo's) has no CLI to ping with
        pinger = PathPinger(tailscale_cli if read_tailnet is None else None, clock=clock)
    readings: Sequence[PeerReading] = ()
    # A TaskGroup: a cancelled sweep (the monitor stopping) returns once all have ended.
    async with asyncio.TaskGroup() as group:
        probing = group.create_task(run_probes(plan.targets, clock=clock))
        peers = {} if first_run else _online_peers(topology, tailnet, self_id)
        pinging = group.create_task(pinger.readings(peers, topology.defaults.timeout_s))
        # A simulated tailnet (the demo's) is not this machine's: its sockets say nothing.
        auditing = group.create_task(
            exposure_audit(topology, tailnet, self_id if read_tailnet is None else None, listeners)
        )
        sharing = (
            None if share is None else group.create_task(share.fetch(topology, self_id, tailnet))
        )
    probed, paths, audit = probing.result(), pinging.result(), auditing.result()
    if sharing is not None:
        readings = sharing.result()
    results = dict(plan.skipped)
    for target, result in zip(plan.targets, probed, strict=True):
        results[(target.node_id, target.service.name)] = result
    if log.isEnabledFor(logging.DEBUG):
        _log_probes(plan.targets, probed, plan.skipped)
    now = clock()
    findings = (*detect_drift(topology, tailnet, self_id), *exposure_findings(audit))
    assessed = {FindingKind.DRIFT} if tailnet.running else set()
    if audit.services:
        assessed.add(FindingKind.EXPOSURE)
    fleet = None if share is None else share.place(topology, self_id, results, readings, now)
    snapshot = judge(
        topology,
        tailnet,
        self_id,
        results,
        plan.addresses,
        now=now,
        paths=paths,
        fleet=fleet,
        findings=findings,
        assessed=frozenset(assessed),
    )
    if share is not None:
        share.publish(snapshot)
    return snapshot


def which_node(topology: Topology, tailnet: TailnetView, node_override: str | None) -> str | None:
    """This machine's node id: `--node`, else found from Tailscale's status (logged)."""
    self_id: str | None
    if node_override:
        self_id, how = node_override, "--node"
    else:
        self_id, how = identify_self_by(topology, tailnet)
    log.debug("%s", self_node_line((self_id, how)))
    return self_id


async def exposure_audit(
    topology: Topology,
    tailnet: TailnetView,
    self_id: str | None,
    listeners: Callable[[], ListenerScan] = scan_listeners,
) -> ExposureAudit:
    """The exposure audit of this machine's node (its sockets are read in a worker thread;
    a node without services needs no reading)."""
    node = topology.node(self_id) if self_id is not None else None
    if node is None or not node.services:
        return audit_exposure(topology, self_id, tailnet.self_ips, _NOTHING_TO_SCAN)
    scan = await asyncio.to_thread(listeners)
    return audit_exposure(topology, self_id, tailnet.self_ips, scan)


async def audit_here(
    topology: Topology, *, tailscale_cli: str | None, node_override: str | None = None
) -> ExposureAudit:
    """`tailnet-agent audit`: which node this is, then its exposure audit."""
    tailnet = await read_status(tailscale_cli, TAILSCALE_TIMEOUT_S)
    return await exposure_audit(topology, tailnet, which_node(topology, tailnet, node_override))


_NOTHING_TO_SCAN = ListenerScan()


def _online_peers(topology: Topology, tailnet: TailnetView, self_id: str | None) -> dict[str, str]:
    """Node id -> the Tailscale IP to ping, for each topology peer Tailscale calls online."""
    if not tailnet.running:
        return {}
    peers: dict[str, str] = {}
    for node in topology.nodes:
        if node.id == self_id:
            continue
        peer = find_peer(node, tailnet)
        if peer is not None and peer.online and (peer.ips or node.ip):
            peers[node.id] = peer.ips[0] if peer.ips else node.ip
    return peers


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
