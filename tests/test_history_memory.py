"""The history's connection holds at most its own page cache, however big the file grows.

The monitor keeps one connection for as long as the agent runs, and reads the whole file when
it opens it (quick_check) and the last 24 h after each sweep with events: with SQLite's
default cache (2000 KiB) the idle agent's RSS grew with its history up to that default (the
soak's creep, docs/RELIABILITY.md). Measured with SQLite's own counter of its heap
(sqlite3_memory_used, the library Python's sqlite3 module is linked to).
"""

from __future__ import annotations

import ctypes
import sqlite3
import sys
from pathlib import Path

import pytest

from agent.edges.history import History
from agent.edges.history.file import CACHE_KIB

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads libsqlite3 through ctypes")

FILLER_MB = 4  # twice SQLite's default cache


def _sqlite_heap_kib() -> float:
    import _sqlite3

    used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return float(used()) / 1024


def _big_history(path: Path) -> None:
    with History(path):
        pass
    raw = sqlite3.connect(path)
    with raw:  # pages a full read goes through, as years of sweeps would be
        raw.execute("CREATE TABLE filler (b BLOB)")
        raw.executemany("INSERT INTO filler VALUES (randomblob(4000))", [()] * (FILLER_MB * 256))
    raw.close()


def test_opening_a_big_history_caches_no_more_than_its_cap(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    _big_history(db)
    assert db.stat().st_size > FILLER_MB * 1024 * 1024

    before = _sqlite_heap_kib()
    default = sqlite3.connect(db)  # the library's default cache, for contrast
    assert default.execute("PRAGMA quick_check(1)").fetchone() == ("ok",)
    held_by_default = _sqlite_heap_kib() - before
    default.close()

    before = _sqlite_heap_kib()
    with History(db) as history:  # opening runs the same quick_check
        held = _sqlite_heap_kib() - before
        history.uptime(0.0, 1.0)
    assert held_by_default > 1800  # the measure sees a full default cache
    assert held < CACHE_KIB * 1.2 + 200, (held, held_by_default)
