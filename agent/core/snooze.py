"""Snoozed alerts: a node or a service in maintenance, without false alarms.

Pure. A Snooze silences one subject — a whole node (its peer, link and services) or one
service — for an hour, until tomorrow morning (the pause presets' 08:00 local,
core.notify_policy.pause_presets), or until it is back. While it lasts:

- its colour does not count (core.health.judge's `snoozed`: a snoozed service, or every
  part of a snoozed node, is judged grey, so neither the node nor the icon turns red for it);
- nothing is announced for it (`quiet`: its changes for the worse are recorded, not
  notified; a recovery follows the notification policy, which tells one only when the
  change it recovers from was shown);
- the monitor's confirmation goes on tracking it, so "until it is back" ends by itself at
  the first sweep that confirms it good again (`expire`).

A snooze that ends while the subject is still wrong says so in its snooze_ended event,
announced (critical when a critical service or an always-on node is concerned) and naming
the services still down, so that their recovery is told later too. Starting and ending
are recorded in the history as events (snooze_started, snooze_ended). `to_json` and
`from_json` give the state file's content (agent.edges.snooze_file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from agent.core.figures import format_duration
from agent.core.model import Impact, Node, Topology

if TYPE_CHECKING:  # the monitor's state and events: check, which reads snoozes only, loads neither
    from agent.core.confirm import MonitorState, Track
    from agent.core.events import Event

__all__ = [
    "FILE_VERSION",
    "Snooze",
    "SnoozeKey",
    "SnoozeKind",
    "Snoozes",
    "active_keys",
    "covering",
    "expire",
    "from_json",
    "key_text",
    "parse_key",
    "quiet",
    "snooze_ended_event",
    "snooze_started_event",
    "still_wrong",
    "to_json",
]

FILE_VERSION = 1

SnoozeKey = tuple[str, str]
"""(node id, service name), the service name "" for the whole node."""


class SnoozeKind(StrEnum):
    HOUR = "hour"
    TOMORROW = "tomorrow"  # until the next 08:00 local
    UNTIL_BACK = "until_back"


@dataclass(frozen=True, slots=True)
class Snooze:
    node_id: str
    service: str  # "" for the whole node
    kind: SnoozeKind
    since: float  # wall seconds
    until: float | None  # wall seconds; None: until it is back

    @property
    def key(self) -> SnoozeKey:
        return (self.node_id, self.service)


Snoozes = Mapping[SnoozeKey, Snooze]


def key_text(key: SnoozeKey) -> str:
    """ "macmini" for a node, "macmini/FastAPI" for a service (a menu action's payload)."""
    node_id, service = key
    return f"{node_id}/{service}" if service else node_id


def parse_key(text: str) -> SnoozeKey:
    """`key_text` read back (node ids never hold a "/"; service names may)."""
    node_id, _, service = text.partition("/")
    return node_id, service


def active_keys(snoozes: Snoozes, now_wall: float) -> frozenset[SnoozeKey]:
    """The subjects snoozed now (a snooze whose time has passed no longer counts)."""
    return frozenset(k for k, s in snoozes.items() if s.until is None or s.until > now_wall)


def covering(snoozes: Snoozes, node_id: str | None, service: str | None) -> Snooze | None:
    """The snooze that covers a node or one of its services: its own, or its node's."""
    if not node_id:
        return None
    if service:
        own = snoozes.get((node_id, service))
        if own is not None:
            return own
    return snoozes.get((node_id, ""))


def quiet(events: Iterable[Event], snoozed: frozenset[SnoozeKey]) -> tuple[Event, ...]:
    """The events of one step with those that bring bad news about a snoozed subject
    recorded but not announced."""
    out: list[Event] = []
    for event in events:
        node = event.node_id or ""
        hit = bool(node) and (
            (node, "") in snoozed
            or (event.service is not None and (node, event.service) in snoozed)
        )
        if hit and event.kind.family != "snooze" and (event.bad or event.still_down):
            event = replace(event, announce=False)
        out.append(event)
    return tuple(out)


# ==== what is still wrong ======================================================


def still_wrong(state: MonitorState, node: Node, service: str, self_id: str | None) -> list[str]:
    """What of a snoozed subject is confirmed wrong now: "offline", "relayed", service names."""
    from agent.core.confirm import Verdict

    wrong: list[str] = []
    if not service and node.id != self_id:
        peer = state.peers.get(node.id)
        if peer is not None and peer.confirmed is Verdict.BAD:
            return ["offline"]
        link = state.links.get(node.id)
        if link is not None and link.confirmed is Verdict.BAD:
            wrong.append("relayed")
    for s in node.services:
        if service and s.name != service:
            continue
        track = state.services.get((node.id, s.name))
        if track is not None and track.confirmed is Verdict.BAD:
            wrong.append(s.name)
    return wrong


def _settled_good(track: Track | None) -> bool:
    """Confirmed good with no contrary streak running (a first bad reading is no "back")."""
    from agent.core.confirm import Verdict

    return track is not None and track.confirmed is Verdict.GOOD and track.pending is None


def _good(state: MonitorState, node: Node, service: str, self_id: str | None) -> bool:
    """The subject is confirmed good: "until it is back" ends."""
    if still_wrong(state, node, service, self_id):
        return False
    if service:
        return _settled_good(state.services.get((node.id, service)))
    tracks = [state.services.get((node.id, s.name)) for s in node.services]
    if node.id != self_id:
        tracks.append(state.peers.get(node.id))
    return all(_settled_good(t) for t in tracks)


def _subject_name(node: Node, service: str) -> str:
    return f"{node.name}: {service}" if service else node.name


def _window(snooze: Snooze) -> str:
    if snooze.until is None:
        return "until it is back"
    return f"for {format_duration(snooze.until - snooze.since)}"


def snooze_started_event(snooze: Snooze, node: Node, at: float) -> Event:
    """Alerts for a node or service snoozed: a record of the window's start."""
    from agent.core.events import Event, EventKind  # the monitor's: check never makes one

    what = _subject_name(node, snooze.service)
    return Event(
        kind=EventKind.SNOOZE_STARTED,
        at=at,
        node_id=node.id,
        service=snooze.service or None,
        title=f"{what}: alerts snoozed {_window(snooze)}",
        message=f"no alert and no colour for {snooze.service or node.name} {_window(snooze)}",
        critical=False,
        announce=False,
        node_name=node.name,
        duration_s=None if snooze.until is None else snooze.until - snooze.since,
    )


def snooze_ended_event(
    snooze: Snooze,
    node: Node,
    at: float,
    *,
    why: str,
    still_wrong: list[str],
) -> Event:
    """A snooze ended (`why`: "it is back", "its time is up", ...). Announced when something
    is still wrong, which the user has not been told of while it lasted."""
    from agent.core.events import Event, EventKind  # the monitor's: check never makes one

    what = _subject_name(node, snooze.service)
    services = {s.name: s for s in node.services}
    down = tuple(n for n in still_wrong if n in services and services[n].impact is not Impact.INFO)
    message = f"alerts are on again: {why}"
    if still_wrong:
        listed = ", ".join(still_wrong)
        message += f"; still wrong: {listed}"
    critical = ("offline" in still_wrong and node.always_on) or any(
        services[n].impact is Impact.CRITICAL for n in down
    )
    announce = bool(down) or (node.always_on and "offline" in still_wrong)
    return Event(
        kind=EventKind.SNOOZE_ENDED,
        at=at,
        node_id=node.id,
        service=snooze.service or None,
        title=f"{what}: snooze over"
        + (f" — {', '.join(still_wrong)} still wrong" if still_wrong else ""),
        message=message,
        critical=critical,
        announce=announce,
        node_name=node.name,
        duration_s=max(0.0, at - snooze.since),
        still_down=down,
    )


def expire(
    snoozes: Snoozes,
    state: MonitorState,
    topology: Topology,
    self_id: str | None,
    now_wall: float,
) -> tuple[dict[SnoozeKey, Snooze], tuple[Event, ...]]:
    """The snoozes after one confirmed step, and the snooze_ended events of those that end:
    time up, back (for "until it is back"), or gone from the topology."""
    kept: dict[SnoozeKey, Snooze] = {}
    events: list[Event] = []
    for key, snooze in snoozes.items():
        node = topology.node(snooze.node_id)
        if node is None or (
            snooze.service and all(s.name != snooze.service for s in node.services)
        ):
            continue  # left the topology: nothing is watched there any more
        if snooze.until is not None and now_wall >= snooze.until:
            wrong = still_wrong(state, node, snooze.service, self_id)
            events.append(
                snooze_ended_event(snooze, node, now_wall, why="its time is up", still_wrong=wrong)
            )
        elif snooze.until is None and _good(state, node, snooze.service, self_id):
            events.append(
                snooze_ended_event(snooze, node, now_wall, why="it is back", still_wrong=[])
            )
        else:
            kept[key] = snooze
    return kept, tuple(events)


# ==== the state file ===========================================================


def to_json(snoozes: Snoozes) -> dict[str, Any]:
    return {
        "version": FILE_VERSION,
        "snoozes": [
            {
                "node": s.node_id,
                "service": s.service or None,
                "kind": s.kind.value,
                "since": s.since,
                "until": s.until,
            }
            for s in snoozes.values()
        ],
    }


def from_json(data: object) -> dict[SnoozeKey, Snooze]:
    """The snoozes of a state file's content; entries that do not read are left out (a
    file edited by hand, or a newer agent's)."""
    out: dict[SnoozeKey, Snooze] = {}
    items = data.get("snoozes") if isinstance(data, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        node, service, since, until = (item.get(k) for k in ("node", "service", "since", "until"))
        try:
            kind = SnoozeKind(str(item.get("kind")))
        except ValueError:
            continue
        if not isinstance(node, str) or not node or not isinstance(service, str | None):
            continue
        if not isinstance(since, int | float) or isinstance(since, bool):
            continue
        if until is not None and (not isinstance(until, int | float) or isinstance(until, bool)):
            continue
        snooze = Snooze(
            node, service or "", kind, float(since), None if until is None else float(until)
        )
        out[snooze.key] = snooze
    return out
