"""What the commands print: `check`'s table and JSON, `history`'s list and JSON. Pure.

check: a Snapshot (agent.core.report.check); history: the stored events
(agent.core.report.history); both colour from one table (agent.core.report.colour).
"""

from __future__ import annotations

from agent.core.report.check import render_table, snapshot_to_dict
from agent.core.report.history import history_to_json, render_history

__all__ = ["history_to_json", "render_history", "render_table", "snapshot_to_dict"]
