"""The colour the icon and the headless state line show outside a grace period.

Pure. A subject the monitor confirms (core.confirm: Tailscale here, peers, links,
services) colours by its confirmed state, so a reading not yet confirmed — the first
failed probe of a blip, re-checked a second later — never turns the icon red while the
notifications wait. What the monitor does not confirm colours by the latest reading, as
the health rules judged it: a slow link (latency over latency_warn_ms), a node not in the
tailnet, drift and exposure findings, and tailnet peers missing from the topology. A
snoozed node colours neither way.
"""

from __future__ import annotations

from agent.core.confirm import MonitorState, confirmed_health
from agent.core.health import worst
from agent.core.model import FindingKind, Health, Link, NodeStatus, Snapshot

__all__ = ["shown_health"]


def shown_health(snapshot: Snapshot, state: MonitorState) -> Health:
    """The icon's colour for `snapshot` once `state` (after that sweep's step) is known:
    the confirmed colour, made amber by what only the latest reading tells."""
    confirmed, _ = confirmed_health(
        state,
        snapshot.topology,
        snapshot.self_node_id,
        snoozed=snapshot.snoozed,
        fleet=snapshot.fleet,
    )
    unconfirmed = [
        Health.AMBER
        for node in snapshot.nodes
        if (node.node.id, "") not in snapshot.snoozed and _reading_only_problem(node, snapshot)
    ]
    unconfirmed += [Health.AMBER for f in snapshot.findings if f.node_id is None and f.colours]
    return worst([confirmed, *unconfirmed])


def _reading_only_problem(node: NodeStatus, snapshot: Snapshot) -> bool:
    """The node has a problem no confirmed subject covers (core.health's amber rules)."""
    if any(f.colours for f in node.findings):
        return True
    if node.is_self:
        return False
    warn = snapshot.topology.defaults.latency_warn_ms
    if node.latency_ms is not None and node.latency_ms > warn:
        return True
    drifted = any(f.kind is FindingKind.DRIFT for f in node.findings)
    return node.link is Link.UNKNOWN and snapshot.tailnet.running and not drifted
