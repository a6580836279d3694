"""A recurring failure said once, and its end said once: the words for the log.

A store that cannot be written (the history locked by another process, a full disk) fails
again at every sweep; the monitor must go on and say so once, not every few seconds, and
say when it works again and how much was lost meanwhile. `Outage` is that memory: `failed`
returns the line to log for the first failure (None for the repeats, which it counts), and
`recovered` the line for the first success after them (None while nothing was wrong).
"""

from __future__ import annotations

__all__ = ["Outage"]


class Outage:
    """One thing that may stop working (`what`: "history", "log file")."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures = 0  # failed attempts since the last success
        self._first_error = ""

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, error: str) -> str | None:
        """Count a failed attempt; the line to log when it is the first one."""
        self.failures += 1
        if self.failures > 1:
            return None
        self._first_error = error
        return (
            f"{self.what} cannot be written: {error}; going on without it, told again when it works"
        )

    def recovered(self) -> str | None:
        """A successful attempt; the line to log when it ends an outage."""
        if not self.failures:
            return None
        lost, self.failures = self.failures, 0
        writes = "write" if lost == 1 else "writes"
        return f"{self.what} is written again ({lost} {writes} lost since: {self._first_error})"
