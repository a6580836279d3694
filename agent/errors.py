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
    """A topology file was refused. str() reads `FILE:LINE: WHERE: WHY`.

    `key` is the dotted key path (``nodes[2].services[0].chek``, for tools); WHERE is
    `subject` when given, the words a person reads ("FastAPI on Mac mini: port"), else
    the key path.
    """

    title = "Topology file refused"

    def __init__(
        self,
        source: str,
        why: str,
        *,
        key: str = "",
        line: int | None = None,
        subject: str | None = None,
    ) -> None:
        self.source = source
        self.why = why
        self.key = key
        self.line = line
        self.subject = key if subject is None else subject
        where = source if line is None else f"{source}:{line}"
        shown = self.subject
        super().__init__(f"{where}: {shown}: {why}" if shown else f"{where}: {why}")


class UsageError(AgentError):
    title = "Cannot do that"


class AutostartError(AgentError):
    title = "Start at login failed"
