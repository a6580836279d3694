"""`history`'s output: the stored events as a readable list and as JSON-ready dicts."""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from agent.core.events import RECORD_FIELD_NAMES, EventFields, EventKind, EventRecord
from agent.core.evidence import why_text
from agent.core.figures import format_latency
from agent.core.model import Health
from agent.core.report.colour import paint

__all__ = ["history_to_json", "render_history"]


def _local(at: float, seconds: bool = True) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _printable(text: str) -> str:
    """No control characters (escape sequences) from stored text reach the terminal."""
    return "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)


_NOTES = frozenset(  # the history's own records: no severity, never meant to be notified
    {
        EventKind.AGENT_STARTED,
        EventKind.AGENT_STOPPED,
        EventKind.SERVICE_RETIRED,
        EventKind.PEER_RETIRED,
        EventKind.LINK_RETIRED,
        EventKind.SNOOZE_STARTED,
        EventKind.SNOOZE_ENDED,
    }
)


def _is_note(record: EventRecord) -> bool:
    return record.kind in _NOTES


def _mark(record: EventRecord) -> tuple[str, Health]:
    if _is_note(record):
        return "·", Health.GREY
    colour = Health.RED if record.critical else Health.AMBER
    if record.bad:
        return ("✗" if record.critical else "!"), colour
    if record.still_down:  # a peer back online with services still down
        return "!", colour
    return "✓", Health.GREEN


def render_history(
    records: Iterable[EventRecord], *, color: bool, since: float | None = None
) -> str:
    """A readable list, oldest first: local time, a severity mark, the title, the message.

    ✗ a critical change for the worse, ! another one (or a recovery that leaves services
    down), ✓ a recovery, · a note of the history's own (the agent started or stopped, a
    subject left the topology, a snooze began or ended); "(not notified)" marks other
    events recorded but not announced. Under an event with evidence, a "why:" line gives
    the facts the confirming sweep met (agent.core.evidence.why_text).
    Pass `since` (the --since time) for the header and for "No events since ...".
    """
    items = list(records)
    if not items:
        if since is None:
            return "No events recorded.\n"
        return f"No events since {_local(since, False)}.\n"
    lines: list[str] = []
    if since is not None:
        lines.append(f"Events since {_local(since, False)} (local time):")
    indent = " " * (len(_local(0.0)) + 4)
    for r in items:
        mark, health = _mark(r)
        quiet = "" if r.announce or _is_note(r) else " (not notified)"
        lines.append(
            f"{_local(r.at)}  {paint(mark, health, color)} {_printable(r.title)}"
            + (paint(quiet, Health.GREY, color) if quiet else "")
        )
        if r.message:
            lines.append(f"{indent}{_printable(r.message)}")
        why = why_text(r.evidence, latency=format_latency, body_max=80) if r.evidence else ""
        if why:
            lines.append(f"{indent}{paint('why:', Health.GREY, color)} {_printable(why)}")
    return "\n".join(lines) + "\n"


def _iso_utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_SHOWN_FIELDS = tuple(f for f in dataclasses.fields(EventFields) if f.name != "at")


def _shown(field: dataclasses.Field[Any], value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)  # whole: every key, set or not
    if isinstance(value, tuple):
        return list(value)
    if value == "" and field.default == "":  # an optional text left empty
        return None
    return value


def history_to_json(records: Iterable[EventRecord]) -> list[dict[str, Any]]:
    """JSON-ready dicts, one key per event field (EventFields). Stable keys: at (ISO 8601
    UTC), kind, node_id, service, title, message, critical, announced; more may be added
    (node_name, reason, relay, duration_s, still_down, folded, and evidence: an object with
    every key of agent.core.evidence.Evidence, or null), none removed."""
    return [
        {"at": _iso_utc(r.at)}
        | {
            RECORD_FIELD_NAMES.get(f.name, f.name): _shown(f, getattr(r, f.name))
            for f in _SHOWN_FIELDS
        }
        for r in records
    ]
