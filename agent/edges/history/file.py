"""The history's SQLite file: opening it, its schema, transactions, and recovery.

WAL mode with synchronous=NORMAL, each write its own committed transaction. A file
that is damaged, not ours, or from a newer schema is moved aside as
``history.sqlite3.corrupt-<time>`` and a fresh one started (logged, not raised), on
opening and once more on a write that finds it damaged; a file deleted or replaced while in
use (SQLite would go on writing to the deleted one, losing every record), or overwritten so
that it no longer starts as a database, is noticed at the next write, which starts a fresh
one (logged; an overwritten file is moved aside as damaged); a database locked by another writer is
waited for ``busy_timeout_s`` and then refused with a HistoryError.

The header is read through one descriptor opened with the connection and closed after it:
SQLite's locks on the file are POSIX advisory locks, which belong to the process and go
when it closes ANY descriptor of the file — opening and closing the file for each look
dropped them, and the next connection of another process to close (a `history` command, a
sqlite3 shell) took itself for the last one, checkpointed and removed the WAL this agent
was still writing: every later record lost, while each write reported success
(https://www.sqlite.org/howtocorrupt.html, 2.2).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sqlite3
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

from agent.edges.history import schema
from agent.errors import AgentError

__all__ = ["CACHE_KIB", "HistoryError", "HistoryFile"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_JOURNAL_SIZE_LIMIT = 1024 * 1024
_WAL_AUTOCHECKPOINT_PAGES = 256
# SQLite's page cache, per connection (its default is 2000 KiB). The monitor's one connection
# lives as long as the agent, and every pass over the history (the open's quick_check, the
# 24 h uptime after each sweep with events) leaves the pages it read in the cache: the idle
# agent grew with its history up to that default. The OS caches the file's pages either way;
# a page read again costs a pread. 512 KiB holds the 24 h window of the worst history
# tests/bench/history.py writes (a service flipping every sweep): its uptime is as fast.
CACHE_KIB = 512
_SQLITE_HEADER = b"SQLite format 3\x00"


class HistoryError(AgentError):
    """The history file cannot be used (locked by another agent, unreadable, disk full)."""

    title = "History unavailable"


class _Unusable(Exception):
    """The file opens but is not a history this agent can use: move it aside."""


def _errcode(error: sqlite3.Error) -> int:
    return int(getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF


def _is_busy(error: sqlite3.Error) -> bool:
    return _errcode(error) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        "locked" in str(error).lower()
    )


def _is_corrupt(error: sqlite3.Error) -> bool:
    return _errcode(error) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class HistoryFile:
    """One open history file, at the current schema. `on_replaced` is called when a file
    found damaged by a write is replaced by a fresh one (what was read from it is void)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float],
        busy_timeout_s: float,
        on_replaced: Callable[[], None],
    ) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._clock = clock
        self._on_replaced = on_replaced
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file opened
        self._header: io.FileIO | None = None  # the file's header, read while it is open
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise HistoryError(f"cannot create the folder for {self.path}: {error}") from error
        try:
            conn = self._connect()
        except _Unusable as why:
            self._move_aside(str(why))
            conn = self._connect_fresh()
        except sqlite3.Error as error:
            if _is_busy(error):
                raise self.locked_error() from error
            if not _is_corrupt(error):
                raise HistoryError(f"cannot open {self.path}: {error}") from error
            self._move_aside(f"it is damaged ({error})")
            conn = self._connect_fresh()
        self._use(conn)

    # ---- opening ---------------------------------------------------------------

    def _use(self, conn: sqlite3.Connection) -> None:
        """Make `conn` the open connection, and note which file it opened."""
        self._conn = conn
        self._identity = self._on_disk()
        try:
            self._header = io.FileIO(self.path, "r")
        except OSError:
            self._header = None  # no header check then; SQLite reports what it finds

    def _connect_fresh(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except (_Unusable, sqlite3.Error) as error:
            raise HistoryError(f"cannot start a new history at {self.path}: {error}") from error

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # before quick_check reads it all
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > schema.SCHEMA_VERSION:
                raise _Unusable(
                    f"it was written by a newer tailnet-agent (schema {version}; "
                    f"this one reads up to {schema.SCHEMA_VERSION})"
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
            if version < schema.SCHEMA_VERSION:
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
                for statement in schema.TABLES:
                    conn.execute(statement)
                current = schema.SCHEMA_VERSION
            while current < schema.SCHEMA_VERSION:
                step = schema.MIGRATIONS.get(current)
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

    def locked_error(self) -> HistoryError:
        return HistoryError(
            f"{self.path} is locked by another process (another tailnet-agent running?); "
            f"waited {self.busy_timeout_s:g} s"
        )

    # ---- use -------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None
        if self._header is not None:  # only now: closing it drops SQLite's locks
            self._header.close()
            self._header = None

    def db(self) -> sqlite3.Connection:
        """The open connection (a HistoryError once closed)."""
        if self._conn is None:
            raise HistoryError(f"the history {self.path} is closed")
        return self._conn

    def read(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[Any]:
        """All rows of one query; SQLite's errors as HistoryError."""
        try:
            return self.db().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise self._read_error(error) from error

    def iterate(self, sql: str, params: tuple[object, ...] = ()) -> Generator[Any, None, None]:
        """The rows of one query as they come (close it to stop early)."""
        try:
            yield from self.db().execute(sql, params)
        except sqlite3.Error as error:
            raise self._read_error(error) from error

    def _read_error(self, error: sqlite3.Error) -> HistoryError:
        if _is_busy(error):
            return self.locked_error()
        return HistoryError(f"cannot read the history {self.path}: {error}")

    def _on_disk(self) -> tuple[int, int] | None:
        """(device, inode) of the file at the path now; None when there is none."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _header_lost(self) -> bool:
        """The file no longer starts as an SQLite database (overwritten while in use: SQLite
        itself would only notice at a checkpoint, mixing its pages into the garbage)."""
        if self._header is None:
            return False
        try:
            self._header.seek(0)
            head = self._header.read(len(_SQLITE_HEADER))
        except OSError:
            return False
        return bool(head) and head != _SQLITE_HEADER

    def _reopen_if_gone(self) -> None:
        """A file deleted, replaced or overwritten under the open connection: start afresh."""
        if self._conn is None:
            return
        now = self._on_disk()
        if now == self._identity:
            if self._header_lost():
                self._replace("was overwritten while in use (it is no SQLite database now)")
            return
        why = "was deleted" if now is None else "was replaced by another file"
        self.close()
        self._on_replaced()
        with contextlib.suppress(OSError):  # the old file's journal, if it outlived it
            for suffix in ("-wal", "-shm"):
                if now is None:
                    self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self._use(self._connect_fresh())
        log.warning(
            "history: %s %s while in use; started a new one (what it held is lost)", self.path, why
        )

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one committed transaction; recover once from a damaged file."""
        self._reopen_if_gone()
        for attempt in (1, 2):
            conn = self.db()
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
                    raise self.locked_error() from error
                if _is_corrupt(error) and attempt == 1:
                    self._replace(f"became damaged ({error})")
                    continue
                raise HistoryError(f"cannot write the history {self.path}: {error}") from error
        raise AssertionError("unreachable")

    def _replace(self, why: str) -> None:
        self.close()
        self._on_replaced()
        self._move_aside(why)
        self._use(self._connect_fresh())

    def pages(self) -> tuple[int, int, int]:
        """(page count, free pages, page size)."""
        conn = self.db()
        count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        return count, free, size
