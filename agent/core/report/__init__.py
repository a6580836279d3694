"""What the commands print: `check`'s table and JSON, `history`'s list and JSON. Pure.

check: a Snapshot (agent.core.report.check), and as a Nagios plugin line
(agent.core.report.nagios); history: the stored events
(agent.core.report.history); both colour from one table (agent.core.report.colour).
Callers import the submodule they use: `check --json` loads neither the Nagios line nor the
history's rendering.
"""

from __future__ import annotations

__all__: list[str] = []
