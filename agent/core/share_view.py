"""Who sees whom (`--share-view`): this node's view as a document, the peers' views read
back, and the rules that place a failure. Pure.

Each agent shares what its latest sweep saw (docs/share-view.md: versioned JSON, states
and reason codes only — no details, no addresses, no body excerpts) and reads its peers'.
With those views, a service this node cannot reach is placed (`Locus`):

- EVERYWHERE: every node with a fresh view fails too — the service is down ("FastAPI down
  on the Mac mini (seen from 3 nodes)"); its colour stays as the health rules say.
- HERE: every other fresh view reaches it, seen after this node began to fail — this
  machine's link is broken ("Your link to the Mac mini is broken (others reach it)"): amber,
  not red, with its own hint (agent.core.hints.LINK_BROKEN).
- SPLIT: some reach it, some do not; the colour stays.

For a failure, a peer's view counts only when it was read after this node began to fail, so
a view from before the outage (a cached copy) never clears or confirms it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from agent.core.constants import SHARE_VIEW_PORT
from agent.core.decoding import finite_number, load_json
from agent.core.events import Event, EventKind
from agent.core.health import short_name
from agent.core.hints import link_broken_hint, reason_text, with_hint
from agent.core.model import (
    FleetView,
    Locus,
    Node,
    ProbeResult,
    ProbeState,
    ServiceKey,
    Sighting,
    Snapshot,
    Topology,
)

__all__ = [
    "SHARE_VIEW_PORT",
    "VIEW_KIND",
    "VIEW_MAX_BYTES",
    "VIEW_PATH",
    "VIEW_VERSION",
    "PeerReading",
    "ViewStatus",
    "down_since",
    "encode_view",
    "link_broken_title",
    "localise",
    "localise_events",
    "matrix_lines",
    "parse_view",
    "seen_down_title",
    "stale_after",
]

VIEW_KIND = "tailnet-agent/view"
VIEW_VERSION = 1
VIEW_PATH = "/v1/view"
VIEW_MAX_BYTES = 64 * 1024  # a view of 500 services is about 40 KB
FUTURE_SLACK_S = 60.0  # clocks of the tailnet's machines may differ this much


class ViewStatus(StrEnum):
    FRESH = "fresh"
    STALE = "stale"  # older than stale_after(): that agent stopped sweeping, or its clock is off
    UNREACHABLE = "unreachable"  # no answer, refused, or not HTTP 200
    MALFORMED = "malformed"  # not a view this agent can read


@dataclass(frozen=True, slots=True)
class PeerReading:
    """One peer's view as fetched in this sweep (or its last good copy)."""

    node_id: str
    status: ViewStatus
    detail: str = ""  # why it is not fresh, for the log and the menu
    at: float | None = None  # when that peer's sweep ran (its clock)
    states: Mapping[ServiceKey, ProbeState] | None = None


def stale_after(interval_s: float) -> float:
    """A view older than this is stale: three sweeps missed, and never under 30 s."""
    return max(30.0, 3 * interval_s)


# ==== the document ==============================================================


def encode_view(snapshot: Snapshot) -> bytes:
    """This node's view of its latest sweep as the shared JSON document (UTF-8)."""
    document: dict[str, Any] = {
        "kind": VIEW_KIND,
        "version": VIEW_VERSION,
        "node": snapshot.self_node_id,
        "topology": snapshot.topology.name,
        "at": round(snapshot.at, 3),
        "tailscale_running": snapshot.tailnet.running,
        "services": [
            {
                "node": n.node.id,
                "service": s.service.name,
                "state": s.result.state.value,
                "reason": None if s.result.reason is None else s.result.reason.value,
                "latency_ms": None
                if s.result.latency_ms is None
                else round(s.result.latency_ms, 1),
            }
            for n in snapshot.nodes
            for s in n.services
        ],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _malformed(node_id: str, why: str) -> PeerReading:
    return PeerReading(node_id, ViewStatus.MALFORMED, why)


def parse_view(raw: bytes, *, node_id: str, now: float, max_age_s: float) -> PeerReading:
    """Read a peer's document strictly; anything unexpected is MALFORMED, never an error."""
    if len(raw) > VIEW_MAX_BYTES:
        return _malformed(node_id, f"larger than {VIEW_MAX_BYTES // 1024} KB")
    try:
        document = load_json(raw)
    except ValueError:  # not UTF-8, not JSON, or nested too deeply to read
        return _malformed(node_id, "not JSON")
    if not isinstance(document, dict) or document.get("kind") != VIEW_KIND:
        return _malformed(node_id, "not a tailnet-agent view")
    if document.get("version") != VIEW_VERSION:
        return _malformed(
            node_id, f"view version {document.get('version')!r} is not {VIEW_VERSION}"
        )
    if document.get("node") != node_id:
        return _malformed(node_id, f"it says it is node {str(document.get('node'))[:40]!r}")
    at = finite_number(document.get("at"))
    if at is None:
        return _malformed(node_id, "no time")
    services = document.get("services")
    if not isinstance(services, list):
        return _malformed(node_id, "no services list")
    states: dict[ServiceKey, ProbeState] = {}
    for item in services:
        if not isinstance(item, dict):
            return _malformed(node_id, "a service entry is not an object")
        node, name, state = item.get("node"), item.get("service"), item.get("state")
        if not isinstance(node, str) or not isinstance(name, str) or not isinstance(state, str):
            return _malformed(node_id, "a service entry lacks node, service or state")
        try:
            states[(node, name)] = ProbeState(state)
        except ValueError:
            return _malformed(node_id, f"unknown state {state[:20]!r}")
    if at > now + FUTURE_SLACK_S:
        return PeerReading(node_id, ViewStatus.STALE, "its clock is ahead of this one", at)
    if now - at > max_age_s:
        return PeerReading(node_id, ViewStatus.STALE, f"{now - at:.0f} s old", at)
    return PeerReading(node_id, ViewStatus.FRESH, "", at, states)


# ==== the rules =================================================================


def down_since(
    previous: Mapping[ServiceKey, float], results: Mapping[ServiceKey, ProbeResult], now: float
) -> dict[ServiceKey, float]:
    """When each service began to fail from here, carried from sweep to sweep."""
    return {
        key: previous.get(key, now)
        for key, result in results.items()
        if result.state is ProbeState.DOWN
    }


def localise(
    topology: Topology,
    self_id: str | None,
    results: Mapping[ServiceKey, ProbeResult],
    readings: Iterable[PeerReading],
    failing_since: Mapping[ServiceKey, float],
) -> FleetView:
    """Place each failure seen from here with the peers' fresh views."""
    readings = list(readings)
    fresh = [r for r in readings if r.status is ViewStatus.FRESH and r.states is not None]
    sightings: dict[ServiceKey, Sighting] = {}
    for node in topology.nodes:
        for service in node.services:
            key = (node.id, service.name)
            mine = results.get(key)
            since = failing_since.get(key) if mine and mine.state is ProbeState.DOWN else None
            seen: list[tuple[str, ProbeState]] = []
            if self_id is not None and mine is not None:
                seen.append((self_id, mine.state))
            others: list[ProbeState] = []
            waiting: list[str] = []
            for reading in fresh:
                assert reading.states is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
                if since is not None and (reading.at is None or reading.at < since):
                    waiting.append(reading.node_id)  # its next view will tell (core.placing)
                    continue  # read before this node began to fail: it tells nothing of now
                state = reading.states.get(key)
                if state not in (ProbeState.UP, ProbeState.DOWN):
                    continue
                seen.append((reading.node_id, state))
                others.append(state)
            sightings[key] = Sighting(tuple(seen), _locus(mine, others), tuple(waiting))
    views = tuple((r.node_id, r.status.value) for r in readings)
    return FleetView(views, sightings)


def _locus(mine: ProbeResult | None, others: list[ProbeState]) -> Locus | None:
    if mine is None or mine.state is not ProbeState.DOWN or not others:
        return None
    if all(state is ProbeState.DOWN for state in others):
        return Locus.EVERYWHERE
    if all(state is ProbeState.UP for state in others):
        return Locus.HERE
    return Locus.SPLIT


# ==== words =====================================================================


def link_broken_title(node: Node) -> str:
    return f"Your link to the {short_name(node)} is broken (others reach it)"


def seen_down_title(service: str, node: Node, observers: int) -> str:
    return f"{service} down on the {short_name(node)} (seen from {observers} nodes)"


def _link_broken_message(service: str, node: Node, result: ProbeResult, reached: list[str]) -> str:
    what = reason_text(result.reason) if result.reason is not None else "is down"
    return with_hint(
        f"{service} on {node.hostname} {what} from here, but {' and '.join(reached)} "
        + ("reaches it" if len(reached) == 1 else "reach it"),
        link_broken_hint(node.hostname),
    )


def localise_events(events: tuple[Event, ...], snapshot: Snapshot) -> tuple[Event, ...]:
    """The service-down events in the words of their place: every node fails (the service
    is down) or only this one does (its link; not critical, its own hint)."""
    fleet = snapshot.fleet
    if fleet is None:
        return events
    nodes = {n.node.id: n for n in snapshot.nodes}
    out: list[Event] = []
    for event in events:
        key = (event.node_id or "", event.service or "")
        sighting = fleet.sightings.get(key)
        status = nodes.get(key[0])
        if event.kind is not EventKind.SERVICE_DOWN or sighting is None or status is None:
            out.append(event)
            continue
        node = status.node
        failing = next((s for s in status.services if s.service.name == key[1]), None)
        if sighting.locus is Locus.HERE and failing is not None:
            reached = [who for who, state in sighting.seen if state is ProbeState.UP]
            out.append(
                replace(
                    event,
                    title=link_broken_title(node),
                    message=_link_broken_message(key[1], node, failing.result, reached),
                    critical=False,
                )
            )
        elif sighting.locus is Locus.EVERYWHERE and len(sighting.seen) > 1:
            out.append(replace(event, title=seen_down_title(key[1], node, len(sighting.seen))))
        else:
            out.append(event)
    return tuple(out)


_MARK = {ProbeState.UP: "✓", ProbeState.DOWN: "×"}


def matrix_lines(snapshot: Snapshot) -> list[str]:
    """The menu's "from → to" matrix: one line per service, each observer's reading, then
    the peers whose view is not fresh ("laptop: view unreachable")."""
    fleet = snapshot.fleet
    if fleet is None:
        return []
    lines: list[str] = []
    for status in snapshot.nodes:
        for s in status.services:
            sighting = fleet.sightings.get((status.node.id, s.service.name))
            if sighting is None or not sighting.seen:
                continue
            row = "  ".join(f"{who} {_MARK.get(state, '?')}" for who, state in sighting.seen)
            where = {Locus.HERE: " — your link", Locus.EVERYWHERE: " — down everywhere"}
            lines.append(
                f"{row} → {s.service.name} ({short_name(status.node)})"
                + (where.get(sighting.locus, "") if sighting.locus else "")
            )
    lines += [f"{peer}: view {word}" for peer, word in fleet.views if word != ViewStatus.FRESH]
    return lines
