"""Node key expiry: the warning for each node whose key expires soon, and when to announce it.

Pure. Tailscale's status carries each node's KeyExpiry (Self's too; absent when expiry is
disabled for the node). A key that expires logs its node out of the tailnet, so a node
whose key expires within a week shows a warning line in the menu and in `check`:
"Mac mini's node key expires in 3 days — `tailscale up --force-reauth` there, or disable
expiry in the admin console" (the hint from core.hints). The monitor announces it twice per
key: once when under 7 days, again when under 24 h (`announce`); a renewed key has a new
expiry and starts over. `carried_notices` rebuilds what was announced from the history,
so a restart does not announce the same stage again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING

from agent.core.figures import format_duration
from agent.core.health import short_name
from agent.core.hints import key_expiry_hint
from agent.core.model import NodeStatus, Snapshot

if TYPE_CHECKING:  # the monitor's events: check, which shows the warning only, never loads them
    from agent.core.events import Event

__all__ = [
    "DAY_S",
    "WEEK_S",
    "KeyNotices",
    "Stage",
    "announce",
    "carried_notices",
    "expiry_words",
    "key_warning",
    "stage_of",
]

DAY_S = 24 * 3600.0
WEEK_S = 7 * DAY_S
_SAME_EXPIRY_S = 60.0  # a recorded notice is for the current key when its expiry is this close


class Stage(IntEnum):
    """How close a key is to expiring; each stage is announced once per key."""

    WEEK = 1  # under 7 days
    DAY = 2  # under 24 h


KeyNotices = frozenset[tuple[str, float, Stage]]
"""(node id, the key's expiry, stage) announced so far."""


def stage_of(left_s: float) -> Stage | None:
    """The stage of a key with `left_s` to go; None when far off, or already expired (then
    Tailscale itself tells: the peer goes offline, this machine needs a login)."""
    if left_s <= 0:
        return None
    if left_s < DAY_S:
        return Stage.DAY
    if left_s < WEEK_S:
        return Stage.WEEK
    return None


def expiry_words(left_s: float) -> str:
    """ "expires in 3 days", "expires in 1 day", "expires in 5 h 10 min"."""
    days = math.floor(left_s / DAY_S)
    if days >= 2:
        return f"expires in {days} days"
    if days == 1:
        return "expires in 1 day"
    return f"expires in {format_duration(left_s)}"


def key_warning(node: NodeStatus, now: float) -> str | None:
    """The warning for a node whose key expires within a week, with its hint; else None."""
    if node.key_expires_at is None:
        return None
    left = node.key_expires_at - now
    if stage_of(left) is None:
        return None
    whose = "This machine" if node.is_self else short_name(node.node)
    hint = key_expiry_hint(is_self=node.is_self)
    return f"{whose}'s node key {expiry_words(left)} — {hint}"


def announce(
    notices: KeyNotices, snapshot: Snapshot, now: float
) -> tuple[KeyNotices, tuple[Event, ...]]:
    """The key_expiring events of one sweep: a node's key entering a stage not announced
    for that key yet. Reaching DAY first (the agent started late) announces DAY alone."""
    from agent.core.events import Event, EventKind  # the monitor's: check never announces

    events: list[Event] = []
    known = set(notices)
    current: set[tuple[str, float, Stage]] = set()
    for node in snapshot.nodes:
        if node.key_expires_at is None:
            continue
        stage = stage_of(node.key_expires_at - now)
        if stage is None:
            continue
        told = {
            s
            for (n, at, s) in known
            if n == node.node.id and abs(at - node.key_expires_at) <= _SAME_EXPIRY_S
        }
        current |= {(node.node.id, node.key_expires_at, s) for s in told}
        if any(s >= stage for s in told):
            continue
        warning = key_warning(node, now)
        assert warning is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
        whose = "This machine" if node.is_self else short_name(node.node)
        title = f"{whose}: node key {expiry_words(node.key_expires_at - now)}"
        events.append(
            Event(
                kind=EventKind.KEY_EXPIRING,
                at=now,
                node_id=node.node.id,
                service=None,
                title=title,
                message=warning,
                critical=False,
                announce=True,
                node_name=node.node.name,
                duration_s=node.key_expires_at - now,  # the time left: what a restart reads
            )
        )
        current.add((node.node.id, node.key_expires_at, stage))
    return frozenset(current), tuple(events)


def carried_notices(records: Iterable[tuple[str | None, float, float | None]]) -> KeyNotices:
    """What was announced before a restart, from the history's latest key_expiring records:
    (node id, when, the time left then). A notice names its key by its expiry (when + left);
    a DAY notice implies the WEEK one."""
    found: set[tuple[str, float, Stage]] = set()
    for node_id, at, left in records:
        if node_id is None or left is None:
            continue
        stage = stage_of(left)
        if stage is None:
            continue
        expires = at + left
        found |= {(node_id, expires, s) for s in Stage if s <= stage}
    return frozenset(found)
