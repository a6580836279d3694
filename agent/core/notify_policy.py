"""Which Events become desktop notifications: coalescing, rate limits and pause.

Pure: `decide(state, events, now_wall, now_mono=...)` takes the Events of one monitor step
and returns the notifications to show, the new PolicyState, and each announced event it held
back with why (for the log); `plan` is the same without the held-back list. The rate limits
count on `now_mono` (a monotonic clock: a clock set back by an hour must not silence a
subject for an hour, nor one set forward release a flapping one); the pause ends on the
wall clock, where its "until 15:00" is. Without `now_mono` both read `now_wall`. The rules:

- Only events with announce=True are considered.
- Critical events (a critical service down, an always-on peer offline, Tailscale stopped
  here) always get a notification of their own, with their own title. They are never
  coalesced, rate-limited or held back by a pause: "backend offline" is never missed.
- Coalescing: the non-critical events of one call for the same node and direction
  (changes for the worse / recoveries) become one notification when there are several:
  "Mac mini — Backend Server: 3 services down", one line per event in the message.
- Rate limit: a non-critical event of the same subject and kind is shown at most once per
  RATE_LIMIT_S (a flapping service). A recovery passes whenever the matching change for
  the worse was shown (even while paused), and is dropped when it was not: the user's
  picture stays consistent.
- Pause: `pause_until(state, until_wall)` / `resume(state)`. While paused, non-critical
  events are dropped and counted; when the pause ends (by `resume` or because
  `until_wall` passed, noticed at the next `plan`) one summary says
  "While paused: 4 changes" if anything was dropped.
- A peer_online event that names services still down (their downs were folded into the
  offline notice) counts as news: it is treated like a change for the worse, and the
  recovery of those services later passes.
- The topology file's refusals and acceptances answer the user's own edits: they are
  neither rate-limited per subject nor held back by a pause. Only an identical repeat is
  limited: a notification with the same title and message as the last topology one shown,
  within RATE_LIMIT_S (so refused, accepted, refused again are all told).
- What stays on screen: every notification has a `key` ("n1", "n2", ...). One that brings bad
  news stays listed in the state (`on_screen`: key -> the subjects it reports as bad) until
  each of its subjects has recovered or newer news about it was shown. The notification that
  makes it obsolete lists its key in `replaces`: the recovery "FastAPI up" replaces the
  critical "FastAPI down" (which servers keep until dismissed) instead of leaving the alarm
  standing beside it. A notifier replaces the first key of `replaces` in place and closes the
  others. "Mac mini: 2 services down" stays until both have recovered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from agent.core.events import Event, EventKind, Subject
from agent.core.figures import format_duration

__all__ = [
    "RATE_LIMIT_S",
    "Decision",
    "HeldBack",
    "Notification",
    "PausePreset",
    "PolicyState",
    "decide",
    "initial_policy",
    "is_paused",
    "pause_presets",
    "pause_until",
    "plan",
    "resume",
]

_RETIRED = frozenset({EventKind.SERVICE_RETIRED, EventKind.PEER_RETIRED, EventKind.LINK_RETIRED})
RATE_LIMIT_S = 600.0  # the same subject and kind at most once per 10 min
ON_SCREEN_MAX = 100  # notifications with bad news remembered (the oldest are forgotten)
_SUMMARY_TITLES = 5  # titles kept for the "While paused" summary
_COALESCED_LINES = 5  # lines listed in a coalesced message before "(+N more)"


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    message: str
    critical: bool
    event_kinds: tuple[EventKind, ...]  # the kinds it stands for; () for the pause summary
    node_id: str | None = None
    events: int = 1  # how many events it stands for (0 for the pause summary)
    key: str = ""  # its identity, for a later notification's `replaces`
    replaces: tuple[str, ...] = ()  # keys of shown notifications this one makes obsolete


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers. Treat the mapping as read-only."""

    paused_until: float | None = None  # wall time; None when not paused
    dropped: int = 0  # events dropped during the current pause
    dropped_titles: tuple[str, ...] = ()  # the last few of them, for the summary
    # when each was last shown, and the last topology notice's time: on the rate-limit clock
    last_shown: Mapping[tuple[Subject, EventKind], float] = field(default_factory=dict)
    shown_bad: frozenset[Subject] = frozenset()  # subjects whose change for the worse was shown
    last_topology: tuple[str, str, float] | None = None  # (title, message, when) last shown
    # Shown notifications whose bad news still stands: key -> those subjects (oldest first).
    on_screen: Mapping[str, frozenset[Subject]] = field(default_factory=dict)
    shown: int = 0  # notifications made so far: the next key is f"n{shown + 1}"


@dataclass(frozen=True, slots=True)
class HeldBack:
    """An announced event that did not become a notification, and why (for the log)."""

    event: Event
    why: str


@dataclass(frozen=True, slots=True)
class Decision:
    state: PolicyState
    notifications: tuple[Notification, ...]
    held_back: tuple[HeldBack, ...] = ()


@dataclass(frozen=True, slots=True)
class PausePreset:
    label: str
    until_wall: float


def initial_policy(shown_bad: Iterable[Subject] = ()) -> PolicyState:
    """A fresh policy; `shown_bad`: subjects whose change for the worse the user was told of
    before a restart (confirm.announced_subjects of the carried state), so that their
    recovery is told too."""
    return PolicyState(shown_bad=frozenset(shown_bad))


def is_paused(state: PolicyState, now_wall: float) -> bool:
    return state.paused_until is not None and now_wall < state.paused_until


def pause_until(state: PolicyState, until_wall: float) -> PolicyState:
    """Pause (or move the end of the current pause); the dropped count carries on."""
    return replace(state, paused_until=until_wall)


def resume(state: PolicyState) -> tuple[PolicyState, tuple[Notification, ...]]:
    """End the pause; one summary notification when anything was dropped during it."""
    resumed = replace(state, paused_until=None, dropped=0, dropped_titles=())
    if state.paused_until is None or state.dropped == 0:
        return resumed, ()
    return _keyed(resumed, [(_pause_summary(state), [])])


def _pause_summary(state: PolicyState) -> Notification:
    n = state.dropped
    listed = "; ".join(state.dropped_titles)
    more = n - len(state.dropped_titles)
    if more > 0:
        listed += f" (+{more} earlier)"
    return Notification(
        title=f"While paused: {n} change{'s' if n != 1 else ''}",
        message=f"{listed}. The menu shows the current state.",
        critical=False,
        event_kinds=(),
        events=0,
    )


def pause_presets(
    now_wall: float, utc_offset_s: float, *, morning_hour: int = 8
) -> tuple[PausePreset, ...]:
    """The menu's pause choices: one hour, and until the next `morning_hour`:00 local time.

    `utc_offset_s` is the local offset from UTC in force now (e.g. +32400 in Seoul); the
    caller reads it, so this stays pure. Across a daylight-saving change the morning end
    may be off by the change (an hour), which a pause can live with.
    """
    local = now_wall + utc_offset_s
    day = local - local % 86400.0
    target = day + morning_hour * 3600.0
    label = f"Until {morning_hour:02d}:00"
    if target <= local:
        target += 86400.0
        label = f"Until tomorrow {morning_hour:02d}:00"
    return (
        PausePreset("For 1 hour", now_wall + 3600.0),
        PausePreset(label, target - utc_offset_s),
    )


# ==== plan =====================================================================


def _is_news(event: Event) -> bool:
    """A change for the worse, or a recovery that brings bad news (services still down)."""
    return event.bad or bool(event.still_down)


def _remember_dropped(titles: tuple[str, ...], title: str) -> tuple[str, ...]:
    return (*titles, title)[-_SUMMARY_TITLES:]


def plan(
    state: PolicyState, events: Iterable[Event], now_wall: float, *, now_mono: float | None = None
) -> tuple[PolicyState, tuple[Notification, ...]]:
    """`decide` without the held-back list."""
    decision = decide(state, events, now_wall, now_mono=now_mono)
    return decision.state, decision.notifications


def _ago(seconds: float) -> str:
    return f"{format_duration(seconds, seconds_below=120)} ago"


def decide(
    state: PolicyState, events: Iterable[Event], now_wall: float, *, now_mono: float | None = None
) -> Decision:
    """Decide the notifications for one monitor step's events (see the module docstring)."""
    now = now_wall if now_mono is None else now_mono  # the rate limits' clock
    out: list[Notification] = []
    held: list[HeldBack] = []
    if state.paused_until is not None and now_wall >= state.paused_until:
        state, summary = resume(state)
        out.extend(summary)
    paused = state.paused_until is not None
    last_shown = {k: t for k, t in state.last_shown.items() if now - t < RATE_LIMIT_S}
    shown_bad = set(state.shown_bad)
    dropped, titles = state.dropped, state.dropped_titles
    last_topology = state.last_topology

    passing: list[Event] = []
    for event in events:
        if not event.announce:
            if event.kind in _RETIRED:  # gone from the topology: no recovery will come
                shown_bad.discard(event.subject)
            continue
        key = (event.subject, event.kind)
        if event.kind.family == "topology":  # the user's own edit: always told ...
            if (  # ... but not twice alike in a row
                last_topology is not None
                and last_topology[:2] == (event.title, event.message)
                and now - last_topology[2] < RATE_LIMIT_S
            ):
                why = f"the same topology notice was shown {_ago(now - last_topology[2])}"
                held.append(HeldBack(event, why))
                continue
            last_topology = (event.title, event.message, now)
            passing.append(event)
            continue
        if not _is_news(event):  # a recovery
            if event.subject in shown_bad:
                shown_bad.discard(event.subject)
                passing.append(event)
                continue
            if paused:
                dropped, titles = dropped + 1, _remember_dropped(titles, event.title)
            held.append(HeldBack(event, "the change it recovers from was not shown"))
            continue
        if not event.critical:
            if paused:
                dropped, titles = dropped + 1, _remember_dropped(titles, event.title)
                held.append(HeldBack(event, "notifications are paused"))
                continue
            if key in last_shown:  # a repeat within the rate limit
                why = f"the same change was shown {_ago(now - last_shown[key])}"
                held.append(HeldBack(event, f"{why}; at most one per {RATE_LIMIT_S / 60:g} min"))
                continue
        passing.append(event)
        if event.bad:
            shown_bad.add(event.subject)
        else:
            shown_bad.discard(event.subject)
        for name in event.still_down:
            shown_bad.add(("service", event.node_id or "", name))

    for event in passing:
        last_shown[(event.subject, event.kind)] = now
    new_state = replace(
        state,
        dropped=dropped,
        dropped_titles=titles,
        last_shown=last_shown,
        shown_bad=frozenset(shown_bad),
        last_topology=last_topology,
    )
    new_state, shown = _keyed(new_state, _notifications(passing))
    return Decision(new_state, (*out, *shown), tuple(held))


# ==== what stays on screen =====================================================


def _bad_news(event: Event) -> set[Subject]:
    """The subjects an event reports as bad: itself, or the services still down."""
    if event.bad:
        return {event.subject}
    return {("service", event.node_id or "", name) for name in event.still_down}


def _keyed(
    state: PolicyState, made: list[tuple[Notification, list[Event]]]
) -> tuple[PolicyState, tuple[Notification, ...]]:
    """Give each notification its key and the keys it makes obsolete; track what stays."""
    on_screen = dict(state.on_screen)
    shown = state.shown
    out: list[Notification] = []
    for note, events in made:
        bad: set[Subject] = set()
        for event in events:
            bad |= _bad_news(event)
        # Newer news about a subject, good or bad, is what the user should read about it.
        told = bad | {e.subject for e in events}
        replaces: list[str] = []
        for key, subjects in list(on_screen.items()):
            if subjects & told:
                standing = subjects - told
                if standing:
                    on_screen[key] = frozenset(standing)
                else:
                    del on_screen[key]
                    replaces.append(key)
        shown += 1
        key = f"n{shown}"
        if bad:
            on_screen[key] = frozenset(bad)
        out.append(replace(note, key=key, replaces=tuple(replaces)))
    while len(on_screen) > ON_SCREEN_MAX:
        del on_screen[next(iter(on_screen))]
    return replace(state, on_screen=on_screen, shown=shown), tuple(out)


def _single(event: Event) -> Notification:
    return Notification(event.title, event.message, event.critical, (event.kind,), event.node_id)


def _notifications(events: list[Event]) -> list[tuple[Notification, list[Event]]]:
    """Critical events alone and first; the rest grouped by node and direction."""
    out = [(_single(e), [e]) for e in events if e.critical]
    groups: dict[tuple[str, bool] | int, list[Event]] = {}
    for i, event in enumerate(events):
        if event.critical:
            continue
        key: tuple[str, bool] | int = (event.node_id, event.bad) if event.node_id else i
        groups.setdefault(key, []).append(event)
    for group in groups.values():
        out.append((_single(group[0]) if len(group) == 1 else _coalesced(group), group))
    return out


def _coalesced(group: list[Event]) -> Notification:
    first = group[0]
    n = len(group)
    kinds = {e.kind for e in group}
    name = first.node_name or first.node_id or ""
    if kinds == {EventKind.SERVICE_DOWN}:
        what = f"{n} services down"
    elif kinds == {EventKind.SERVICE_UP}:
        what = f"{n} services up"
    elif first.bad:
        what = f"{n} problems"
    else:
        what = f"{n} recoveries"
    lines = [e.message for e in group[:_COALESCED_LINES]]
    if n > _COALESCED_LINES:
        lines.append(f"(+{n - _COALESCED_LINES} more)")
    titles = {e.title for e in group}
    return Notification(
        # One title for them all ("Your link to the Mac mini is broken"): it reads as one.
        title=titles.pop() if len(titles) == 1 else f"{name}: {what}",
        message="\n".join(lines),
        critical=False,
        event_kinds=tuple(e.kind for e in group),
        node_id=first.node_id,
        events=n,
    )
