"""The History: one agent's record of its sweeps and events, and the questions it
answers. Writes extend runs and keep the `state_since` answer up to date; retention runs
on the first write after opening (so readers such as the `history` command never
write) and then every ``prune_every`` writes. A History belongs to the thread that
opened it.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from agent.core.events import Event, EventRecord
from agent.core.model import ServiceKey, Snapshot
from agent.edges.history import queries, retention
from agent.edges.history.event_rows import EVENT_INSERT, event_row
from agent.edges.history.file import HistoryError, HistoryFile
from agent.edges.history.queries import Keys, Uptime
from agent.edges.history.schema import Run, encode_sweep, gap_limit

__all__ = ["MONITOR_BUSY_TIMEOUT_S", "History"]

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_S = 5.0
# The running monitor's wait, short: it writes from its event loop, so each wait holds up
# the sweep and the icon. In WAL mode only a writer blocks a writer, and the single-instance
# lock leaves none but a foreign process (a sqlite3 shell, a backup); a brief holder is waited
# out, and for a long one waiting 5 s would lose the write all the same.
MONITOR_BUSY_TIMEOUT_S = 0.25
DEFAULT_PRUNE_EVERY = 1000


class History:
    """The SQLite history of one agent; a context manager. Use it from one thread only."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        sweep_retention_s: float = retention.DEFAULT_SWEEP_RETENTION_S,
        event_retention_s: float = retention.DEFAULT_EVENT_RETENTION_S,
        max_bytes: int = retention.DEFAULT_MAX_BYTES,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        prune_every: int = DEFAULT_PRUNE_EVERY,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._sweep_retention_s = sweep_retention_s
        self._event_retention_s = event_retention_s
        self._max_bytes = max_bytes
        self._prune_every = max(1, prune_every)
        self._writes_since_prune = 0
        self._pruned = False
        self._keyset_ids: dict[str, int] = {}
        self._keysets: dict[int, Keys] = {}
        self._last_run: Run | None = None
        # state_since, kept up to date by this writer's record_sweep: valid while the
        # newest run in the file is _since_run (None: ask the file)
        self._since: dict[ServiceKey, float] | None = None
        self._since_run: int | None = None
        self._file = HistoryFile(
            self.path, clock=clock, busy_timeout_s=busy_timeout_s, on_replaced=self._forget
        )
        try:
            self._last_run = queries.last_run(self._file)
        except sqlite3.Error as error:
            self.close()
            raise HistoryError(f"cannot read the history {self.path}: {error}") from error

    def _forget(self) -> None:
        """What was read from the file no longer holds (pruned, or a fresh file)."""
        self._keyset_ids.clear()
        self._keysets.clear()
        self._last_run = None
        self._since = None

    # ---- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------

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
        keys, overall, links, states = encode_sweep(snapshot)
        interval = float(snapshot.topology.defaults.interval_s)
        at = float(snapshot.at)

        def work(conn: sqlite3.Connection) -> tuple[int, Run]:
            keyset = self._keyset_id(conn, keys)
            last = self._last_run
            if (
                last is not None
                and (last.keyset, last.overall, last.links, last.states, last.interval)
                == (keyset, overall, links, states, interval)
                and last.last_at <= at <= last.last_at + gap_limit(interval)
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
            return keyset, Run(run_id, keyset, at, at, interval, overall, links, states)

        previous = self._last_run
        keyset, run = self._file.write(work)
        self._keyset_ids[keys] = keyset
        self._last_run = run
        self._follow_since(previous, run)
        self._after_write()

    def _follow_since(self, previous: Run | None, run: Run) -> None:
        """Carry the state_since answer forward by one sweep, as the walk would find it."""
        if self._since is None or previous is None or self._since_run != previous.id:
            self._since = None
            return
        if run.id != previous.id:
            current = dict(zip(self._keys(run.keyset), run.states, strict=False))
            gap = run.first_at - previous.last_at
            if abs(gap) > gap_limit(previous.interval):
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
        rows = [event_row(e) for e in events]
        if not rows:
            return
        self._file.write(lambda conn: conn.executemany(EVENT_INSERT, rows))
        self._after_write()

    # ---- size ------------------------------------------------------------------

    def size_bytes(self) -> int:
        """The database's size in bytes (pages in use and free, WAL content included)."""
        count, _, size = self._file.pages()
        return count * size

    def prune(self, now: float | None = None) -> None:
        """Delete records past their retention; shrink the file when it is over the cap."""
        now = self._clock() if now is None else now
        try:
            retention.prune(
                self._file,
                sweep_cutoff=now - self._sweep_retention_s,
                event_cutoff=now - self._event_retention_s,
                max_bytes=self._max_bytes,
            )
        finally:
            self._forget()  # even half done: keysets and runs may be gone
        self._last_run = queries.last_run(self._file)
        self._pruned = True
        self._writes_since_prune = 0

    # ---- reading ---------------------------------------------------------------

    def _keys(self, keyset: int) -> Keys:
        keys = self._keysets.get(keyset)
        if keys is None:
            keys = self._keysets[keyset] = queries.keyset_keys(self._file, keyset)
        return keys

    def events(self, since: float | None = None, limit: int | None = None) -> list[EventRecord]:
        """Events at or after `since` (all when None), the newest `limit`, newest last."""
        return queries.read_events(self._file, since, limit)

    def latest_changes(self) -> list[EventRecord]:
        """The latest event of each subject (kind family, node id, service), oldest first:
        what a restarting monitor carries forward, and whether the last run stopped."""
        return queries.latest_changes(self._file)

    def uptime(self, since: float, now: float) -> dict[ServiceKey, float | None]:
        """Per (node id, service): the up fraction of the known time in [since, now].

        Time-weighted: a sweep's state holds until the next sweep (one interval before a
        gap). Unknown and skipped time, and gaps, are left out; None when a service has
        no up or down time in the window.
        """
        return {key: u.fraction for key, u in self.uptime_detail(since, now).items()}

    def uptime_detail(self, since: float, now: float) -> dict[ServiceKey, Uptime]:
        """`uptime`, with from when each service's data covers the window (`Uptime`)."""
        return queries.uptime_detail(self._file, self._keys, since, now)

    def state_since(self, now: float) -> dict[ServiceKey, float]:
        """Per (node id, service): when its current state began, as seen without a gap.

        Empty when the latest sweep is too old to say what the current state is.
        """
        newest = self._file.read("SELECT id, last_at, interval FROM runs ORDER BY id DESC LIMIT 1")
        if not newest:
            return {}
        run_id, last_at, interval = newest[0]
        if now - last_at > gap_limit(interval):
            return {}
        if self._since is not None and self._since_run == run_id:
            return dict(self._since)
        rows = self._file.iterate(
            "SELECT keyset, first_at, last_at, interval, states FROM runs ORDER BY id DESC"
        )
        try:
            since = queries.since_from(rows, self._keys)
        finally:
            rows.close()
        self._since, self._since_run = dict(since), run_id
        return since
