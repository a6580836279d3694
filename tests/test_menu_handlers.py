"""The tray's dispatch table (agent.app.menu_handlers): every action the menu can emit has a
handler, and each handler reaches the part it names.

The menu is walked over many views (no data, paused or not, start at login on, off or
unsupported, a topology error, every node state and check kind); "Start at login" once had
no handler, which this would have caught. The collaborators are recorders: what they do is
tested against the real things elsewhere (tests/test_actions.py, tests/desktop/).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import app
from agent.core.health import judge
from agent.core.menu import (
    ActionKind,
    MenuAction,
    MenuEntry,
    MonitorStatus,
    TrayView,
    build_menu,
)
from agent.core.model import (
    BackendState,
    CheckKind,
    Impact,
    Node,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    Snapshot,
    TailnetView,
    Topology,
)
from agent.core.plan import plan_sweep
from agent.core.snooze import Snooze, SnoozeKind, parse_key
from tests.core.sample_network import peer, running

# One service of every check kind, some to open in a browser; an always-on peer and a laptop.
SERVICES = (
    Service("FastAPI", 8000, CheckKind.HTTP, "/health", impact=Impact.CRITICAL, open=True),
    Service("Redis", 6379, CheckKind.REDIS),
    Service("PostgreSQL", 5432, CheckKind.POSTGRES),
    Service("MinIO", 9000, CheckKind.TCP),
    Service("ComfyUI WS", 8189, CheckKind.WEBSOCKET, "/ws", open=True),
)
DESKTOP = Node("desktop", "Desktop", "sweetlife", "100.120.180.42", services=SERVICES[:2])
MACMINI = Node("macmini", "Mac mini", "woosuns-mac-mini", "100.123.51.5", services=SERVICES)
LAPTOP = Node(
    "laptop", "Laptop", "desktop-ecmkau8", "100.101.68.23", always_on=False, services=SERVICES[:1]
)
TOPOLOGY = Topology("Sparklio", (DESKTOP, MACMINI, LAPTOP))

TAILNETS = {
    "all-direct": running(peer(MACMINI), peer(LAPTOP)),
    "relayed": running(peer(MACMINI, cur_addr=""), peer(LAPTOP, cur_addr="")),
    "peers-offline": running(peer(MACMINI, online=False), peer(LAPTOP, online=False)),
    "idle": running(peer(MACMINI, active=False), peer(LAPTOP, active=False)),
    "no-peers": running(),
    "tailscale-stopped": TailnetView(backend_state=BackendState.STOPPED),
}
OUTCOMES = {
    "up": ProbeResult(ProbeState.UP, None, "HTTP 200", 1.0),
    "refused": ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused"),
}


def snapshots() -> Iterator[Snapshot | None]:
    yield None
    for tailnet, result in itertools.product(TAILNETS.values(), OUTCOMES.values()):
        plan = plan_sweep(TOPOLOGY, "desktop", tailnet, now=1000.0)
        results = {(t.node_id, t.service.name): result for t in plan.targets}
        results.update(plan.skipped)
        yield judge(TOPOLOGY, tailnet, "desktop", results, plan.addresses, now=1000.0)
    # this machine none of the nodes (a first run, with the bundled example)
    stranger = plan_sweep(TOPOLOGY, None, TAILNETS["all-direct"], now=1000.0)
    yield judge(
        TOPOLOGY,
        TAILNETS["all-direct"],
        None,
        dict(stranger.skipped),
        stranger.addresses,
        now=1000.0,
    )


def views() -> Iterator[TrayView]:
    snoozed = {("macmini", ""): Snooze("macmini", "", SnoozeKind.UNTIL_BACK, 1000.0, None)}
    for snapshot, paused_until, error, autostart, (bundled, snoozes) in itertools.product(
        snapshots(),
        (None, 4600.0),
        (None, "topology.toml:3: bad"),
        (None, True, False),
        # True: a first run when this machine is none of the nodes; and a node snoozed
        ((False, {}), (True, {}), (False, snoozed)),
    ):
        status = MonitorStatus(
            snapshot, now=1005.0, paused_until=paused_until, topology_error=error, snoozes=snoozes
        )
        yield TrayView(status, autostart=autostart, version="9.9", bundled_topology=bundled)


def walk(entries: tuple[MenuEntry, ...]) -> Iterator[MenuEntry]:
    for entry in entries:
        yield entry
        yield from walk(entry.children)


def emitted() -> set[ActionKind]:
    return {
        entry.action.kind
        for view in views()
        for entry in walk(build_menu(view, local_time=str))
        if entry.action is not None
    }


class Recorder:
    """Stands in for every collaborator: records each method called and its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **_kw: Any) -> bool:
            self.calls.append((name, args))
            return True

        return record


def handlers(
    monitor: Recorder, tray: Recorder, actions: Recorder, notifier: Recorder
) -> dict[ActionKind, app.MenuHandler]:
    shown = app.ShownView(lambda _view: None, TrayView(MonitorStatus(None, time.time())))
    return app.menu_handlers(
        app.AgentOptions(),
        {},
        monitor=monitor,  # type: ignore[arg-type]
        stop_tray=tray.stop,
        switch=Recorder(),  # type: ignore[arg-type]
        actions=actions,  # type: ignore[arg-type]
        notifier=notifier,  # type: ignore[arg-type]
        shown=shown,
    )


def test_every_action_the_menu_emits_has_a_handler() -> None:
    table = handlers(Recorder(), Recorder(), Recorder(), Recorder())
    assert emitted() == set(ActionKind)  # the views above reach every item of the menu
    assert set(table) == set(ActionKind)


@pytest.mark.parametrize(
    ("action", "who", "call"),
    [
        (MenuAction(ActionKind.CHECK_NOW), "monitor", "check_now"),
        (MenuAction(ActionKind.PAUSE_1H), "monitor", "pause_notifications"),
        (MenuAction(ActionKind.PAUSE_TOMORROW), "monitor", "pause_notifications"),
        (MenuAction(ActionKind.RESUME), "monitor", "resume_notifications"),
        (MenuAction(ActionKind.QUIT), "tray", "stop"),
        (MenuAction(ActionKind.OPEN_URL, "http://127.0.0.1:8000/health"), "actions", "open_url"),
        (MenuAction(ActionKind.COPY_ADDRESS, "127.0.0.1"), "actions", "copy"),
        (MenuAction(ActionKind.OPEN_LOGS), "actions", "open_path"),
        (MenuAction(ActionKind.ABOUT), "notifier", "notify"),
        (MenuAction(ActionKind.SNOOZE_1H, "macmini/FastAPI"), "monitor", "snooze"),
        (MenuAction(ActionKind.SNOOZE_TOMORROW, "macmini"), "monitor", "snooze"),
        (MenuAction(ActionKind.SNOOZE_UNTIL_BACK, "macmini"), "monitor", "snooze"),
        (MenuAction(ActionKind.UNSNOOZE, "macmini/FastAPI"), "monitor", "unsnooze"),
    ],
    ids=str,
)
def test_each_handler_reaches_the_part_it_names(
    action: MenuAction, who: str, call: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the log folder
    parts = {name: Recorder() for name in ("monitor", "tray", "actions", "notifier")}
    table = handlers(**parts)
    table[action.kind](action.payload)
    assert [name for name, part in parts.items() if part.calls] == [who]
    (name, args), *_ = parts[who].calls
    assert name == call
    if call in ("snooze", "unsnooze"):
        assert args[0] == parse_key(action.payload)  # the subject, (node id, service or "")
        if action.kind in (ActionKind.SNOOZE_1H, ActionKind.SNOOZE_TOMORROW):
            assert args[2] > time.time()  # until a moment to come
        elif action.kind is ActionKind.SNOOZE_UNTIL_BACK:
            assert args[2] is None
    elif action.payload:
        assert args == (action.payload,)
    if call == "pause_notifications":
        assert args[0] > time.time()  # until a moment to come
