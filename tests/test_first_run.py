"""The tray's first run: the bundled example in use while this machine is none of its nodes
(or has no Tailscale). The menu as data (core.menu), the same menu through the real pystray
(dummy backend), and the two new actions' handlers (agent.app): "Create topology from this
tailnet…" runs init with the stand-in tailscale CLI and the monitor switches to the new file;
"Open the demo" starts `tailnet-agent demo` with this install's own program."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent import app
from agent.core.drift import detect_drift
from agent.core.events import EventKind
from agent.core.health import judge
from agent.core.menu import (
    ActionKind,
    MenuAction,
    MenuEntry,
    MonitorStatus,
    TrayView,
    build_menu,
    first_run_line,
    overall_health,
    tooltip,
)
from agent.core.model import (
    FindingKind,
    Health,
    Snapshot,
    TailnetView,
    TailscaleProblem,
    Topology,
)
from agent.core.plan import plan_sweep
from agent.core.tailnet import parse_status_json
from agent.desktop.tray import to_pystray_menu
from agent.edges import paths
from agent.edges.topology_source import is_bundled_topology, load_topology
from agent.monitor import Monitor
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES
from tests.core.sample_network import running
from tests.test_menu_handlers import TOPOLOGY, Recorder
from tests.test_monitor import REFUSED, UP
from tests.test_monitor import Recorder as MonitorRecorder
from tests.test_tray_dummy import leaves, pystray_dummy  # noqa: F401 - the fixture

FIRST_RUN_ITEMS = ["Create topology from this tailnet…", "Open the demo", "Open topology file"]


def snapshot_for(tailnet: TailnetView, self_id: str | None) -> Snapshot:
    plan = plan_sweep(TOPOLOGY, self_id, tailnet, now=1000.0)
    return judge(TOPOLOGY, tailnet, self_id, dict(plan.skipped), plan.addresses, now=1000.0)


def view(snapshot: Snapshot, *, bundled: bool = True) -> TrayView:
    return TrayView(MonitorStatus(snapshot, now=1001.0), bundled_topology=bundled)


def texts(entries: tuple[MenuEntry, ...]) -> list[str]:
    return [e.text for e in entries if not e.separator]


STRANGER = snapshot_for(running(), None)  # on a tailnet, but none of the example's nodes
NO_TAILSCALE = snapshot_for(
    TailnetView(backend_state=None, problem=TailscaleProblem.NOT_INSTALLED, detail="no CLI"), None
)


def test_a_stranger_to_the_example_sees_one_line_and_the_three_offers() -> None:
    shown = view(STRANGER)
    menu = build_menu(shown, local_time=str)
    assert menu[0].text == "? Sparklio: This machine is not in the Sparklio example network"
    assert texts(menu)[1:4] == FIRST_RUN_ITEMS
    assert texts(menu).count("Open topology file") == 1  # the offer, not the offer and a twin
    assert all(e.enabled for e in menu[2:5])
    assert not any(n.name in e.text for e in menu for n in TOPOLOGY.nodes)  # no wall of nodes
    assert overall_health(shown) is Health.GREY
    assert "not in the Sparklio example" in tooltip(shown)


def test_without_tailscale_it_says_so_and_create_waits_for_it() -> None:
    menu = build_menu(view(NO_TAILSCALE), local_time=str)
    assert "Tailscale is not installed here" in menu[0].text
    create = next(e for e in menu if e.action == MenuAction(ActionKind.CREATE_TOPOLOGY))
    assert not create.enabled and "needs Tailscale" in create.text
    assert MenuAction(ActionKind.OPEN_DEMO) in [e.action for e in menu]
    assert [e.action for e in menu].count(MenuAction(ActionKind.OPEN_TOPOLOGY)) == 1


@pytest.mark.parametrize(
    "shown",
    [
        view(snapshot_for(running(), "desktop")),  # one of its nodes: the real thing
        view(STRANGER, bundled=False),  # a topology of the user's own
        TrayView(MonitorStatus(None, now=1.0), bundled_topology=True),  # no data yet
    ],
    ids=["a-node-of-the-example", "own-topology", "no-data"],
)
def test_no_first_run_otherwise(shown: TrayView) -> None:
    assert first_run_line(shown) is None
    menu = build_menu(shown, local_time=str)
    assert ActionKind.CREATE_TOPOLOGY not in {e.action.kind for e in menu if e.action}
    assert [e.text for e in menu].count("Open topology file") == 1  # the usual one stays


def test_the_first_run_menu_through_pystray(pystray_dummy: Any) -> None:  # noqa: F811
    calls: list[MenuAction] = []
    menu = to_pystray_menu(build_menu(view(STRANGER), local_time=str), calls.append)
    items = [item for item in menu if item is not pystray_dummy.Menu.SEPARATOR]
    assert [item.text for item in items[1:4]] == FIRST_RUN_ITEMS
    icon = pystray_dummy.Icon("test", menu=menu)
    for item in items[1:4]:
        item(icon)
    assert calls == [
        MenuAction(ActionKind.CREATE_TOPOLOGY),
        MenuAction(ActionKind.OPEN_DEMO),
        MenuAction(ActionKind.OPEN_TOPOLOGY),
    ]


def test_the_tray_view_knows_the_bundled_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    bundled = load_topology(None, {})
    snapshot = snapshot_for(running(), None)
    assert app.tray_view(
        MonitorStatus(replace(snapshot, topology=bundled), 1.0), autostart=None
    ).bundled_topology
    assert not app.tray_view(MonitorStatus(snapshot, 1.0), autostart=None).bundled_topology


# ==== the handlers =============================================================


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def fake_tailscale_env(tmp_path: Path, fixture: str, mode: str = "ok") -> dict[str, str]:
    return {
        "TAILNET_AGENT_TAILSCALE": str(FAKE_TAILSCALE_DIR / "tailscale"),
        "FAKE_TAILSCALE_JSON": str(TAILSCALE_FIXTURES / fixture),
        "FAKE_TAILSCALE_MODE": mode,
        "FAKE_TAILSCALE_LOG": str(tmp_path / "fake.log"),
    }


def test_create_topology_writes_the_user_file_switches_and_says_where(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in fake_tailscale_env(home, "loopback_all_direct.json").items():
        monkeypatch.setenv(key, value)
    monitor, notifier = Recorder(), Recorder()
    app.create_topology(app.AgentOptions(), os.environ, monitor, notifier)  # type: ignore[arg-type]
    written = paths.user_topology_path()
    assert written.is_file()
    topology = load_topology(None, {})  # now the file in use, and valid
    assert topology.source == str(written)
    assert {n.hostname for n in topology.nodes} >= {"sweetlife"}
    assert ("check_now", ()) in monitor.calls
    (_, (title, body)), *_ = notifier.calls
    assert title == "Topology created"
    assert f"Wrote {written}: 3 nodes" in body  # where it wrote


def test_create_topology_without_tailscale_says_why(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in fake_tailscale_env(home, "loopback_all_direct.json", "fail").items():
        monkeypatch.setenv(key, value)
    monitor, notifier = Recorder(), Recorder()
    app.create_topology(app.AgentOptions(), os.environ, monitor, notifier)  # type: ignore[arg-type]
    assert not paths.user_topology_path().exists()
    assert monitor.calls == []
    (_, (title, body)), *_ = notifier.calls
    assert title == "Could not create the topology" and body


def test_the_demo_is_this_install_run_with_demo() -> None:
    argv = app.demo_command()
    assert argv[-1] == "demo"
    assert Path(argv[0]).is_file()  # this environment's own program, not one on PATH


def test_open_demo_that_cannot_start_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "demo_command", lambda: ["/nonexistent/tailnet-agent", "demo"])
    notifier = Recorder()
    app.open_demo(notifier)  # type: ignore[arg-type]
    (_, (title, body)), *_ = notifier.calls
    assert title == "Could not open the demo" and "nonexistent" in body


def test_the_handlers_table_runs_create_in_the_background(home: Path) -> None:
    monitor, notifier = Recorder(), Recorder()
    shown = app.ShownView(lambda _v: None, TrayView(MonitorStatus(None, time.time())))
    table = app.menu_handlers(
        app.AgentOptions(tailscale=str(home / "no-such-tailscale")),
        {},
        monitor=monitor,  # type: ignore[arg-type]
        stop_tray=lambda: None,
        switch=Recorder(),  # type: ignore[arg-type]
        actions=Recorder(),  # type: ignore[arg-type]
        notifier=notifier,  # type: ignore[arg-type]
        shown=shown,
    )
    table[ActionKind.CREATE_TOPOLOGY]("")
    deadline = time.monotonic() + 30
    while not notifier.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert notifier.calls and notifier.calls[0][1][0] == "Could not create the topology"
    json.dumps(notifier.calls[0][1])  # plain text


# ==== nothing about the example is announced ===================================


class StrangerSweeps:
    """The monitor's sweep_once on a machine of another tailnet (a recorded real status):
    every probe of the plan answers `result`, judged by the real rules. No probe is sent."""

    def __init__(self) -> None:
        self.tailnet = parse_status_json((TAILSCALE_FIXTURES / STRANGER_STATUS).read_text())
        self.result = UP

    async def __call__(self, topology: Topology) -> Snapshot:
        now = time.time()
        plan = plan_sweep(topology, None, self.tailnet, now=now)
        results = dict(plan.skipped)
        results.update({(t.node_id, t.service.name): self.result for t in plan.targets})
        drift = detect_drift(topology, self.tailnet, None)  # as agent.sweep finds it
        return judge(
            topology, self.tailnet, None, results, plan.addresses, now=now,
            findings=drift, assessed=frozenset({FindingKind.DRIFT}),
        )  # fmt: skip


STRANGER_STATUS = "real/v1_98_9_five_peers.json"  # five machines, none of the example's


@pytest.mark.parametrize("example", [True, False], ids=["the-bundled-example", "own-copy"])
def test_a_first_run_announces_nothing_about_the_example(home: Path, example: bool) -> None:
    """The example's nodes drift (none is in this tailnet) and its services go down: all
    recorded, none announced while the topology is the bundled example. The same topology
    taken for the user's own (the control) is announced, so the notifier is listening."""
    bundled = load_topology(None, {})
    assert bundled.source.startswith("bundled default")
    sweeps, shown = StrangerSweeps(), MonitorRecorder()
    monitor = Monitor(
        load_topology=lambda: bundled,
        locate_topology=lambda: None,
        sweep_once=sweeps,
        notifier=shown,
        on_update=shown.on_update,
        is_example=is_bundled_topology if example else lambda _: False,
    )
    monitor.start()
    try:
        first = shown.wait(lambda u: u.snapshot is not None)
        assert first.snapshot is not None and first.snapshot.self_node_id is None
        sweeps.result = REFUSED
        down = shown.wait(lambda u: any(e.kind is EventKind.SERVICE_DOWN for e in u.events), 30)
    finally:
        monitor.stop()
    events = [e for u in shown.updates for e in u.events]
    kinds = {e.kind for e in events}
    assert {EventKind.DRIFT_FOUND, EventKind.SERVICE_DOWN} <= kinds, kinds
    assert any(e.node_id == "macmini" and e.service == "FastAPI" for e in down.events)
    if example:
        assert shown.shown == []
        assert not any(e.announce for e in events if e.node_id is not None)
    else:
        titles = [title for title, _, _ in shown.shown]
        assert any("FastAPI down" in t for t in titles) and any("drift" in t for t in titles)
