"""The one ANSI colour table of the command-line reports, keyed by health colour."""

from __future__ import annotations

from agent.core.model import Health

__all__ = ["paint"]

_ANSI = {
    Health.GREEN: "\x1b[32m",
    Health.AMBER: "\x1b[33m",
    Health.RED: "\x1b[31m",
    Health.GREY: "\x1b[90m",
}
_RESET = "\x1b[0m"


def paint(text: str, health: Health, color: bool) -> str:
    """`text` in the colour of `health` when `color` is on (a terminal that wants it)."""
    return f"{_ANSI[health]}{text}{_RESET}" if color else text
