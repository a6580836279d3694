"""desktop.tray without a desktop: the real pystray.Menu (dummy backend), tray_available and the
time format of the menu (the open and copy actions: tests/test_actions.py).

pystray binds its backend at import time, so the `pystray_dummy` fixture imports it afresh with
PYSTRAY_BACKEND=dummy and puts back whatever was imported before. Checks that depend on the
process environment at import time (tray_available) run in a subprocess.
"""

from __future__ import annotations

import ast
import importlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.core.evidence import Change, Evidence
from agent.core.menu import ActionKind, MenuAction, MenuEntry, MonitorStatus, TrayView, build_menu
from agent.core.model import (
    BackendState,
    CheckKind,
    Defaults,
    Health,
    Impact,
    Link,
    Node,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    TailnetView,
    Topology,
)
from agent.core.snooze import Snooze, SnoozeKind
from agent.desktop.tray import (
    NO_DISPLAY,
    Tray,
    backend_name,
    local_time,
    to_pystray_menu,
)
from tests.core.snapshots import node_status, service_status
from tests.core.snapshots import snapshot as build_snapshot

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pystray_dummy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """pystray imported with the dummy backend; the previous import (if any) is restored."""

    def ours() -> dict[str, Any]:
        return {k: m for k, m in sys.modules.items() if k == "pystray" or k.startswith("pystray.")}

    saved = ours()
    for name in saved:
        del sys.modules[name]
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    try:
        module = importlib.import_module("pystray")
        assert backend_name(module) == "dummy"
        yield module
    finally:
        for name in ours():
            del sys.modules[name]
        sys.modules.update(saved)


# ==== a view with something of everything ======================================

FASTAPI = Service("FastAPI", 8000, CheckKind.HTTP, "/health", impact=Impact.CRITICAL, open=True)
REDIS = Service("Redis", 6379, CheckKind.REDIS)
MAC = Node("macmini", "Mac mini — R&D Backend", "woosuns-mac-mini", "100.123.51.5",
           services=(FASTAPI, REDIS))  # fmt: skip
REFUSED = ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused (service not running?)")


def rich_view() -> TrayView:
    mac = node_status(
        MAC,
        service_status(FASTAPI, REFUSED, MAC.ip),
        service_status(REDIS, ProbeResult(ProbeState.UP), MAC.ip),
        link=Link.RELAY,
        relay="tok",
        latency=1.5,
        health=Health.RED,
    )
    snapshot = build_snapshot(
        mac,
        topology=Topology("t", (MAC,), Defaults()),
        tailnet=TailnetView(backend_state=BackendState.RUNNING),
        self_id=None,
        overall=Health.RED,
        summary="Mac mini: FastAPI down",
        at=100.0,
    )
    status = MonitorStatus(
        snapshot,
        now=100.0,
        paused_until=4000.0,
        topology_error="topology.toml:3: nodes: bad",
        uptime={("macmini", "Redis"): 0.998},
        since={("macmini", "FastAPI"): 50.0},
        changes={("service", "macmini", "FastAPI"): Change(90.0, True, REFUSED_FACTS)},
        snoozes={("macmini", "Redis"): Snooze("macmini", "Redis", SnoozeKind.HOUR, 80.0, 3680.0)},
    )
    return TrayView(status, autostart=True, version="9.9")


REFUSED_FACTS = Evidence(
    state="down", detail="connection refused", address="100.123.51.5:8000", link="relay",
    relay="tok", latency_ms=2.0, tailscale="Running", peer_online=True,
)  # fmt: skip


def entries() -> tuple[MenuEntry, ...]:
    return build_menu(rich_view(), local_time=lambda t: f"T{t:.0f}")


def shape_of_entries(items: tuple[MenuEntry, ...]) -> list[Any]:
    return [
        "---"
        if e.separator
        else (e.text, e.enabled, e.checked, e.default, shape_of_entries(e.children) or None)
        for e in items
    ]


def shape_of_menu(pystray: Any, menu: Any) -> list[Any]:
    return [
        "---"
        if item is pystray.Menu.SEPARATOR
        else (
            item.text,
            item.enabled,
            item.checked,
            item.default,
            None if item.submenu is None else shape_of_menu(pystray, item.submenu),
        )
        for item in menu  # iterating a Menu yields its visible items, as backends do
    ]


def leaves(pystray: Any, menu: Any) -> Iterator[Any]:
    for item in menu:
        if item.submenu is not None:
            yield from leaves(pystray, item.submenu)
        elif item is not pystray.Menu.SEPARATOR:
            yield item


# ==== the pystray menu ==========================================================


def test_pystray_menu_mirrors_the_entries(pystray_dummy: Any) -> None:
    menu = to_pystray_menu(entries(), lambda _a: None)
    assert isinstance(menu, pystray_dummy.Menu)
    assert shape_of_menu(pystray_dummy, menu) == shape_of_entries(entries())


def test_pystray_menu_details(pystray_dummy: Any) -> None:
    menu = to_pystray_menu(entries(), lambda _a: None)
    items = list(menu)
    assert items[0].text == "× t: Mac mini: FastAPI down" and items[0].default
    by_text = {item.text: item for item in leaves(pystray_dummy, menu)}
    assert by_text["Start at login"].checked is True
    assert by_text["Resume"].enabled is True
    assert by_text["Check now"].checked is None  # not a check item
    assert by_text["Link: relayed via DERP 'tok' — slower than direct"].enabled is False
    node = next(item for item in items if item.text.startswith("× Mac mini — R&D Backend"))
    assert [i.text for i in node.submenu if i is not pystray_dummy.Menu.SEPARATOR] == [
        "Link: relayed via DERP 'tok' — slower than direct",
        "Latency: 1.5 ms",
        "× FastAPI :8000 — down since T50 — connection refused (service not running?)",
        "✓ Redis :6379 — up · 99.8% 24 h · snoozed until T3680",
        "Open FastAPI in browser",
        "Copy address 100.123.51.5",
        "Snooze alerts",
    ]
    fastapi, redis = (i for i in node.submenu if i.text[2:].startswith(("FastAPI", "Redis")))
    assert [i.text for i in fastapi.submenu if i is not pystray_dummy.Menu.SEPARATOR] == [
        "Why: connection refused · relayed via DERP tok · 2.0 ms · T90",
        "Snooze alerts",
    ]
    (snoozed,) = (i for i in redis.submenu if i is not pystray_dummy.Menu.SEPARATOR)
    assert snoozed.text == "Alerts snoozed until T3680"
    options = {i.text: i for i in snoozed.submenu if i is not pystray_dummy.Menu.SEPARATOR}
    assert list(options) == ["For 1 hour", "Until tomorrow", "Until it is back", "Resume alerts"]
    assert options["Until it is back"].enabled is False  # Redis is up: "back" would end it now


def test_every_item_calls_on_action_with_its_id(pystray_dummy: Any) -> None:
    calls: list[MenuAction] = []
    menu = to_pystray_menu(entries(), calls.append)
    icon = pystray_dummy.Icon("test", menu=menu)
    expected = [e.action for e in _walk(entries()) if not e.children and not e.separator]
    for item in leaves(pystray_dummy, menu):
        item(icon)  # what a backend does on a click
    assert calls == [a for a in expected if a is not None]
    assert MenuAction(ActionKind.OPEN_URL, "http://100.123.51.5:8000/health") in calls
    assert MenuAction(ActionKind.COPY_ADDRESS, "100.123.51.5") in calls
    assert calls[-1] == MenuAction(ActionKind.QUIT)


def test_default_item_is_check_now(pystray_dummy: Any) -> None:
    calls: list[MenuAction] = []
    menu = to_pystray_menu(entries(), calls.append)
    menu(pystray_dummy.Icon("test", menu=menu))  # a left click where the backend has one
    assert calls == [MenuAction(ActionKind.CHECK_NOW)]


def test_failing_action_is_logged_not_raised(
    pystray_dummy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(action: MenuAction) -> None:
        raise OSError(f"cannot {action}")

    menu = to_pystray_menu(entries(), broken)
    quit_item = list(menu)[-1]
    with caplog.at_level(logging.ERROR, logger="agent.desktop.tray"):
        quit_item(pystray_dummy.Icon("test", menu=menu))
    assert "menu action 'quit' failed" in caplog.text
    assert "cannot quit" in caplog.text


@pytest.mark.parametrize(
    ("backend", "text"),
    [("win32", "× Mac mini — R&&D Backend"), ("gtk", "× Mac mini — R&D Backend")],
    ids=["win32-escapes-mnemonics", "gtk-literal"],
)
def test_ampersand_is_shown_literally(pystray_dummy: Any, backend: str, text: str) -> None:
    menu = to_pystray_menu(entries(), lambda _a: None, backend)
    assert any(item.text.startswith(text) for item in menu)


def test_tray_refuses_to_run_on_dummy(pystray_dummy: Any) -> None:
    tray = Tray(lambda _a: None)
    tray.publish(rich_view())  # before run(): kept, nothing applied
    with pytest.raises(RuntimeError, match="dummy"):
        tray.run()
    assert tray.counters.applied == 0


def test_stop_before_run_makes_run_return(pystray_dummy: Any) -> None:
    tray = Tray(lambda _a: None)
    tray.stop()
    tray.run()  # returns at once: no icon, not even the dummy error
    assert tray.backend == ""


# ==== tray_available (fresh interpreters: pystray binds its backend on import) ==

_PROBE = (
    "import sys; from agent.desktop.tray import tray_available; "
    "print(repr(tray_available())); print('pystray' in sys.modules)"
)


def _probe(tmp_path: Path, **env: str) -> tuple[tuple[bool, str], bool]:
    base = {k: v for k, v in os.environ.items() if k not in {
        "DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND", "DBUS_SESSION_BUS_ADDRESS",
        "XDG_RUNTIME_DIR"}}  # fmt: skip
    base.update(PYTHONPATH=str(REPO), XDG_RUNTIME_DIR=str(tmp_path), **env)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=base, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    result, imported = done.stdout.strip().splitlines()
    return ast.literal_eval(result), imported == "True"


def test_tray_available_without_display(tmp_path: Path) -> None:
    result, imported = _probe(tmp_path)
    assert result == (False, NO_DISPLAY)
    assert not imported  # never imports pystray there: it would raise DisplayNameError


def test_tray_available_with_dummy_backend(tmp_path: Path) -> None:
    (ok, why), _ = _probe(tmp_path, PYSTRAY_BACKEND="dummy", DISPLAY=":0")
    assert not ok
    assert (
        why == "PYSTRAY_BACKEND=dummy has no tray: unset it, or run `tailnet-agent run --headless`"
    )


def test_tray_available_with_an_unreachable_display(tmp_path: Path) -> None:
    # No X server answers on this display: python-xlib cannot connect (no socket under
    # /tmp/.X11-unix/X4242; nothing is sent over a network).
    assert not Path("/tmp/.X11-unix/X4242").exists()
    (ok, why), _ = _probe(tmp_path, PYSTRAY_BACKEND="xorg", DISPLAY=":4242")
    assert not ok
    assert why.startswith("no usable tray backend (") and why.endswith(
        "): run `tailnet-agent run --headless`"
    ), why


def test_tray_available_with_an_unknown_backend(tmp_path: Path) -> None:
    (ok, why), _ = _probe(tmp_path, PYSTRAY_BACKEND="nosuch", DISPLAY=":0")
    assert (ok, why) == (
        False,
        "no usable tray backend (unknown backend: 'nosuch'): run `tailnet-agent run --headless`",
    )


# ==== times in the menu =========================================================


def test_local_time_today_and_other_days() -> None:
    now = time.time()
    assert local_time(now) == time.strftime("%H:%M", time.localtime(now))
    two_days_ago = now - 2 * 86400
    assert local_time(two_days_ago) == time.strftime("%a %H:%M", time.localtime(two_days_ago))


def _walk(items: tuple[MenuEntry, ...]) -> Iterator[MenuEntry]:
    for entry in items:
        yield entry
        yield from _walk(entry.children)
