"""The agent's own exceptions, each carrying text meant for people.

    AgentError                 title + message, shown in the menu or on stderr
     ├── TopologyError         a topology file that cannot be used (names file, line, key, why)
     ├── UsageError            a command line that cannot be honoured
     └── AutostartError        start at login could not be read, registered or removed

Probe failures are not exceptions: probes return data (see core.model.ProbeResult).
"""

from __future__ import annotations

__all__ = ["AgentError", "AutostartError", "TopologyError", "UsageError"]


class AgentError(Exception):
    """Root of the agent's errors: a short title and a message a person can act on."""

    title = "tailnet-agent error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TopologyError(AgentError):
    """A topology file was refused. str() reads `FILE:LINE: KEY: WHY`."""

    title = "Topology file refused"

    def __init__(self, source: str, why: str, *, key: str = "", line: int | None = None) -> None:
        self.source = source
        self.why = why
        self.key = key
        self.line = line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {key}: {why}" if key else f"{where}: {why}")


class UsageError(AgentError):
    title = "Cannot do that"


class AutostartError(AgentError):
    title = "Start at login failed"
