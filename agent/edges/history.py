"""The history store (edge): events and compact per-sweep records in one SQLite file.

Storage design (kept small: 12 services every 10 s for the 7 days kept is about 30 KB
when states are steady, 3.4 MB when one service flaps on every sweep, the worst case;
tests/bench/history.py measures it):

- ``keysets``: each distinct shape of a sweep, the ordered nodes and their services, as
  JSON (``[["macmini", ["FastAPI", "Redis"]], ...]``). A topology edit adds one row.
- ``runs``: one row per *run* of identical sweeps. A sweep that reads exactly like the
  previous one (same shape, overall colour, links and service states, same interval, and
  no gap) only moves the run's ``last_at`` forward and counts it in ``sweeps``; any change
  starts a new row. ``links`` holds one character per node and ``states`` one per
  service, in the keyset's order (see the ``_*_CODE`` tables).
- ``events``: every event, announced or not, with the announced flag; the Event's other
  fields (node name, reason, relay, durations, ...) as a JSON object in ``extra``.

Time-weighting: the state read by a sweep holds until the next sweep. When the next
sweep comes later than ``3 x interval + 5 s`` (the agent stopped, the machine slept),
that time is a gap: the last sweep before it counts for one interval and the rest is
unknown. Unknown and skipped states, and gaps, count neither as up nor as down.

Retention: runs older than 7 days (the oldest one left is trimmed to the cutoff) and
events older than 30 days are deleted on the first write after opening (so readers such
as the `history` command never write) and then every ``prune_every`` writes. Deleted
pages are reused; when a quarter of the file is free, ``PRAGMA incremental_vacuum``
gives it back. A file above ``max_bytes`` is pruned harder (oldest halves first) and
then VACUUMed: the only VACUUM.

Robustness: WAL mode with synchronous=NORMAL, each write its own committed transaction;
a file that is damaged, not ours, or from a newer schema is moved aside as
``history.sqlite3.corrupt-<time>`` and a fresh one started (logged, not raised); a
database locked by another writer is waited for ``busy_timeout_s`` and then refused
with a HistoryError. A History object belongs to the thread that opened it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import sqlite3
import time
import typing
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from agent.core.events import RECORD_FIELD_NAMES, Event, EventFields, EventRecord
from agent.core.model import Health, Link, ProbeState, Snapshot
from agent.core.topology import parse_duration
from agent.errors import AgentError, UsageError

__all__ = [
    "DEFAULT_EVENT_RETENTION_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SWEEP_RETENTION_S",
    "EVENT_COLUMNS",
    "SCHEMA_VERSION",
    "History",
    "HistoryError",
    "Uptime",
    "parse_since",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 1
DAY_S = 86400.0
DEFAULT_SWEEP_RETENTION_S = 7 * DAY_S
DEFAULT_EVENT_RETENTION_S = 30 * DAY_S
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BUSY_TIMEOUT_S = 5.0
DEFAULT_PRUNE_EVERY = 1000
GAP_FACTOR = 3.0  # a sweep later than GAP_FACTOR x interval + GAP_SLACK_S means a gap
GAP_SLACK_S = 5.0
_JOURNAL_SIZE_LIMIT = 1024 * 1024
_WAL_AUTOCHECKPOINT_PAGES = 256

_STATE_CODE = {
    ProbeState.UP: "u",
    ProbeState.DOWN: "d",
    ProbeState.UNKNOWN: "?",
    ProbeState.SKIPPED: "-",
}
_STATE_OF_CODE = {code: state for state, code in _STATE_CODE.items()}
_LINK_CODE = {
    Link.SELF: "s",
    Link.DIRECT: "d",
    Link.RELAY: "r",
    Link.PEER_RELAY: "p",
    Link.IDLE: "i",
    Link.OFFLINE: "o",
    Link.UNKNOWN: "?",
}
_HEALTH_CODE = {Health.GREEN: "g", Health.AMBER: "a", Health.RED: "r", Health.GREY: "-"}

_SCHEMA = (
    """CREATE TABLE keysets (
        id INTEGER PRIMARY KEY,
        nodes TEXT NOT NULL UNIQUE
    )""",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        keyset INTEGER NOT NULL,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        interval REAL NOT NULL,
        sweeps INTEGER NOT NULL,
        overall TEXT NOT NULL,
        links TEXT NOT NULL,
        states TEXT NOT NULL
    )""",
    "CREATE INDEX runs_last_at ON runs(last_at)",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        node_id TEXT,
        service TEXT,
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        critical INTEGER NOT NULL,
        announced INTEGER NOT NULL,
        extra TEXT
    )""",
    "CREATE INDEX events_at ON events(at)",
)

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

# Upgrades from schema version N to N + 1, run in one transaction on open. Add an entry
# (and bump SCHEMA_VERSION) when the schema changes; never edit a shipped one.
Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: dict[int, Migration] = {}


class HistoryError(AgentError):
    """The history file cannot be used (locked by another agent, unreadable, disk full)."""

    title = "History unavailable"


class _Unusable(Exception):
    """The file opens but is not a history this agent can use: move it aside."""


# ==== records ==================================================================


@dataclass(frozen=True, slots=True)
class Uptime:
    """One service's uptime over a window: the up fraction of the known time (None when no
    up or down time is known), and from when the window holds data (its start when the
    history reaches back that far, later for a young history or a new service)."""

    fraction: float | None
    covered_from: float


@dataclass(frozen=True, slots=True)
class _Run:
    id: int
    keyset: int
    first_at: float
    last_at: float
    interval: float
    overall: str
    links: str
    states: str


def _gap_limit(interval: float) -> float:
    return GAP_FACTOR * interval + GAP_SLACK_S


def _encode(snapshot: Snapshot) -> tuple[str, str, str, str]:
    """(keyset JSON, overall, links, states) of one sweep."""
    shape: list[list[object]] = []
    links: list[str] = []
    states: list[str] = []
    for ns in snapshot.nodes:
        shape.append([ns.node.id, [s.service.name for s in ns.services]])
        links.append(_LINK_CODE.get(ns.link, "?"))
        states.extend(_STATE_CODE.get(s.result.state, "?") for s in ns.services)
    keys = json.dumps(shape, ensure_ascii=False, separators=(",", ":"))
    return keys, _HEALTH_CODE.get(snapshot.overall, "-"), "".join(links), "".join(states)


def _decode_keyset(text: str) -> tuple[tuple[str, str], ...]:
    """The (node id, service name) of each state character, in order."""
    keys: list[tuple[str, str]] = []
    for node_id, services in json.loads(text):
        keys.extend((str(node_id), str(name)) for name in services)
    return tuple(keys)


def _is_column(f: dataclasses.Field[Any]) -> bool:
    """An event field without a default has a column of its own; the others go to `extra`."""
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


_FIELD_TYPES = typing.get_type_hints(EventFields)
_COLUMN_FIELDS = tuple(f for f in dataclasses.fields(EventFields) if _is_column(f))
_EXTRA_FIELDS = tuple(f for f in dataclasses.fields(EventFields) if not _is_column(f))
EVENT_COLUMNS = tuple(RECORD_FIELD_NAMES.get(f.name, f.name) for f in _COLUMN_FIELDS)
_EVENT_SELECT = f"SELECT id, {', '.join(EVENT_COLUMNS)}, extra FROM events"
_EVENT_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, extra) "
    f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})"
)


def _column_value(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return str(value)  # an enum member's text
    return value


def _event_row(event: Event) -> tuple[object, ...]:
    extra: dict[str, object] = {}
    for f in _EXTRA_FIELDS:
        value = getattr(event, f.name)
        if value != f.default:
            extra[f.name] = list(value) if isinstance(value, tuple) else value
    return (
        *(_column_value(getattr(event, f.name)) for f in _COLUMN_FIELDS),
        json.dumps(extra, ensure_ascii=False, default=str) if extra else None,
    )


def _read_value(hint: object, value: object, default: object) -> object:
    """`value` read as a field of type `hint`, `default` when it is not one (a newer
    agent's row, or one edited by hand)."""
    options = typing.get_args(hint)
    if type(None) in options:
        if value is None:
            return None
        (hint,) = (o for o in options if o is not type(None))
    if isinstance(hint, TypeVar) or hint is str:  # the kind and the reason stay text
        return value if isinstance(value, str) else default
    if hint is float:
        return float(value) if isinstance(value, int | float) else default
    if hint is bool:
        return bool(value) if isinstance(value, int) else default
    if typing.get_origin(hint) is tuple:
        return tuple(str(v) for v in value) if isinstance(value, list) else default
    raise TypeError(f"the history cannot store an event field of type {hint}")


def _record_of(row: tuple[Any, ...]) -> EventRecord:
    rid, *columns, extra_text = row
    extra: dict[str, Any] = {}
    if extra_text:
        with contextlib.suppress(ValueError):
            loaded = json.loads(extra_text)
            if isinstance(loaded, dict):
                extra = loaded
    values: dict[str, Any] = {}
    for f, value in zip(_COLUMN_FIELDS, columns, strict=True):
        hint = _FIELD_TYPES[f.name]
        values[f.name] = _read_value(hint, value, value)
    for f in _EXTRA_FIELDS:
        values[f.name] = _read_value(_FIELD_TYPES[f.name], extra.get(f.name), f.default)
    return EventRecord(id=int(rid), **values)


# ==== the store ================================================================


def _errcode(error: sqlite3.Error) -> int:
    return int(getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF


def _is_busy(error: sqlite3.Error) -> bool:
    return _errcode(error) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        "locked" in str(error).lower()
    )


def _is_corrupt(error: sqlite3.Error) -> bool:
    return _errcode(error) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class History:
    """The SQLite history of one agent; a context manager. Use it from one thread only."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        sweep_retention_s: float = DEFAULT_SWEEP_RETENTION_S,
        event_retention_s: float = DEFAULT_EVENT_RETENTION_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        prune_every: int = DEFAULT_PRUNE_EVERY,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._sweep_retention_s = sweep_retention_s
        self._event_retention_s = event_retention_s
        self._max_bytes = max_bytes
        self._busy_timeout_s = busy_timeout_s
        self._prune_every = max(1, prune_every)
        self._writes_since_prune = 0
        self._pruned = False
        self._keyset_ids: dict[str, int] = {}
        self._keysets: dict[int, tuple[tuple[str, str], ...]] = {}
        self._last_run: _Run | None = None
        # state_since, kept up to date by this writer's record_sweep: valid while the
        # newest run in the file is _since_run (None: ask the file)
        self._since: dict[tuple[str, str], float] | None = None
        self._since_run: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._open()

    # ---- opening ---------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise HistoryError(f"cannot create the folder for {self.path}: {error}") from error
        try:
            self._conn = self._connect()
        except _Unusable as why:
            self._move_aside(str(why))
            self._conn = self._connect_fresh()
        except sqlite3.Error as error:
            if _is_busy(error):
                raise self._locked_error() from error
            if not _is_corrupt(error):
                raise HistoryError(f"cannot open {self.path}: {error}") from error
            self._move_aside(f"it is damaged ({error})")
            self._conn = self._connect_fresh()
        try:
            self._last_run = self._load_last_run()
        except sqlite3.Error as error:
            self.close()
            raise HistoryError(f"cannot read the history {self.path}: {error}") from error

    def _connect_fresh(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except (_Unusable, sqlite3.Error) as error:
            raise HistoryError(f"cannot start a new history at {self.path}: {error}") from error

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise _Unusable(
                    f"it was written by a newer tailnet-agent (schema {version}; "
                    f"this one reads up to {SCHEMA_VERSION})"
                )
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if version == 0 and tables:
                raise _Unusable("it is not a tailnet-agent history")
            check = conn.execute("PRAGMA quick_check(1)").fetchone()
            if check is None or check[0] != "ok":
                raise _Unusable(f"it is damaged ({check[0] if check else 'no answer'})")
            if version == 0:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only before any table
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("history: %s is not in WAL mode (%s)", self.path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")
            if version < SCHEMA_VERSION:
                self._upgrade(conn, version)
        except BaseException:
            conn.close()
            raise
        return conn

    def _upgrade(self, conn: sqlite3.Connection, version: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                current = SCHEMA_VERSION
            while current < SCHEMA_VERSION:
                step = MIGRATIONS.get(current)
                if step is None:
                    raise _Unusable(f"no migration from schema {current}")
                step(conn)
                current += 1
            conn.execute(f"PRAGMA user_version = {current}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        if version:
            log.info("history: %s upgraded from schema %d to %d", self.path, version, current)

    def _move_aside(self, why: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._clock()))
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            self.path.replace(target)
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists():
                wal.replace(target.with_name(target.name + "-wal"))
            self.path.with_name(self.path.name + "-shm").unlink(missing_ok=True)
        except OSError as error:
            raise HistoryError(
                f"{self.path} cannot be used ({why}) nor moved aside: {error}"
            ) from error
        log.warning("history: %s %s; moved it to %s and started a new one", self.path, why, target)

    def _locked_error(self) -> HistoryError:
        return HistoryError(
            f"{self.path} is locked by another process (another tailnet-agent running?); "
            f"waited {self._busy_timeout_s:g} s"
        )

    def _load_last_run(self) -> _Run | None:
        row = (
            self._db()
            .execute(
                "SELECT id, keyset, first_at, last_at, interval, overall, links, states "
                "FROM runs ORDER BY id DESC LIMIT 1"
            )
            .fetchone()
        )
        return None if row is None else _Run(*row)

    # ---- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise HistoryError(f"the history {self.path} is closed")
        return self._conn

    # ---- writing ---------------------------------------------------------------

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one committed transaction; recover once from a damaged file."""
        for attempt in (1, 2):
            conn = self._db()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as error:
                if _is_busy(error):
                    raise self._locked_error() from error
                if _is_corrupt(error) and attempt == 1:
                    self._recover(error)
                    continue
                raise HistoryError(f"cannot write the history {self.path}: {error}") from error
        raise AssertionError("unreachable")

    def _recover(self, error: sqlite3.Error) -> None:
        self.close()
        self._keyset_ids.clear()
        self._keysets.clear()
        self._last_run = None
        self._since = None
        self._move_aside(f"became damaged ({error})")
        self._conn = self._connect_fresh()

    def _after_write(self) -> None:
        self._writes_since_prune += 1
        if self._pruned and self._writes_since_prune < self._prune_every:
            return
        try:
            self.prune()
        except HistoryError as error:
            log.warning("history: pruning failed: %s", error.message)

    def _keyset_id(self, conn: sqlite3.Connection, keys: str) -> int:
        known = self._keyset_ids.get(keys)
        if known is not None:
            return known
        row = conn.execute("SELECT id FROM keysets WHERE nodes = ?", (keys,)).fetchone()
        if row is None:
            cursor = conn.execute("INSERT INTO keysets (nodes) VALUES (?)", (keys,))
            return int(cursor.lastrowid or 0)
        return int(row[0])

    def record_sweep(self, snapshot: Snapshot) -> None:
        """Record one judged sweep (extends the current run when nothing changed)."""
        keys, overall, links, states = _encode(snapshot)
        interval = float(snapshot.topology.defaults.interval_s)
        at = float(snapshot.at)

        def work(conn: sqlite3.Connection) -> tuple[int, _Run]:
            keyset = self._keyset_id(conn, keys)
            last = self._last_run
            if (
                last is not None
                and (last.keyset, last.overall, last.links, last.states, last.interval)
                == (keyset, overall, links, states, interval)
                and last.last_at <= at <= last.last_at + _gap_limit(interval)
            ):
                cursor = conn.execute(
                    "UPDATE runs SET last_at = ?, sweeps = sweeps + 1 WHERE id = ?",
                    (at, last.id),
                )
                if cursor.rowcount == 1:
                    return keyset, dataclasses.replace(last, last_at=at)
            cursor = conn.execute(
                "INSERT INTO runs (keyset, first_at, last_at, interval, sweeps, overall, "
                "links, states) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                (keyset, at, at, interval, overall, links, states),
            )
            run_id = int(cursor.lastrowid or 0)
            return keyset, _Run(run_id, keyset, at, at, interval, overall, links, states)

        previous = self._last_run
        keyset, run = self._write(work)
        self._keyset_ids[keys] = keyset
        self._last_run = run
        self._follow_since(previous, run)
        self._after_write()

    def _follow_since(self, previous: _Run | None, run: _Run) -> None:
        """Carry the state_since answer forward by one sweep, as the walk would find it."""
        if self._since is None or previous is None or self._since_run != previous.id:
            self._since = None
            return
        if run.id != previous.id:
            current = dict(zip(self._keys(run.keyset), run.states, strict=False))
            gap = run.first_at - previous.last_at
            if abs(gap) > _gap_limit(previous.interval):
                self._since = dict.fromkeys(current, run.first_at)
            else:
                before = dict(zip(self._keys(previous.keyset), previous.states, strict=False))
                self._since = {
                    key: self._since.get(key, run.first_at)
                    if before.get(key) == state
                    else run.first_at
                    for key, state in current.items()
                }
        self._since_run = run.id

    def record_events(self, events: Iterable[Event]) -> None:
        """Record events, announced or not (one transaction; nothing to do for none)."""
        rows = [_event_row(e) for e in events]
        if not rows:
            return
        self._write(lambda conn: conn.executemany(_EVENT_INSERT, rows))
        self._after_write()

    # ---- size ------------------------------------------------------------------

    def _pages(self) -> tuple[int, int, int]:
        conn = self._db()
        count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        return count, free, size

    def size_bytes(self) -> int:
        """The database's size in bytes (pages in use and free, WAL content included)."""
        count, _, size = self._pages()
        return count * size

    def prune(self, now: float | None = None) -> None:
        """Delete records past their retention; shrink the file when it is over the cap."""
        now = self._clock() if now is None else now
        sweep_cutoff = now - self._sweep_retention_s
        event_cutoff = now - self._event_retention_s

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM runs WHERE last_at < ?", (sweep_cutoff,))
            conn.execute(  # the oldest run left may begin before the cutoff: trim it
                "UPDATE runs SET first_at = ?1 WHERE first_at < ?1 AND id = "
                "(SELECT id FROM runs ORDER BY last_at LIMIT 1)",
                (sweep_cutoff,),
            )
            conn.execute("DELETE FROM events WHERE at < ?", (event_cutoff,))
            conn.execute("DELETE FROM keysets WHERE id NOT IN (SELECT keyset FROM runs)")

        self._write(work)
        self._keyset_ids.clear()
        self._keysets.clear()
        self._last_run = self._load_last_run()
        self._since = None
        self._pruned = True
        self._writes_since_prune = 0
        count, free, size = self._pages()
        if (count - free) * size > self._max_bytes:
            self._prune_hard()
        elif free > max(256, count // 4):
            with contextlib.suppress(sqlite3.Error):
                self._db().execute("PRAGMA incremental_vacuum")

    def _prune_hard(self) -> None:
        """Over the cap: drop the oldest half of each table until under half the cap."""
        for _ in range(20):
            count, free, size = self._pages()
            if (count - free) * size <= self._max_bytes // 2:
                break

            def work(conn: sqlite3.Connection) -> int:
                removed = 0
                for table in ("runs", "events"):
                    total = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                    half = (total + 1) // 2
                    cursor = conn.execute(
                        f"DELETE FROM {table} WHERE id IN "
                        f"(SELECT id FROM {table} ORDER BY id LIMIT ?)",
                        (half,),
                    )
                    removed += max(0, cursor.rowcount)
                conn.execute("DELETE FROM keysets WHERE id NOT IN (SELECT keyset FROM runs)")
                return removed

            if self._write(work) == 0:
                break
        self._keyset_ids.clear()
        self._keysets.clear()
        self._last_run = self._load_last_run()
        self._since = None
        before = self.path.stat().st_size if self.path.exists() else 0
        try:
            self._db().execute("VACUUM")
            self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:
            log.warning("history: VACUUM failed: %s", error)
        log.warning(
            "history: %s was over %d MB; dropped its oldest records (%d -> %d bytes)",
            self.path,
            self._max_bytes // (1024 * 1024),
            before,
            self.path.stat().st_size,
        )

    # ---- reading ---------------------------------------------------------------

    def _read(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[Any]:
        try:
            return self._db().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            if _is_busy(error):
                raise self._locked_error() from error
            raise HistoryError(f"cannot read the history {self.path}: {error}") from error

    def _iter(self, sql: str, params: tuple[object, ...] = ()) -> Generator[Any, None, None]:
        try:
            yield from self._db().execute(sql, params)
        except sqlite3.Error as error:
            if _is_busy(error):
                raise self._locked_error() from error
            raise HistoryError(f"cannot read the history {self.path}: {error}") from error

    def _keys(self, keyset: int) -> tuple[tuple[str, str], ...]:
        keys = self._keysets.get(keyset)
        if keys is None:
            rows = self._read("SELECT nodes FROM keysets WHERE id = ?", (keyset,))
            try:
                keys = _decode_keyset(rows[0][0]) if rows else ()
            except (ValueError, TypeError):
                keys = ()
            self._keysets[keyset] = keys
        return keys

    def events(self, since: float | None = None, limit: int | None = None) -> list[EventRecord]:
        """Events at or after `since` (all when None), the newest `limit`, newest last."""
        where = "" if since is None else "WHERE at >= ?"
        params: tuple[object, ...] = () if since is None else (since,)
        if limit is None:
            rows = self._read(f"{_EVENT_SELECT} {where} ORDER BY at, id", params)
        else:
            rows = self._read(
                f"{_EVENT_SELECT} {where} ORDER BY at DESC, id DESC LIMIT ?",
                (*params, max(0, limit)),
            )
            rows.reverse()
        return [_record_of(tuple(r)) for r in rows]

    def latest_changes(self) -> list[EventRecord]:
        """The latest event of each subject (kind family, node id, service), oldest first:
        what a restarting monitor carries forward, and whether the last run stopped."""
        rows = self._read(
            f"{_EVENT_SELECT} WHERE id IN (SELECT MAX(id) FROM events "
            "GROUP BY substr(kind, 1, instr(kind, '_') - 1), IFNULL(node_id, ''), "
            "IFNULL(service, '')) ORDER BY at, id"
        )
        return [_record_of(tuple(r)) for r in rows]

    def uptime(self, since: float, now: float) -> dict[tuple[str, str], float | None]:
        """Per (node id, service): the up fraction of the known time in [since, now].

        Time-weighted: a sweep's state holds until the next sweep (one interval before a
        gap). Unknown and skipped time, and gaps, are left out; None when a service has
        no up or down time in the window.
        """
        return {key: u.fraction for key, u in self.uptime_detail(since, now).items()}

    def uptime_detail(self, since: float, now: float) -> dict[tuple[str, str], Uptime]:
        """`uptime`, with from when each service's data covers the window (`Uptime`)."""
        if now <= since:
            return {}
        spans = self._read(
            _UPTIME_SQL, {"since": since, "now": now, "factor": GAP_FACTOR, "slack": GAP_SLACK_S}
        )
        up: dict[tuple[str, str], float] = {}
        down: dict[tuple[str, str], float] = {}
        start: dict[tuple[str, str], float] = {}
        for keyset, states, length, first in spans:
            if not length:
                continue
            for key, code in zip(self._keys(keyset), states, strict=False):
                up.setdefault(key, 0.0)
                down.setdefault(key, 0.0)
                if code == "u":
                    up[key] += length
                elif code == "d":
                    down[key] += length
                else:
                    continue
                start[key] = min(start.get(key, now), float(first))
        result: dict[tuple[str, str], Uptime] = {}
        for key, up_s in up.items():
            known = up_s + down[key]
            fraction = up_s / known if known > 0 else None
            result[key] = Uptime(fraction, start.get(key, now))
        return result

    def state_since(self, now: float) -> dict[tuple[str, str], float]:
        """Per (node id, service): when its current state began, as seen without a gap.

        Empty when the latest sweep is too old to say what the current state is.
        """
        newest = self._read("SELECT id, last_at, interval FROM runs ORDER BY id DESC LIMIT 1")
        if not newest:
            return {}
        run_id, last_at, interval = newest[0]
        if now - last_at > _gap_limit(interval):
            return {}
        if self._since is not None and self._since_run == run_id:
            return dict(self._since)
        rows = self._iter(
            "SELECT keyset, first_at, last_at, interval, states FROM runs ORDER BY id DESC"
        )
        try:
            since = self._since_from(rows)
        finally:
            rows.close()
        self._since, self._since_run = dict(since), run_id
        return since

    def _since_from(self, rows: Iterator[Any]) -> dict[tuple[str, str], float]:
        """Walk back from the newest run while each service keeps its current state."""
        latest = next(rows, None)
        if latest is None:
            return {}
        keyset, first_at, last_at, interval, states = latest
        current = dict(zip(self._keys(keyset), states, strict=False))
        since: dict[tuple[str, str], float] = {}
        open_keys = set(current)
        start = float(first_at)  # the oldest run so far in which every open key is unchanged
        matching: set[tuple[int, str]] = set()  # (keyset, states) that match every open key
        for keyset, first_at, last_at, interval, states in rows:
            gap = start - last_at
            if abs(gap) > _gap_limit(interval):
                break
            if (keyset, states) not in matching:
                older = dict(zip(self._keys(keyset), states, strict=False))
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
