"""What the commands print: `check`'s table and JSON, `history`'s list and JSON. Pure.

check: a Snapshot (agent.core.report.check), and as a Nagios plugin line
(agent.core.report.nagios); history: the stored events
(agent.core.report.history); both colour from one table (agent.core.report.colour).
"""

from __future__ import annotations

from agent.core.report.check import render_table, snapshot_to_dict
from agent.core.report.history import history_to_json, render_history
from agent.core.report.nagios import NagiosResult, nagios_unknown, render_nagios, selection_error

__all__ = [
    "NagiosResult",
    "history_to_json",
    "nagios_unknown",
    "render_history",
    "render_nagios",
    "render_table",
    "selection_error",
    "snapshot_to_dict",
]
