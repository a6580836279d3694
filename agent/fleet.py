"""Who sees whom (`--share-view`), wired: share this node's view, read the peers', place
the failures.

The sweep (agent.sweep) calls a ShareView at three points: `fetch` the peers' views while
its probes run, `place` its results with them (agent.core.share_view.localise, keeping
when each failure began), and `publish` the judged sweep on this node's own Tailscale IP
(agent.edges.share_view; never a wildcard address). A view that cannot be fetched only
leaves its peer out: the sweep never waits for it longer than its short timeout.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence

from agent.core.model import FleetView, ProbeResult, ServiceKey, Snapshot, TailnetView, Topology
from agent.core.share_view import (
    SHARE_VIEW_PORT,
    PeerReading,
    ViewStatus,
    down_since,
    encode_view,
    localise,
    stale_after,
)
from agent.errors import AgentError

__all__ = ["ShareView", "serving_address"]

log = logging.getLogger(__name__)


def serving_address(snapshot: Snapshot) -> str | None:
    """This node's Tailscale IPv4 as Tailscale reports it (the topology's, when it is one of
    them); None while Tailscale does not run here or this machine is no node."""
    tailnet = snapshot.tailnet
    if not tailnet.running or snapshot.self_node_id is None:
        return None
    node = snapshot.topology.node(snapshot.self_node_id)
    if node is not None and node.ip in tailnet.self_ips:
        return node.ip
    for ip in tailnet.self_ips:
        if ipaddress.ip_address(ip).version == 4:
            return ip
    return None


class ShareView:
    """The sweep's partner for `--share-view` (one per monitor)."""

    def __init__(self, port: int = SHARE_VIEW_PORT) -> None:
        # Here, not at the top: agent.app imports this module whether or not --share-view is
        # given, and the endpoint brings http.server, socketserver and html.
        from agent.edges.peer_views import PeerViews
        from agent.edges.share_view import ViewServer

        self._server = ViewServer(port)
        self._client = PeerViews(port)
        self._failing_since: dict[ServiceKey, float] = {}
        self._told: dict[str, ViewStatus] = {}
        self._bind_error: str | None = None

    async def fetch(
        self, topology: Topology, self_id: str | None, tailnet: TailnetView
    ) -> Sequence[PeerReading]:
        if not tailnet.running:
            return []  # no traffic to peers without Tailscale here (DESIGN.md)
        peers = [(n.id, n.ip) for n in topology.nodes if n.id != self_id]
        return await self._client.fetch(peers, max_age_s=stale_after(topology.defaults.interval_s))

    def place(
        self,
        topology: Topology,
        self_id: str | None,
        results: Mapping[ServiceKey, ProbeResult],
        readings: Sequence[PeerReading],
        now: float,
    ) -> FleetView:
        self._failing_since = down_since(self._failing_since, results, now)
        for reading in readings:
            if self._told.get(reading.node_id) is not reading.status:  # said once per change
                self._told[reading.node_id] = reading.status
                said = reading.status.value + (f": {reading.detail}" if reading.detail else "")
                level = logging.INFO if reading.status is ViewStatus.FRESH else logging.WARNING
                log.log(level, "view of %s: %s", reading.node_id, said)
        return localise(topology, self_id, results, readings, self._failing_since)

    def publish(self, snapshot: Snapshot) -> None:
        host = serving_address(snapshot)
        if host is None:
            return
        try:
            self._server.bind(host)
        except AgentError as error:
            if error.message != self._bind_error:
                log.error("%s", error.message)
                self._bind_error = error.message
            return
        self._bind_error = None
        self._server.publish(encode_view(snapshot))

    def close(self) -> None:
        self._server.close()
