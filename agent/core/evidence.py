"""The evidence behind a state change: the facts a sweep met, kept with the event.

Pure. "Why is it red?" is answered by what the probes and Tailscale said in the sweep that
confirmed the change, not by the advice (agent.core.hints): the HTTP status and the start
of the body, what the socket met ("connection refused"), the address, the path to the peer
(direct, relayed via which DERP region), the latency, and Tailscale's own state here and of
the peer. `evidence_of(snapshot, node_id, service)` gathers them, bounded and scrubbed;
`with_evidence` attaches them to the events of one step; `why_text` puts them in one line:
"HTTP 503 · body: 'upstream busy' · direct · 12 ms · 14:02". The history stores the
Evidence with its event (one more field of agent.core.events.EventFields).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.core.model import Link, ProbeState, Snapshot
from agent.core.redact import scrub
from agent.core.tailnet import find_peer

if TYPE_CHECKING:
    from agent.core.events import Event

__all__ = [
    "BODY_SHOWN",
    "DETAIL_MAX",
    "Change",
    "Evidence",
    "evidence_of",
    "why_text",
    "with_evidence",
]

DETAIL_MAX = 160  # characters of a probe's or Tailscale's detail kept
BODY_MAX = 120  # characters of a body excerpt kept
BODY_SHOWN = 40  # of which the menu shows this many
_TEXT_MAX = 64  # addresses, region codes, times


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one sweep met about one subject. Every text is scrubbed and bounded."""

    state: str = ""  # the probe's state: up | down | unknown | skipped ("" for a peer)
    detail: str = ""  # what the probe met: "connection refused", "HTTP 503 (expected 200)"
    http_status: int | None = None
    body: str = ""  # the start of a failing answer's body
    address: str = ""  # host:port probed
    link: str = ""  # self | direct | relay | peer-relay | idle | offline | unknown
    relay: str = ""  # the DERP region of a relayed link
    endpoint: str = ""  # Tailscale's CurAddr: where a direct path goes
    latency_ms: float | None = None  # the probe's own time, else the node's best
    tailscale: str = ""  # BackendState here ("Running", "Stopped") or why it is unknown
    tailscale_detail: str = ""  # the reader's sentence when Tailscale is not usable here
    peer_online: bool | None = None  # Tailscale's Online flag for the peer
    last_seen: str = ""  # Tailscale's LastSeen for the peer (RFC 3339)


@dataclass(frozen=True, slots=True)
class Change:
    """The latest change of one subject and its evidence: what the menu's "Why" line says."""

    at: float
    bad: bool
    evidence: Evidence


def _short(text: str, limit: int = _TEXT_MAX) -> str:
    return scrub(text, limit)


def evidence_of(snapshot: Snapshot, node_id: str | None, service: str | None) -> Evidence:
    """The facts the sweep behind `snapshot` met about a node, a service of it, or (no
    node) Tailscale on this machine."""
    tailnet = snapshot.tailnet
    if tailnet.backend_state is not None:
        here = tailnet.backend_state.value
    else:
        here = tailnet.problem.value if tailnet.problem is not None else ""
    base = Evidence(
        tailscale=here,
        tailscale_detail="" if tailnet.running else scrub(tailnet.detail, DETAIL_MAX),
    )
    status = next((n for n in snapshot.nodes if n.node.id == node_id), None)
    if status is None:
        return base
    peer = find_peer(status.node, tailnet) if tailnet.running and not status.is_self else None
    base = dataclasses.replace(
        base,
        link=status.link.value,
        relay=_short(status.relay),
        endpoint=_short(peer.cur_addr) if peer is not None else "",
        latency_ms=status.latency_ms,
        peer_online=peer.online if peer is not None else None,
        last_seen=_short(peer.last_seen) if peer is not None else "",
    )
    found = next((s for s in status.services if s.service.name == service), None)
    if found is None:
        return base
    result = found.result
    return dataclasses.replace(
        base,
        state=result.state.value,
        detail=scrub(result.detail, DETAIL_MAX) if result.state is not ProbeState.UP else "",
        http_status=result.http_status,
        body=scrub(result.excerpt, BODY_MAX),
        address=_short(found.address),
        latency_ms=result.latency_ms if result.latency_ms is not None else status.latency_ms,
    )


def with_evidence(events: Iterable[Event], snapshot: Snapshot) -> tuple[Event, ...]:
    """The events of one step, each with the evidence of the sweep that confirmed it
    (the history's and the topology's own records carry none)."""
    return tuple(
        e
        if e.kind.family in ("topology", "agent", "snooze") or e.kind.value.endswith("_retired")
        else dataclasses.replace(e, evidence=evidence_of(snapshot, e.node_id, e.service))
        for e in events
    )


_LINK_WORDS = {
    Link.DIRECT.value: "direct",
    Link.PEER_RELAY.value: "via a peer relay",
    Link.IDLE.value: "idle",
    Link.OFFLINE.value: "offline",
    Link.SELF.value: "this machine",
}


def why_text(
    evidence: Evidence,
    *,
    latency: Callable[[float], str],
    at: str = "",
    body_max: int = BODY_SHOWN,
) -> str:
    """One line of facts, most telling first: "HTTP 503 · body: 'upstream busy' · direct ·
    12 ms · 14:02"; `latency` formats milliseconds, `at` is the change's time."""
    parts: list[str] = []
    if evidence.http_status is not None:
        parts.append(f"HTTP {evidence.http_status}")
        failed = evidence.state not in ("", ProbeState.UP.value)
        if failed and evidence.detail and not evidence.detail.upper().startswith("HTTP"):
            parts.append(evidence.detail)  # a body mismatch
    elif evidence.detail:
        parts.append(evidence.detail)
    if evidence.body:
        body = scrub(evidence.body, body_max)
        parts.append(f"body: '{body}'")
    if evidence.tailscale and evidence.tailscale != "Running":
        parts.append(f"Tailscale here: {evidence.tailscale}")
    elif evidence.peer_online is False:
        parts.append("Tailscale: peer offline")
    if evidence.link == Link.RELAY.value:
        parts.append(f"relayed via DERP {evidence.relay}" if evidence.relay else "relayed")
    elif evidence.link in _LINK_WORDS and evidence.link != Link.SELF.value:
        words = _LINK_WORDS[evidence.link]
        if words != "offline" or evidence.peer_online is not False:
            parts.append(words)
    if evidence.latency_ms is not None:
        parts.append(latency(evidence.latency_ms))
    if at:
        parts.append(at)
    return " · ".join(parts)
