"""How a measured figure reads for a person: a latency. Pure, imports nothing.

Its own module so that what prints a latency (check's table and JSON, history, the menu)
need not import the others' modules: check's report does not load the tray's menu.
"""

from __future__ import annotations

__all__ = ["format_latency"]


def format_latency(ms: float) -> str:
    """1.24 -> "1.2 ms", 0.04 -> "<0.1 ms", 123.4 -> "123 ms"."""
    if ms < 0.1:
        return "<0.1 ms"
    if ms < 10:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"
