"""The sweep planner: which probes to send where, and which services not to probe at all.

Pure: given the topology, the node this agent runs on and what Tailscale says, it
returns the probe targets and, for services that must not be probed, a ready
SKIPPED result saying why. The rule that matters most: when Tailscale is not
running here, no probe is sent to any peer. A service whose `consumers` leave this
node out is not probed from here either: a least-privilege policy (`tailnet-agent acl`)
denies this node that port, so a probe could only time out. On a first run (the bundled
example, this machine none of its nodes: core.first_run) nothing at all is probed: the
example's addresses may be other people's machines on this user's tailnet.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.core.hints import tailscale_title
from agent.core.model import (
    Access,
    ProbeResult,
    ProbeState,
    ProbeTarget,
    Reason,
    ServiceKey,
    TailnetView,
    TailscaleProblem,
    Topology,
)
from agent.core.topology import access_of

__all__ = ["FIRST_RUN_DETAIL", "LOOPBACK_HOST", "SweepPlan", "format_address", "plan_sweep"]

LOOPBACK_HOST = "127.0.0.1"
FIRST_RUN_DETAIL = "not probed: on a first run nothing of the bundled example is probed"


@dataclass(frozen=True, slots=True)
class SweepPlan:
    targets: tuple[ProbeTarget, ...]
    skipped: dict[ServiceKey, ProbeResult]
    addresses: dict[ServiceKey, str]  # host:port for every service, probed or not


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tailscale_down_detail(tailnet: TailnetView) -> str:
    """The short fact ("Tailscale is not installed here"): the summary carries the hint once,
    every skipped service says the same thing without it."""
    return tailscale_title(tailnet.problem or TailscaleProblem.NOT_RUNNING)


def _not_a_consumer(
    self_node_id: str | None, node_id: str, consumers: tuple[str, ...] | None
) -> bool:
    if self_node_id is None or self_node_id == node_id or consumers is None:
        return False
    return self_node_id not in consumers


def plan_sweep(
    topology: Topology,
    self_node_id: str | None,
    tailnet: TailnetView,
    *,
    now: float = 0.0,
    first_run: bool = False,
) -> SweepPlan:
    """Plan one sweep.

    Services of this machine's own node are probed locally: on loopback when they
    listen there too, else on the node's own Tailscale address (traffic that never
    leaves the machine). Peers are probed on their Tailscale address, and only
    while Tailscale runs here. On a `first_run` (core.first_run) none is probed.
    """
    timeout = topology.defaults.timeout_s
    targets: list[ProbeTarget] = []
    skipped: dict[ServiceKey, ProbeResult] = {}
    addresses: dict[ServiceKey, str] = {}
    for node in topology.nodes:
        is_self = node.id == self_node_id
        for service in node.services:
            key = (node.id, service.name)
            local = is_self and access_of(topology, service) is Access.LOCALHOST_AND_TAILSCALE
            host = LOOPBACK_HOST if local else node.ip
            addresses[key] = format_address(host, service.port)
            if _not_a_consumer(self_node_id, node.id, service.consumers):
                skipped[key] = ProbeResult(
                    ProbeState.SKIPPED,
                    None,
                    f"not probed: this node ({self_node_id}) is not among its consumers",
                    None,
                    now,
                )
            elif first_run and tailnet.running:
                skipped[key] = ProbeResult(ProbeState.SKIPPED, None, FIRST_RUN_DETAIL, None, now)
            elif (local and not first_run) or tailnet.running:
                targets.append(ProbeTarget(node.id, service, host, timeout))
            else:
                skipped[key] = ProbeResult(
                    ProbeState.SKIPPED,
                    Reason.TAILSCALE_DOWN,
                    _tailscale_down_detail(tailnet),
                    None,
                    now,
                )
    return SweepPlan(tuple(targets), skipped, addresses)
