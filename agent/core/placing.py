"""Waiting for the peers' views before a down is announced (`--share-view`). Pure.

A service is confirmed down a second or so after its first failure (the monitor re-checks
at once), while each peer's shared view is that peer's last sweep: usually older than the
failure, so it tells nothing of it (agent.core.share_view.localise leaves such a view out
and lists the peer in `Sighting.waiting`). Announced at once, the down would read plainly;
the place ("seen from 3 nodes", "your link is broken, others reach it") would only come a
sweep later, in the menu and the icon alone.

So a confirmed, announced service down waits — its event (log, history, notification),
never the icon or the menu, which show the confirmed state at once — until every peer
whose view could be read has a view newer than the first failure, or HOLD_MARGIN_S past a
peer's sweep period (its interval and its probes' timeout) has gone by. Then it goes out
once, placed with the views of that pass. Anything else about the same subject (its
recovery) releases it first, so a down is never told after its up. Without share-view, or
with no peer's view readable, nothing waits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.core.events import Event, EventKind
from agent.core.model import Snapshot

__all__ = ["HOLD_MARGIN_S", "Held", "Holding", "hold_for_views"]

HOLD_MARGIN_S = 3.0  # a peer's view fetched (1.5 s), refetched (0.9 s), and some slack


@dataclass(frozen=True, slots=True)
class Held:
    event: Event
    until: float  # wall s: announced then at the latest
    waiting_for: tuple[str, ...]  # the peers whose view is older than the failure


@dataclass(frozen=True, slots=True)
class Holding:
    """One pass's outcome: what is still held, what goes out now (in order), and what began
    to wait in this pass (for the log)."""

    held: tuple[Held, ...]
    ready: tuple[Event, ...]
    began: tuple[Held, ...] = ()


def hold_for_views(held: Iterable[Held], events: Iterable[Event], snapshot: Snapshot) -> Holding:
    """This pass: the held downs the views now place (or whose time is up) and the new
    events, in order; the new downs that must wait are held."""
    now = snapshot.at
    events = tuple(events)
    subjects = {event.subject for event in events}
    keep: list[Held] = []
    ready: list[Event] = []
    for entry in held:
        waiting = _waiting_for(entry.event, snapshot)
        if waiting and entry.event.subject not in subjects and entry.event.at <= now < entry.until:
            keep.append(Held(entry.event, entry.until, waiting))
        else:
            ready.append(entry.event)
    began: list[Held] = []
    bound = snapshot.topology.defaults.interval_s + snapshot.topology.defaults.timeout_s
    for event in events:
        waiting = _waiting_for(event, snapshot) if _may_wait(event) else ()
        if waiting:
            began.append(Held(event, now + bound + HOLD_MARGIN_S, waiting))
        else:
            ready.append(event)
    return Holding((*keep, *began), tuple(ready), tuple(began))


def _may_wait(event: Event) -> bool:
    return event.kind is EventKind.SERVICE_DOWN and event.announce


def _waiting_for(event: Event, snapshot: Snapshot) -> tuple[str, ...]:
    if snapshot.fleet is None:
        return ()
    sighting = snapshot.fleet.sightings.get((event.node_id or "", event.service or ""))
    return () if sighting is None else sighting.waiting
