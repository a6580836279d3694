"""A recurring failure said once, and its end said once: the words for the log.

A store that cannot be written (the history locked by another process, a full disk) fails
again at every sweep, and a notifier that hangs holds up every notification after it; the
monitor must go on and say so once, not every few seconds, and say when it works again and
how much was lost or held up meanwhile. `Outage` is that memory: `failed`
returns the line to log for the first failure (None for the repeats, which it counts), and
`recovered` the line for the first success after them (None while nothing was wrong).
"""

from __future__ import annotations

__all__ = ["Outage"]


class Outage:
    """One thing that may stop working (`what`: "the history", "the notifier"), told in its
    own words: what it does while failing and once working (`fails`, `works`), and what each
    failed attempt was (`missed`: a noun and what became of it, "write" and "lost")."""

    def __init__(
        self,
        what: str,
        *,
        fails: str = "cannot be written",
        works: str = "is written again",
        missed: tuple[str, str] = ("write", "lost"),
    ) -> None:
        self.what = what
        self.failures = 0  # failed attempts since the last success
        self._fails, self._works, self._missed = fails, works, missed
        self._first_error = ""

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, error: str, attempts: int = 1) -> str | None:
        """Count failed attempts; the line to log when they are the first."""
        first = not self.failures
        self.failures += attempts
        if not first:
            return None
        self._first_error = error
        return f"{self.what} {self._fails}: {error}; going on without it, told again when it works"

    def recovered(self) -> str | None:
        """A successful attempt; the line to log when it ends an outage."""
        if not self.failures:
            return None
        lost, self.failures = self.failures, 0
        noun, fate = self._missed
        counted = f"{lost} {noun}" + ("" if lost == 1 else "s")
        return f"{self.what} {self._works} ({counted} {fate} since: {self._first_error})"
