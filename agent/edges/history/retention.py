"""How long the history keeps what, and how its file stays small.

Runs older than 7 days (the oldest one left is trimmed to the cutoff) and events older
than 30 days are deleted. Deleted pages are reused; when a quarter of the file is free,
``PRAGMA incremental_vacuum`` gives it back. A file above ``max_bytes`` is pruned harder
(oldest halves first) and then VACUUMed: the only VACUUM. The History decides when to
prune (agent.edges.history.store).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3

from agent.edges.history.file import HistoryFile

__all__ = [
    "DEFAULT_EVENT_RETENTION_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SWEEP_RETENTION_S",
    "prune",
]

log = logging.getLogger(__name__)

DAY_S = 86400.0
DEFAULT_SWEEP_RETENTION_S = 7 * DAY_S
DEFAULT_EVENT_RETENTION_S = 30 * DAY_S
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

_DROP_UNUSED_KEYSETS = "DELETE FROM keysets WHERE id NOT IN (SELECT keyset FROM runs)"


def prune(file: HistoryFile, *, sweep_cutoff: float, event_cutoff: float, max_bytes: int) -> None:
    """Delete runs that ended before `sweep_cutoff` and events before `event_cutoff`;
    shrink the file when it is over `max_bytes`. Keysets and runs may go: what was read
    of them is void."""

    def work(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM runs WHERE last_at < ?", (sweep_cutoff,))
        conn.execute(  # the oldest run left may begin before the cutoff: trim it
            "UPDATE runs SET first_at = ?1 WHERE first_at < ?1 AND id = "
            "(SELECT id FROM runs ORDER BY last_at LIMIT 1)",
            (sweep_cutoff,),
        )
        conn.execute("DELETE FROM events WHERE at < ?", (event_cutoff,))
        conn.execute(_DROP_UNUSED_KEYSETS)

    file.write(work)
    count, free, size = file.pages()
    if (count - free) * size > max_bytes:
        _prune_hard(file, max_bytes)
    elif free > max(256, count // 4):
        with contextlib.suppress(sqlite3.Error):
            file.db().execute("PRAGMA incremental_vacuum")


def _prune_hard(file: HistoryFile, max_bytes: int) -> None:
    """Over the cap: drop the oldest half of each table until under half the cap."""
    for _ in range(20):
        count, free, size = file.pages()
        if (count - free) * size <= max_bytes // 2:
            break

        def work(conn: sqlite3.Connection) -> int:
            removed = 0
            for table in ("runs", "events"):
                total = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 — table from the literal tuple above
                half = (total + 1) // 2
                cursor = conn.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT ?)",  # noqa: S608 — table from the literal tuple above
                    (half,),
                )
                removed += max(0, cursor.rowcount)
            conn.execute(_DROP_UNUSED_KEYSETS)
            return removed

        if file.write(work) == 0:
            break
    before = file.path.stat().st_size if file.path.exists() else 0
    try:
        file.db().execute("VACUUM")
        file.db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as error:
        log.warning("history: VACUUM failed: %s", error)
    log.warning(
        "history: %s was over %d MB; dropped its oldest records (%d -> %d bytes)",
        file.path,
        max_bytes // (1024 * 1024),
        before,
        file.path.stat().st_size,
    )
