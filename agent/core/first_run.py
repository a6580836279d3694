"""The first run: the bundled example topology (Sparklio) in use while this machine is none
of its nodes, or has no Tailscale. Pure.

    first_run_words(snapshot, bundled=True)  # "This machine is not in the Sparklio example …"
    quiet_example(events)  # the same events, none about the example's nodes announced

Nothing of such a machine's is watched: the example's nodes are someone else's network, so
the tray shows one line and its offers (core.menu) instead of them, and the monitor records
what it saw of them without announcing any of it — a drift, a service "down" or a peer
"offline" there is a false alarm for this user. Events about no node (Tailscale here, the
topology file) are this machine's own and stay as they are.
"""

from __future__ import annotations

from dataclasses import replace

from agent.core.events import Event
from agent.core.model import Snapshot, TailscaleProblem

__all__ = ["first_run_words", "quiet_example"]


def first_run_words(snapshot: Snapshot | None, *, bundled: bool) -> str | None:
    """The one line that says this is a first run, or None when it is not (a topology of
    the user's own, this machine one of the example's nodes, or no sweep yet)."""
    if not bundled or snapshot is None:
        return None
    name = snapshot.topology.name
    if snapshot.tailnet.problem is TailscaleProblem.NOT_INSTALLED:
        return f"Tailscale is not installed here; watching the {name} example network"
    if snapshot.self_node_id is None:
        return f"This machine is not in the {name} example network"
    return None


def quiet_example(events: tuple[Event, ...]) -> tuple[Event, ...]:
    """`events` with every one about a node of the example made unannounced (still
    recorded and logged)."""
    return tuple(
        replace(event, announce=False) if event.node_id is not None and event.announce else event
        for event in events
    )
