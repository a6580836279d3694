"""How a measured figure reads for a person: a latency, a duration. Pure, imports nothing.

Its own module so that what prints a latency or a duration (check's table and JSON, history,
the menu, the notifications) need not import the others' modules: check's report loads
neither the tray's menu nor the monitor's events.
"""

from __future__ import annotations

__all__ = ["format_duration", "format_latency"]


def format_latency(ms: float) -> str:
    """1.24 -> "1.2 ms", 0.04 -> "<0.1 ms", 123.4 -> "123 ms"."""
    if ms < 0.1:
        return "<0.1 ms"
    if ms < 10:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


def format_duration(seconds: float, *, seconds_below: int = 60) -> str:
    """12 -> "12 s", 250 -> "4 min", 3900 -> "1 h 5 min", 90000 -> "1 d 1 h": how long, for
    a person. The one formatter of durations people read; in whole seconds below
    `seconds_below` (where more precision matters: "shown 70 s ago")."""
    s = max(0, round(seconds))
    if s < seconds_below:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
