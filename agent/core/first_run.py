"""The first run: the bundled example topology (Sparklio) in use while this machine is none
of its nodes, or has no Tailscale. Pure.

    is_first_run(tailnet, self_node_id, bundled=True)  # decided before the sweep probes
    first_run_words(snapshot, bundled=True)  # "This machine is not in the Sparklio example …"
    quiet_example(events)  # the same events, none about the example's nodes announced

Nothing of such a machine's is watched: the example's nodes are someone else's network, and
on the user's own tailnet its 100.x addresses may be other people's machines, so nothing of
it is probed or pinged (core.plan, agent.sweep; Tailscale itself is still read), the tray
shows one line and its offers (core.menu) instead of them, `check` says so and exits 3, and
the monitor records what it saw of them without announcing any of it — a drift there is a
false alarm for this user. Events about no node (Tailscale here, the topology file) are this
machine's own and stay as they are.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from agent.core.model import Snapshot, TailnetView, TailscaleProblem

if TYPE_CHECKING:  # check asks first_run_words, the monitor quiet_example: only it has events
    from agent.core.events import Event

__all__ = ["first_run_check", "first_run_words", "is_first_run", "quiet_example"]


def first_run_check(words: str) -> tuple[str, str]:
    """What a first run's `check` says: the verdict line and what to do instead."""
    return (
        f"{words}: nothing was probed (its addresses may be other people's machines here)",
        "Make a topology of this tailnet: tailnet-agent init (--discover finds its "
        "services), or watch a simulated network: tailnet-agent demo",
    )


def is_first_run(tailnet: TailnetView, self_node_id: str | None, *, bundled: bool) -> bool:
    """Whether a sweep of the topology (`bundled`: the example) is a first run's."""
    if not bundled:
        return False
    return tailnet.problem is TailscaleProblem.NOT_INSTALLED or self_node_id is None


def first_run_words(snapshot: Snapshot | None, *, bundled: bool) -> str | None:
    """The one line that says this is a first run, or None when it is not (a topology of
    the user's own, this machine one of the example's nodes, or no sweep yet)."""
    if snapshot is None or not is_first_run(
        snapshot.tailnet, snapshot.self_node_id, bundled=bundled
    ):
        return None
    name = snapshot.topology.name
    if snapshot.tailnet.problem is TailscaleProblem.NOT_INSTALLED:
        return f"Tailscale is not installed here; watching the {name} example network"
    return f"This machine is not in the {name} example network"


def quiet_example(events: tuple[Event, ...]) -> tuple[Event, ...]:
    """`events` with every one about a node of the example made unannounced (still
    recorded and logged)."""
    return tuple(
        replace(event, announce=False) if event.node_id is not None and event.announce else event
        for event in events
    )
