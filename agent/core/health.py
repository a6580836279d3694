"""Health rules: one sweep's observations judged into colours, reasons and a summary.

Pure. Input: the topology, what Tailscale said, which node is this machine, and
one ProbeResult per service. Output: a Snapshot with a colour per service, per
node and overall, and a line of text a person can act on.

Colours: red for Tailscale not running here, an always-on peer offline or a
critical service down; amber for a relayed (DERP) link, a slow link, a node not
in the tailnet or a degraded service down; grey for "no colour" (no data, an
info service, a peer that is not always on and is offline); green otherwise.

Findings (topology drift, a service exposed beyond Tailscale: core.drift, core.exposure)
are passed in: each colours its node amber when it says so (else it is a line without
colour); those about no node (a tailnet peer the topology lacks) colour the whole when
they say so.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from agent.core.hints import (
    RELAYED,
    explain,
    link_broken_hint,
    peer_offline_hint,
    tailscale_detail,
)
from agent.core.model import (
    Finding,
    FindingKind,
    FleetView,
    Health,
    Impact,
    Link,
    Locus,
    Node,
    NodeStatus,
    PathReading,
    ProbeResult,
    ProbeState,
    Reason,
    ServiceKey,
    ServiceStatus,
    Snapshot,
    TailnetView,
    TailscaleProblem,
    Topology,
)
from agent.core.tailnet import find_peer, link_of

__all__ = [
    "SUMMARY_MAX",
    "finding_line",
    "judge",
    "names_down",
    "problem_words",
    "service_colour",
    "short_name",
    "with_snoozes",
    "worst",
]

_RANK = {Health.GREY: 0, Health.GREEN: 1, Health.AMBER: 2, Health.RED: 3}
_MISSING = ProbeResult(ProbeState.UNKNOWN, Reason.ERROR, "no result")
SUMMARY_MAX = 80  # a longer list of problems is counted instead ("38 services down on 2 nodes")
NAMED_MAX = 3  # services named in "FastAPI, PostgreSQL and Redis down"; more are counted
NAMED_NODES_MAX = 2  # nodes named in the summary; with more in trouble, it counts


def worst(healths: Iterable[Health]) -> Health:
    """The most severe colour; grey ("no colour") only when nothing else is there."""
    return max(healths, key=_RANK.__getitem__, default=Health.GREY)


def short_name(node: Node) -> str:
    """ "Mac mini — Backend Server" -> "Mac mini": the part before a dash, for one-liners."""
    for dash in (" — ", " – ", " - "):
        if dash in node.name:
            return node.name.split(dash, 1)[0].strip()
    return node.name or node.id


def names_down(names: list[str]) -> str:
    """ "FastAPI down", "FastAPI and Redis down", "A, B and C down", "5 services down"."""
    if len(names) > NAMED_MAX:
        return f"{len(names)} services down"
    if len(names) == 1:
        return f"{names[0]} down"
    return f"{', '.join(names[:-1])} and {names[-1]} down"


def problem_words(node: NodeStatus, *, latency_warn_ms: float, tailnet_running: bool) -> list[str]:
    """What is wrong with a node, in a few words each: "offline", "FastAPI and Redis down",
    "relayed", "slow link", "not in tailnet" (the menu's node titles and the summary)."""
    any_up = any(s.result.state is ProbeState.UP for s in node.services)
    if node.link is Link.OFFLINE and not any_up:
        return ["offline"]
    words: list[str] = []
    failing = [s.service.name for s in node.services if s.health in (Health.RED, Health.AMBER)]
    if failing:
        words.append(names_down(failing))
    if node.link is Link.RELAY:
        words.append("relayed")
    if not node.is_self and node.latency_ms is not None and node.latency_ms > latency_warn_ms:
        words.append("slow link")
    drifted = any(f.kind is FindingKind.DRIFT for f in node.findings)
    if node.link is Link.UNKNOWN and not node.is_self and tailnet_running and not drifted:
        words.append("not in tailnet")
    if any(f.kind is FindingKind.EXPOSURE and f.colours for f in node.findings):
        words.append("exposed beyond Tailscale")
    if drifted:
        words.append("topology drift")
    return words


def finding_line(finding: Finding) -> str:
    """A finding as a reason line, with its fix: "topology drift: ... — in the ..."."""
    what = "topology drift" if finding.kind is FindingKind.DRIFT else "exposure"
    return f"{what}: {finding.text} — {finding.fix}" if finding.fix else f"{what}: {finding.text}"


def _service_health(impact: Impact, state: ProbeState) -> Health:
    if state is ProbeState.UP:
        return Health.GREEN
    if state is ProbeState.SKIPPED or impact is Impact.INFO:
        return Health.GREY
    return Health.RED if impact is Impact.CRITICAL else Health.AMBER


def _explain_offline(result: ProbeResult) -> ProbeResult:
    """A failure on a peer that Tailscale calls offline: the runbook's Q1 is the reason, and
    its hint the only one (what the probe met, a fact, stays in the detail)."""
    if result.state is not ProbeState.DOWN or result.reason is Reason.PEER_OFFLINE:
        return result  # already explained: judging a judged sweep again changes nothing
    met = result.detail
    detail = f"peer offline in Tailscale; {met}" if met else "peer offline in Tailscale"
    return replace(result, reason=Reason.PEER_OFFLINE, detail=detail)


def _judge_node(
    node: Node,
    is_self: bool,
    tailnet: TailnetView,
    results: Mapping[ServiceKey, ProbeResult],
    addresses: Mapping[ServiceKey, str],
    latency_warn_ms: float,
    path: PathReading | None,
    findings: tuple[Finding, ...] = (),
    snoozed: Collection[ServiceKey] = (),
    fleet: FleetView | None = None,
) -> NodeStatus:
    node_snoozed = (node.id, "") in snoozed
    online: bool | None
    key_expires_at: float | None = None
    if is_self:
        link, relay, online = Link.SELF, "", (True if tailnet.running else None)
        key_expires_at = tailnet.self_key_expiry
    elif not tailnet.running:
        link, relay, online = Link.UNKNOWN, "", None
    else:
        peer = find_peer(node, tailnet)
        if peer is None:
            link, relay, online = Link.UNKNOWN, "", None
        else:
            link, relay = link_of(peer)
            online = peer.online
            key_expires_at = peer.key_expiry
    if is_self or link is Link.OFFLINE:
        path = None  # a ping of an offline peer (or of this machine) says nothing

    services: list[ServiceStatus] = []
    for service in node.services:
        key = (node.id, service.name)
        result = results.get(key, _MISSING)
        if link is Link.OFFLINE:
            result = _explain_offline(result)
        health = service_colour(_service_health(service.impact, result.state), key, snoozed, fleet)
        services.append(ServiceStatus(service, result, health, addresses.get(key, "")))

    any_up = any(s.result.state is ProbeState.UP for s in services)
    up_latencies = [
        s.result.latency_ms
        for s in services
        if s.result.state is ProbeState.UP and s.result.latency_ms is not None
    ]
    latency = min(up_latencies, default=None)
    if path is not None and path.latency_ms is not None:
        latency = path.latency_ms  # the path's own round trip, the runbook's measure

    reasons: list[tuple[Health, str]] = []  # (how bad, why), sorted worst first below
    link_health = Health.GREEN
    if link is Link.OFFLINE and not any_up:
        if node.always_on:
            link_health = Health.RED
            reasons.append(
                (link_health, f"offline in Tailscale ({peer_offline_hint(node.hostname)})")
            )
        else:
            # A laptop with its lid closed: shown, never an alarm; its services do not colour.
            link_health = Health.GREY
            services = [
                ServiceStatus(s.service, s.result, Health.GREY, s.address) for s in services
            ]
            reasons.append((link_health, "offline (not an always-on node)"))
    elif link is Link.OFFLINE:
        reasons.append((Health.GREEN, "Tailscale reports it offline, but its services answer"))
    elif link is Link.RELAY:
        link_health = Health.AMBER
        reasons.append(
            (
                link_health,
                f"relayed via DERP '{relay}' — slower than direct ({RELAYED})",
            )
        )
    elif (
        link is Link.UNKNOWN
        and not is_self
        and tailnet.running
        and not any(f.kind is FindingKind.DRIFT for f in findings)  # it says so, with the fix
    ):
        link_health = Health.AMBER
        reasons.append((link_health, f"not found in this tailnet (no peer with IP {node.ip})"))
    if not is_self and latency is not None and latency > latency_warn_ms:
        link_health = worst([link_health, Health.AMBER])
        reasons.append(
            (Health.AMBER, f"slow link: {latency:.0f} ms (warn above {latency_warn_ms:.0f} ms)")
        )
    if node_snoozed:
        link_health = Health.GREY

    for s in services:
        if s.health in (Health.RED, Health.AMBER):
            reasons.append((s.health, _down_reason(node, s, fleet)))
    for finding in findings:
        finding_health = Health.AMBER if finding.colours and not node_snoozed else Health.GREEN
        if not node_snoozed:  # snoozed: said, never coloured
            link_health = worst([link_health, finding_health])
        reasons.append((finding_health, finding_line(finding)))
    reasons.sort(key=lambda r: -_RANK[r[0]])  # stable: worst first, then in order found

    if not tailnet.running and not is_self and not any_up:
        health = Health.GREY  # nothing could be learnt about this peer
    else:
        health = worst([link_health, *(s.health for s in services)])
    if health is Health.GREY and any(s.health is Health.GREEN for s in services):
        health = Health.GREEN
    return NodeStatus(
        node,
        is_self,
        link,
        relay,
        online,
        latency,
        health,
        tuple(text for _, text in reasons),
        tuple(services),
        path,
        key_expires_at,
        findings,
    )


def service_colour(
    health: Health, key: ServiceKey, snoozed: Collection[ServiceKey], fleet: FleetView | None
) -> Health:
    """A service's colour `health` (from its impact and state) once its snooze and the
    fleet's placement apply: the one rule for the judged sweep and for the monitor's
    settling (core.confirm.confirmed_health)."""
    if (key[0], "") in snoozed or key in snoozed:
        return Health.GREY  # snoozed: shown, never coloured (core.snooze)
    if health is Health.RED and _placed(fleet, key) is Locus.HERE:
        return Health.AMBER  # the others reach it: this machine's link, not the service
    return health


def _placed(fleet: FleetView | None, key: ServiceKey) -> Locus | None:
    sighting = None if fleet is None else fleet.sightings.get(key)
    return None if sighting is None else sighting.locus


def _down_reason(node: Node, s: ServiceStatus, fleet: FleetView | None) -> str:
    """ "FastAPI down — why (hint)", placed by the peers' views where they tell."""
    key = (node.id, s.service.name)
    locus = _placed(fleet, key)
    if locus is Locus.HERE:
        return (
            f"{s.service.name} down from here only — your link to the {short_name(node)} is "
            f"broken, others reach it ({link_broken_hint(node.hostname)})"
        )
    why = explain(s.result, node.hostname)
    if locus is Locus.EVERYWHERE and fleet is not None:
        seen = len(fleet.sightings[key].seen)
        return f"{s.service.name} down (seen from {seen} nodes) — {why}"
    return f"{s.service.name} down — {why}"


def _summary(
    topology: Topology,
    tailnet: TailnetView,
    nodes: list[NodeStatus],
    strays: Sequence[Finding] = (),
) -> str:
    if not tailnet.running:
        problem = tailnet.problem or TailscaleProblem.NOT_RUNNING
        return tailnet.detail or tailscale_detail(problem)
    if not nodes:
        return f"{topology.name}: the topology has no nodes"
    bad = [n for n in nodes if n.health in (Health.RED, Health.AMBER) and n.reasons]
    if not bad:
        up = sum(1 for n in nodes for s in n.services if s.result.state is ProbeState.UP)
        total = sum(len(n.services) for n in nodes)
        count = f"{len(nodes)} node" + ("" if len(nodes) == 1 else "s")
        strays_said = ""
        if strays:
            peers = "1 tailnet peer" if len(strays) == 1 else f"{len(strays)} tailnet peers"
            strays_said = f"; {peers} not in the topology"
        return f"All good — {count}, {up} of {total} services up{strays_said}"
    bad.sort(key=lambda n: -_RANK[n.health])  # stable: red first, then topology order
    warn = topology.defaults.latency_warn_ms
    words = [problem_words(n, latency_warn_ms=warn, tailnet_running=True) for n in bad]
    if len(bad) == 1 and (len(bad[0].reasons) == 1 or words[0] == ["offline"]):
        return f"{short_name(bad[0].node)}: {bad[0].reasons[0]}"  # one problem: why, and the hint
    said = "; ".join(
        f"{short_name(n.node)}: {', '.join(w)}" for n, w in zip(bad, words, strict=True)
    )
    if len(bad) > NAMED_NODES_MAX or len(said) > SUMMARY_MAX:
        return _counted(bad, words)
    return said


def _counted(bad: list[NodeStatus], words: list[list[str]]) -> str:
    """Too many problems to name: "38 services down on 2 nodes, 1 node offline"."""
    offline = sum(1 for w in words if w == ["offline"])
    down_on = [
        sum(1 for s in n.services if s.health in (Health.RED, Health.AMBER))
        for n, w in zip(bad, words, strict=True)
        if w != ["offline"]
    ]
    parts: list[str] = []
    if sum(down_on):
        nodes_with = sum(1 for d in down_on if d)
        where = f" on {nodes_with} nodes" if nodes_with > 1 else ""
        parts.append(f"{sum(down_on)} service{'' if sum(down_on) == 1 else 's'} down{where}")
    for count, one, many in (
        (offline, "node offline", "nodes offline"),
        (sum("relayed" in w for w in words), "link relayed", "links relayed"),
        (sum("slow link" in w for w in words), "slow link", "slow links"),
        (sum("not in tailnet" in w for w in words), "node not in tailnet", "nodes not in tailnet"),
        (sum("topology drift" in w for w in words), "node drifted", "nodes drifted"),
        (sum("exposed beyond Tailscale" in w for w in words), "node exposed", "nodes exposed"),
    ):
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts)


def judge(
    topology: Topology,
    tailnet: TailnetView,
    self_node_id: str | None,
    results: Mapping[ServiceKey, ProbeResult],
    addresses: Mapping[ServiceKey, str],
    *,
    now: float,
    paths: Mapping[str, PathReading] | None = None,
    findings: Sequence[Finding] = (),
    assessed: frozenset[FindingKind] = frozenset(),
    snoozed: Collection[ServiceKey] = (),
    fleet: FleetView | None = None,
) -> Snapshot:
    """Judge one sweep into a Snapshot; `paths`: node id -> its latest `tailscale ping`;
    `findings`: the diagnoses of this sweep, of the kinds in `assessed` (core.drift,
    core.exposure). `snoozed`: the subjects whose alerts are snoozed (core.snooze), (node
    id, service name) or (node id, "") for a whole node: judged grey, so they colour
    neither their node nor the overall. `fleet` (the peers' views, --share-view) places its
    failures."""
    nodes = [
        _judge_node(
            node,
            node.id == self_node_id,
            tailnet,
            results,
            addresses,
            topology.defaults.latency_warn_ms,
            (paths or {}).get(node.id),
            tuple(f for f in findings if f.node_id == node.id),
            snoozed,
            fleet,
        )
        for node in topology.nodes
    ]
    strays = [f for f in findings if f.node_id is None]
    stray_health = [Health.AMBER for f in strays if f.colours]
    overall = (
        Health.RED if not tailnet.running else worst([*(n.health for n in nodes), *stray_health])
    )
    return Snapshot(
        topology=topology,
        tailnet=tailnet,
        self_node_id=self_node_id,
        nodes=tuple(nodes),
        overall=overall,
        summary=_summary(topology, tailnet, nodes, strays),
        at=now,
        findings=tuple(findings),
        assessed=assessed,
        fleet=fleet,
        snoozed=frozenset(snoozed),
    )


def with_snoozes(snapshot: Snapshot, snoozed: Collection[ServiceKey]) -> Snapshot:
    """`snapshot` judged again with `snoozed` (see `judge`), from its own results and path
    readings: what the monitor and `check` show while alerts are snoozed. Unchanged when
    nothing is snoozed. (A new input of `judge` that a Snapshot keeps is passed on here.)"""
    if not snoozed:
        return snapshot
    results = {(n.node.id, s.service.name): s.result for n in snapshot.nodes for s in n.services}
    addresses = {(n.node.id, s.service.name): s.address for n in snapshot.nodes for s in n.services}
    return judge(
        snapshot.topology,
        snapshot.tailnet,
        snapshot.self_node_id,
        results,
        addresses,
        now=snapshot.at,
        paths={n.node.id: n.path for n in snapshot.nodes if n.path is not None},
        findings=snapshot.findings,
        assessed=snapshot.assessed,
        snoozed=snoozed,
        fleet=snapshot.fleet,
    )
