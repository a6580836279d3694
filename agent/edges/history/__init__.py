"""The history store (edge): events and compact per-sweep records in one SQLite file.

Kept small: 12 services every 10 s for the 7 days kept is about 30 KB when states are
steady, 3.4 MB when one service flaps on every sweep, the worst case
(tests/bench/history.py measures it). By job:

- schema: the tables, the schema version and its migrations, a sweep's compact form;
- event_rows: an Event as a row and back, derived from its field list;
- file: opening, transactions, and recovery from a damaged, foreign or locked file;
- store: the History (writes, and when retention runs); retention: what is kept;
- queries: events, uptime, since when, and what `--since` means.

Its output for the `history` command is pure and lives in agent.core.report.
"""

from __future__ import annotations

from agent.edges.history.file import HistoryError
from agent.edges.history.queries import Uptime, parse_since
from agent.edges.history.store import MONITOR_BUSY_TIMEOUT_S, History

__all__ = ["MONITOR_BUSY_TIMEOUT_S", "History", "HistoryError", "Uptime", "parse_since"]
