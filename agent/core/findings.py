"""The monitor's memory of diagnoses: findings confirmed like any other state, told once.

Pure and immutable, beside core.confirm (whose hysteresis it counts with: `advance`).
Each finding is its own subject, keyed by `Finding.key`, which names it exactly ("the Mac
mini's IP is now 100.123.51.9"): `watch(state, snapshot, at, learn=...)` reads the
findings of a sweep for each kind the sweep assessed (`Snapshot.assessed`: drift needs a
running Tailscale, exposure a readable socket list), so a kind not assessed teaches
nothing and its findings stay as they were.

- A finding present is a bad reading, one tracked but absent a good one; a change is
  confirmed after `failure_threshold` / `success_threshold` readings in a row, so a
  finding that comes and goes between sweeps never flaps.
- Only findings that colour are watched: a warning without colour (a tailnet peer the
  topology lacks, an exposure where no access is declared) is shown from the latest sweep
  and is neither recorded nor announced, as an info service's state is never an alarm.
- A confirmed finding gives one announced `*_found` event; its key never
  gives another while it stands. It gone again gives `*_fixed` (announced when the finding
  was), and its track is dropped. Another finding about the same thing (the IP changed
  again) has another key: it is news, and the old one is fixed.
- `learn=False` (a grace period: the machine just woke or changed network) resets the
  streaks and emits nothing.
- `carried(records)`: after a restart, the findings whose last record is `*_found` start
  confirmed, as they were announced then, so the history is not told twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from agent.core.confirm import Recorded, Track, Verdict, advance
from agent.core.events import Event, EventKind, Subject, finding_event, finding_fixed_event
from agent.core.model import FindingKind, Snapshot

__all__ = ["FindingsState", "announced_subjects", "carried", "watch"]

_KIND_OF = {
    EventKind.EXPOSURE_FOUND: FindingKind.EXPOSURE,
    EventKind.EXPOSURE_FIXED: FindingKind.EXPOSURE,
    EventKind.DRIFT_FOUND: FindingKind.DRIFT,
    EventKind.DRIFT_FIXED: FindingKind.DRIFT,
}


@dataclass(frozen=True, slots=True)
class _Known:
    """What is remembered of a tracked finding: its track and enough to word its end."""

    track: Track
    kind: FindingKind
    node_id: str | None
    text: str = ""


@dataclass(frozen=True, slots=True)
class FindingsState:
    """Treat the mapping as read-only: finding key -> what is known of it."""

    known: Mapping[str, _Known] = field(default_factory=dict)


def carried(records: Iterable[Recorded]) -> FindingsState:
    """Where a restart starts from: the findings whose last record is a `*_found`."""
    known: dict[str, _Known] = {}
    for r in records:
        kind = _KIND_OF.get(r.kind)
        if kind is None or r.service is None:
            continue
        if r.kind in (EventKind.EXPOSURE_FOUND, EventKind.DRIFT_FOUND):
            track = Track(Verdict.BAD, since=r.at, announced=r.announced)
            known[r.service] = _Known(track, kind, r.node_id)
        else:
            known.pop(r.service, None)
    return FindingsState(known)


def announced_subjects(state: FindingsState) -> frozenset[Subject]:
    """The findings confirmed and announced (their end is news): as Event.subject has them."""
    return frozenset(
        (k.kind.value, k.node_id or "", key)
        for key, k in state.known.items()
        if k.track.confirmed is Verdict.BAD and k.track.announced
    )


def watch(
    state: FindingsState, snapshot: Snapshot, at: float, *, learn: bool
) -> tuple[FindingsState, tuple[Event, ...], bool]:
    """One sweep's findings counted. Returns the new state, its events, and whether a streak
    is being counted (the monitor then re-sweeps soon, as for any other change)."""
    defaults = snapshot.topology.defaults
    present = {f.key: f for f in snapshot.findings if f.kind in snapshot.assessed and f.colours}
    known: dict[str, _Known] = {}
    events: list[Event] = []
    counting = False
    keys = list(dict.fromkeys([*state.known, *present]))
    for key in keys:
        old = state.known.get(key)
        finding = present.get(key)
        if old is None:
            assert finding is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
            old = _Known(Track(), finding.kind, finding.node_id, finding.text)
        if not learn or old.kind not in snapshot.assessed:
            known[key] = replace(old, track=old.track.reset())
            continue
        reading = Verdict.BAD if finding is not None else Verdict.GOOD
        track, was = advance(
            old.track,
            reading,
            at,
            bad_n=defaults.failure_threshold,
            good_n=defaults.success_threshold,
        )
        text = finding.text if finding is not None else old.text
        node = snapshot.topology.node(old.node_id) if old.node_id else None
        if was is not None and track.confirmed is Verdict.BAD and finding is not None:
            event = finding_event(finding, node, at)
            events.append(event)
            track = replace(track, announced=event.announce)
        elif was is Verdict.BAD:
            events.append(
                finding_fixed_event(
                    old.kind,
                    node,
                    old.node_id,
                    key,
                    at,
                    text=text,
                    announce=old.track.announced,
                )
            )
        if track.pending is not None:
            counting = True
        if track.pending is None and track.confirmed is not Verdict.BAD:
            continue  # gone: nothing to remember
        known[key] = _Known(track, old.kind, old.node_id, text)
    return FindingsState(known), tuple(events), counting
