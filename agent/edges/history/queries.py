"""What the history answers: the events, uptime over a window, and since when each
service is in its current state; and the start time a `--since` text means.

Time-weighting: the state read by a sweep holds until the next sweep. After a gap (see
agent.edges.history.schema) the last sweep before it counts for one interval and the
rest is unknown. Unknown and skipped states, and gaps, count neither as up nor as down.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.core.events import EventRecord
from agent.core.model import ProbeState, ServiceKey
from agent.core.topology import parse_duration
from agent.edges.history.event_rows import EVENT_SELECT, record_of
from agent.edges.history.file import HistoryFile
from agent.edges.history.schema import (
    GAP_FACTOR,
    GAP_SLACK_S,
    RUN_COLUMNS,
    STATE_CODE,
    Run,
    decode_keyset,
    gap_limit,
)
from agent.errors import UsageError

__all__ = [
    "Keys",
    "Uptime",
    "keyset_keys",
    "last_run",
    "latest_changes",
    "parse_since",
    "read_events",
    "since_from",
    "uptime_detail",
]

Keys = tuple[ServiceKey, ...]  # the (node id, service) of each state character
_UP, _DOWN = STATE_CODE[ProbeState.UP], STATE_CODE[ProbeState.DOWN]


@dataclass(frozen=True, slots=True)
class Uptime:
    """One service's uptime over a window: the up fraction of the known time (None when no
    up or down time is known), and from when the window holds data (its start when the
    history reaches back that far, later for a young history or a new service)."""

    fraction: float | None
    covered_from: float


# Per (keyset, states): how long that reading held within [:since, :now], and from when
# (the earliest start within the window of a run that held for some time). The runs are
# those that end in the window, plus the one before (its last sweep may hold into the
# window) and the one after (it may span :now, and it bounds the last one). A run covers
# first_at..last_at, then its last sweep holds until the next run starts, or for one
# interval when the next one is more than GAP_FACTOR x interval + GAP_SLACK_S away.
_UPTIME_SQL = """
WITH window_runs AS (
    SELECT * FROM (
        SELECT id, keyset, first_at, last_at, interval, states FROM runs
        WHERE last_at < :since ORDER BY last_at DESC LIMIT 1
    )
    UNION ALL
    SELECT id, keyset, first_at, last_at, interval, states FROM runs
    WHERE last_at >= :since AND last_at <= :now
    UNION ALL
    SELECT * FROM (
        SELECT id, keyset, first_at, last_at, interval, states FROM runs
        WHERE last_at > :now ORDER BY last_at LIMIT 1
    )
), ordered AS (
    SELECT keyset, states, first_at, last_at, interval,
           LEAD(first_at, 1, :now) OVER (ORDER BY last_at, id) - last_at AS gap
    FROM window_runs
), spans AS (
    SELECT keyset, states, MAX(first_at, :since) AS start,
           MAX(0.0, MIN(:now, last_at + CASE
               WHEN gap <= :factor * interval + :slack THEN gap ELSE interval END)
           - MAX(first_at, :since)) AS length
    FROM ordered
)
SELECT keyset, states, SUM(length), MIN(CASE WHEN length > 0 THEN start END)
FROM spans GROUP BY keyset, states
"""


def last_run(file: HistoryFile) -> Run | None:
    """The newest row of ``runs`` (sqlite3.Error as is: the caller says what failed)."""
    row = file.db().execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1").fetchone()  # noqa: S608 — RUN_COLUMNS is a constant
    return None if row is None else Run(*row)


def keyset_keys(file: HistoryFile, keyset: int) -> Keys:
    """The keys of one keyset; none when it is gone or unreadable."""
    rows = file.read("SELECT nodes FROM keysets WHERE id = ?", (keyset,))
    try:
        return decode_keyset(rows[0][0]) if rows else ()
    except (ValueError, TypeError):
        return ()


def read_events(file: HistoryFile, since: float | None, limit: int | None) -> list[EventRecord]:
    """Events at or after `since` (all when None), the newest `limit`, newest last."""
    where = "" if since is None else "WHERE at >= ?"
    params: tuple[object, ...] = () if since is None else (since,)
    if limit is None:
        rows = file.read(f"{EVENT_SELECT} {where} ORDER BY at, id", params)
    else:
        rows = file.read(
            f"{EVENT_SELECT} {where} ORDER BY at DESC, id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        rows.reverse()
    return [record_of(tuple(r)) for r in rows]


def latest_changes(file: HistoryFile) -> list[EventRecord]:
    """The latest event of each subject (kind family, node id, service), oldest first."""
    rows = file.read(
        f"{EVENT_SELECT} WHERE id IN (SELECT MAX(id) FROM events "  # noqa: S608 — EVENT_SELECT is a constant
        "GROUP BY substr(kind, 1, instr(kind, '_') - 1), IFNULL(node_id, ''), "
        "IFNULL(service, '')) ORDER BY at, id"
    )
    return [record_of(tuple(r)) for r in rows]


def uptime_detail(
    file: HistoryFile, keys_of: Callable[[int], Keys], since: float, now: float
) -> dict[ServiceKey, Uptime]:
    """Per (node id, service): the uptime in [since, now] and from when data covers it."""
    if now <= since:
        return {}
    spans = file.read(
        _UPTIME_SQL, {"since": since, "now": now, "factor": GAP_FACTOR, "slack": GAP_SLACK_S}
    )
    up: dict[ServiceKey, float] = {}
    down: dict[ServiceKey, float] = {}
    start: dict[ServiceKey, float] = {}
    for keyset, states, length, first in spans:
        if not length:
            continue
        for key, code in zip(keys_of(keyset), states, strict=False):
            up.setdefault(key, 0.0)
            down.setdefault(key, 0.0)
            if code == _UP:
                up[key] += length
            elif code == _DOWN:
                down[key] += length
            else:
                continue
            start[key] = min(start.get(key, now), float(first))
    result: dict[ServiceKey, Uptime] = {}
    for key, up_s in up.items():
        known = up_s + down[key]
        fraction = up_s / known if known > 0 else None
        result[key] = Uptime(fraction, start.get(key, now))
    return result


def since_from(rows: Iterator[Any], keys_of: Callable[[int], Keys]) -> dict[ServiceKey, float]:
    """Walk back from the newest run (rows: keyset, first_at, last_at, interval, states,
    newest first) while each service keeps its current state."""
    latest = next(rows, None)
    if latest is None:
        return {}
    keyset, first_at, last_at, interval, states = latest
    current = dict(zip(keys_of(keyset), states, strict=False))
    since: dict[ServiceKey, float] = {}
    open_keys = set(current)
    start = float(first_at)  # the oldest run so far in which every open key is unchanged
    matching: set[tuple[int, str]] = set()  # (keyset, states) that match every open key
    for keyset, first_at, last_at, interval, states in rows:
        gap = start - last_at
        if abs(gap) > gap_limit(interval):
            break
        if (keyset, states) not in matching:
            older = dict(zip(keys_of(keyset), states, strict=False))
            for key in [k for k in open_keys if older.get(k) != current[k]]:
                since[key] = start
                open_keys.discard(key)
            if not open_keys:
                break
            matching.add((keyset, states))
        start = float(first_at)
    for key in open_keys:
        since[key] = start
    return since


def parse_since(text: str, now: float) -> float:
    """The start time meant by "24h", "30m", "7d", "90s" (before `now`) or an ISO date.

    Durations use the topology's parser (ms, s, m, h, d); dates without a
    time zone are local ("2024-05-01", "2024-05-01T10:00", "2024-05-01 10:00:00+02:00").
    """
    value = text.strip()
    seconds: float | None = None
    with contextlib.suppress(ValueError, TypeError):
        seconds = parse_duration(value)
    if seconds is not None:
        if not math.isfinite(seconds) or seconds <= 0:
            raise UsageError(f"--since {text!r}: the duration must be more than 0")
        return now - seconds
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: write a duration such as 24h, 30m, 7d or 90s, or a date "
            "such as 2024-05-01 or 2024-05-01T10:00"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time
    start = when.timestamp()
    if start > now:
        raise UsageError(f"--since {text!r}: that is in the future")
    return start
