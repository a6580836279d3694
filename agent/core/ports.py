"""The interfaces the wiring passes between edges: what one edge may know of another.

An edge never imports another edge (import-linter, pyproject.toml); where one needs another's
service, the wiring hands it an object of a type defined here. Today: the Notifier, which the
monitor (alarms) and the desktop actions (an open that failed, a copied address) both use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Notifier"]


@runtime_checkable
class Notifier(Protocol):
    """Shows one desktop notification. Never raises for an operational failure.

    `notify` returns True once the notification was handed to the OS and False when that
    failed. `key` names this notification so a later one can make it obsolete; `replaces`
    lists the keys of shown notifications this one makes obsolete (agent.core.notify_policy: a
    recovery and the alarm it ends). The first of them still on screen is replaced in place,
    the others are closed, where the platform allows; unknown keys are ignored.
    """

    name: str

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool: ...
