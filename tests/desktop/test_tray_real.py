"""desktop.tray.Tray on a real desktop: Xvfb + trayer + a private session bus, gtk and appindicator.

The tray runs in its own process (tests/helpers/tray_app.py), fed TrayViews as JSON from this
test as the monitor would publish them from a worker thread. The test reads the screen's
pixels, opens the menu with a real right click, walks it with the keyboard (xdotool) and
checks what the app recorded for the clicked item. Screenshots are kept in the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.core.menu import MenuEntry, build_menu
from agent.core.model import Health
from agent.desktop.icons import OUTLINE_COLOUR
from tests.helpers.desktop import (
    DesktopEnv,
    Region,
    find_colour,
    find_named_colour,
    read_line,
    require_tool,
    wait_for,
)
from tests.helpers.tray_app import view_from_json

pytestmark = pytest.mark.linux_desktop

MIN_PIXELS = 150  # trayer scales the 64 px icon: gtk 26x26 (300+ red px), xorg 24x30 (~196)
MENU_WHITE = 5000  # an open GtkMenu paints thousands of white pixels below the strip
NOW = time.time()

# ==== views as JSON (what tests/helpers/tray_app.py reads) =====================


def _svc(name: str, port: int, node_ip: str, **kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "port": port,
        "state": "up",
        "health": "green",
        "address": f"{node_ip}:{port}",
        "uptime": 1.0,
    }
    data.update(kw)
    return data


def view_json(
    overall: str = "green", summary: str = "All good — 3 nodes, 5 of 5 services up", **kw: Any
) -> dict[str, Any]:
    mac = "100.123.51.5"
    fastapi = _svc("FastAPI", 8000, mac, path="/health", impact="critical", open=True)
    if overall == "red":
        fastapi.update(
            state="down",
            health="red",
            reason="refused",
            detail="connection refused (service not running?)",
            since=NOW - 600,
            uptime=0.97,
        )
    nodes = [
        {"id": "desktop", "name": "Desktop — GPU Worker", "ip": "100.120.180.42", "self": True,
         "link": "self", "health": "green",
         "services": [_svc("Ollama", 11434, "127.0.0.1", path="/api/tags", open=True)]},
        {"id": "laptop", "name": "Laptop — Frontend Dev", "ip": "100.101.68.23",
         "always_on": False, "link": "idle", "latency_ms": 3.1, "health": "green",
         "services": [_svc("Next.js", 3000, "100.101.68.23", impact="info")]},
        {"id": "macmini", "name": "Mac mini — Backend Server", "ip": mac,
         "link": "direct" if overall == "green" else "relay", "relay": "tok", "latency_ms": 1.2,
         "health": overall,
         "services": [fastapi, _svc("Redis", 6379, mac, check="redis", uptime=0.998),
                      _svc("MinIO Console", 9001, mac, open=True)]},
    ]  # fmt: skip
    data: dict[str, Any] = {
        "now": NOW,
        "version": "0.1.0",
        "autostart": False,
        "snapshot": {"overall": overall, "summary": summary, "at": NOW, "nodes": nodes},
    }
    data.update(kw)
    return data


RED = view_json("red", "Mac mini: FastAPI down — connection refused (service not running?)")


def menu_of(data: dict[str, Any]) -> tuple[MenuEntry, ...]:
    return build_menu(view_from_json(data), local_time=lambda t: time.strftime("%H:%M"))


def keys_to(entries: tuple[MenuEntry, ...], *path: str) -> list[str]:
    """The keys that select the item reached through `path` (text prefixes), then Return.

    GTK skips separators and insensitive items; the first Down in a fresh popup selects its
    first item, and Right opens a submenu with its first item already selected.
    """
    keys: list[str] = []
    level = entries
    for depth, prefix in enumerate(path):
        selectable = [e for e in level if not e.separator and e.enabled]
        matches = [i for i, e in enumerate(selectable) if e.text.startswith(prefix)]
        assert len(matches) == 1, f"{prefix!r} matches {len(matches)} of {selectable}"
        index = matches[0]
        keys += ["Down"] * (index + 1 if depth == 0 else index)
        assert bool(selectable[index].children) == (depth < len(path) - 1), prefix
        if selectable[index].children:
            keys.append("Right")
            level = selectable[index].children
    return [*keys, "Return"]


# ==== the app process ==========================================================


class TrayApp:
    """tests/helpers/tray_app.py as a child of the private desktop."""

    def __init__(self, desk: DesktopEnv, backend: str, folder: Path, first: dict[str, Any]):
        self.desk = desk
        self.backend = backend
        self.name = f"tray-app-{backend}"
        self.actions = folder / "actions.log"
        view = folder / "view.json"
        view.write_text(json.dumps(first), encoding="utf-8")
        self.proc = desk.spawn(
            [sys.executable, "-m", "tests.helpers.tray_app", "--view", str(view),
             "--actions", str(self.actions)],
            name=self.name,
            extra_env={"PYSTRAY_BACKEND": backend},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip

    def read(self, timeout: float = 15.0) -> str:
        assert self.proc.stdout is not None
        try:
            return read_line(self.proc.stdout, timeout, self.name)
        except Exception as exc:
            raise AssertionError(f"{exc}\n{self.desk.log_tail(self.name)}") from exc

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def publish(self, data: dict[str, Any]) -> None:
        self.send(json.dumps(data))
        assert self.read() == "published"

    def stats(self) -> dict[str, int]:
        self.send("stats")
        result: dict[str, int] = json.loads(self.read())
        return result

    def recorded(self) -> list[str]:
        if not self.actions.exists():
            return []
        return self.actions.read_text(encoding="utf-8").splitlines()

    def wait_recorded(self, line: str) -> list[str]:
        return wait_for(
            lambda: self.recorded() if line in self.recorded() else None,
            timeout=15,
            message=f"{line!r} never recorded; got {self.recorded()}\n"
            f"{self.desk.log_tail(self.name)}",
        )


def _count(desk: DesktopEnv, region: Region, health: Health) -> int:
    return find_named_colour(desk.screenshot(), health.value, region)[0]


def _icon_at(desk: DesktopEnv, region: Region, health: Health) -> tuple[int, int]:
    """Wait for the icon in `health`'s colour; return its centre."""

    def found() -> Region | None:
        count, bbox = find_named_colour(desk.screenshot(), health.value, region)
        return bbox if count >= MIN_PIXELS else None

    bbox = wait_for(found, timeout=15, message=f"no {health.value} icon in the strip {region}")
    return (bbox[0] + bbox[2]) // 2, (bbox[1] + bbox[3]) // 2


def _menu_white(desk: DesktopEnv, strip: Region, tol: int = 8) -> int:
    shot = desk.screenshot()
    below = (0, strip[3], shot.size[0], shot.size[1])
    return find_colour(shot, (255, 255, 255), tol, below)[0]


def _open_menu(desk: DesktopEnv, strip: Region, at: tuple[int, int], button: str = "3") -> None:
    """Click the icon once; its menu must show.

    One click, on every backend: a click that opens nothing is a defect, not a reason to click
    again. (appindicator ignored about 1 right-click in 10 that came just after a menu update:
    libdbusmenu-gtk's deferred hide-and-show of each new menu closed the menu the click had
    just opened; the tray's _refill_one_appindicator_menu keeps one menu instead.)
    """
    desk.xdotool("mousemove", str(at[0]), str(at[1]), "click", button)
    wait_for(
        lambda: _menu_white(desk, strip) >= MENU_WHITE,
        timeout=15,
        message="the menu did not open",
    )


@pytest.fixture(params=["gtk", "appindicator"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_app(
    backend: str, desktop_env: DesktopEnv, tray_host: Region, tmp_path: Path
) -> Iterator[Any]:
    apps: list[TrayApp] = []

    def start(first: dict[str, Any]) -> TrayApp:
        app = TrayApp(desktop_env, backend, tmp_path, first)
        apps.append(app)
        assert app.read() == f"ready {backend}"
        return app

    try:
        yield start
    finally:
        for app in apps:
            desktop_env.stop(app.proc)
        # The next test must find an empty strip and no menu left open.
        wait_for(
            lambda: (
                all(_count(desktop_env, tray_host, h) == 0 for h in (Health.GREEN, Health.RED))
                and _menu_white(desktop_env, tray_host) < MENU_WHITE
            ),
            timeout=15,
            message="an icon or a menu stayed on screen after the app ended",
        )


# ==== tests ====================================================================


@pytest.mark.parametrize(
    "backend", ["gtk", "appindicator", "xorg"]
)  # xorg: agent.desktop.tray._XorgLoop
def test_icon_follows_published_views(
    start_app: Any, desktop_env: DesktopEnv, tray_host: Region, screenshots: Path
) -> None:
    desk = desktop_env
    app: TrayApp = start_app(view_json())
    _icon_at(desk, tray_host, Health.GREEN)
    desk.save_screenshot(screenshots / "tray-green.png", tray_host)

    app.publish(RED)  # from the helper's feeding thread, as the monitor does
    _icon_at(desk, tray_host, Health.RED)
    wait_for(lambda: _count(desk, tray_host, Health.GREEN) == 0, message="green stayed")
    desk.save_screenshot(screenshots / "tray-red.png", tray_host)
    assert app.stats() == {"applied": 1, "icon_changes": 1, "menu_rebuilds": 1}

    # Same colour, other text: the menu is rebuilt, the icon image is not set again.
    app.publish({**RED, "snapshot": {**RED["snapshot"], "summary": "Mac mini: FastAPI down"}})
    wait_for(lambda: app.stats()["applied"] == 2, message="second view never applied")
    assert app.stats() == {"applied": 2, "icon_changes": 1, "menu_rebuilds": 2}
    # The very same view again: nothing to change at all.
    app.publish({**RED, "snapshot": {**RED["snapshot"], "summary": "Mac mini: FastAPI down"}})
    wait_for(lambda: app.stats()["applied"] == 3, message="third view never applied")
    assert app.stats() == {"applied": 3, "icon_changes": 1, "menu_rebuilds": 2}

    app.send("quit")
    assert app.read() == "bye"
    assert app.proc.wait(15) == 0


def test_xorg_quit_survives_a_stop_caller_held_mid_write(
    desktop_env: DesktopEnv, tray_host: Region
) -> None:
    """Quit on xorg while views keep coming, with the interleaving that once hung it forced.

    tests/helpers/xorg_quit_child.py holds the thread calling Tray.stop() right after any write
    it makes to pystray's X connection until the loop is about to sleep with requests queued.
    When Tray.stop() reaches pystray's stop() from that thread, the loop's DestroyWindow is
    never sent and run() never returns. Only pystray's loop thread may use that connection.
    """
    desk = desktop_env
    name = "xorg-quit-child"
    proc = desk.spawn(
        [sys.executable, "-m", "tests.helpers.xorg_quit_child"],
        name=name,
        extra_env={"PYSTRAY_BACKEND": "xorg"},
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    stdout = proc.stdout

    def read(timeout: float = 10.0) -> str:
        try:
            return read_line(stdout, timeout, name)
        except Exception as exc:
            raise AssertionError(f"{exc}\n{desk.log_tail(name)}") from exc

    try:
        assert [read(), read(), read()] == ["ready", "stopping", "stopped"]
        result = json.loads(read())  # printed once run() returned: the quit did not hang
        assert result["foreign_writers"] == [], desk.log_tail(name)
        assert result["applied"] >= 3
        assert read() == "bye"
        assert proc.wait(10) == 0
    finally:
        desk.stop(proc)
        wait_for(
            lambda: all(_count(desk, tray_host, h) == 0 for h in (Health.GREEN, Health.RED)),
            timeout=15,
            message="the xorg icon stayed in the strip after its process ended",
        )


def test_menu_reads_well_and_check_now_reaches_the_app(
    start_app: Any, desktop_env: DesktopEnv, tray_host: Region, screenshots: Path
) -> None:
    desk = desktop_env
    app: TrayApp = start_app(view_json())
    app.publish(RED)
    at = _icon_at(desk, tray_host, Health.RED)

    _open_menu(desk, tray_host, at)
    shot = desk.save_screenshot(screenshots / "menu-red.png")
    print(f"menu screenshot: {shot}")
    desk.xdotool("key", *keys_to(menu_of(RED), "Check now"))
    assert app.wait_recorded("check_now") == ["check_now"]
    wait_for(lambda: _menu_white(desk, tray_host) < MENU_WHITE, message="menu stayed open")

    # The submenu of a node: open it, look, then "Copy address" (carried out by the app).
    _open_menu(desk, tray_host, at)
    keys = keys_to(menu_of(RED), "× Mac mini —", "Copy address")
    desk.xdotool("key", *keys[:-1])
    time.sleep(0.3)  # let the submenu finish drawing: this shot is for people to read
    desk.save_screenshot(screenshots / "menu-mac-mini.png")
    desk.xdotool("key", keys[-1])
    assert app.wait_recorded("copied True")[-2:] == ["copy:100.123.51.5", "copied True"]
    clipboard = subprocess.run(
        [require_tool("xclip"), "-selection", "clipboard", "-o"],
        env=desk.env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert clipboard.stdout == "100.123.51.5"

    # Quit, the last item, ends run() in the app.
    _open_menu(desk, tray_host, at)
    desk.xdotool("key", "Up", "Return")
    assert app.read() == "bye"
    assert app.proc.wait(15) == 0
    assert app.recorded()[-1] == "quit"


def test_pause_menu_item_reports_its_action(
    start_app: Any, desktop_env: DesktopEnv, tray_host: Region
) -> None:
    paused = view_json(paused_until=NOW + 3600)
    app: TrayApp = start_app(paused)
    at = _icon_at(desktop_env, tray_host, Health.GREEN)
    _open_menu(desktop_env, tray_host, at)
    # "Resume" is enabled only while paused: reaching it proves the enabled state arrived.
    desktop_env.xdotool("key", *keys_to(menu_of(paused), "Notifications paused", "Resume"))
    assert app.wait_recorded("resume") == ["resume"]


def test_paused_notifications_show_on_the_icon(
    start_app: Any, desktop_env: DesktopEnv, tray_host: Region, screenshots: Path
) -> None:
    """The pause badge (agent.desktop.icons) appears on the docked icon and goes with Resume; the
    state colour stays readable around it."""
    desk = desktop_env
    app: TrayApp = start_app(view_json())
    _icon_at(desk, tray_host, Health.GREEN)

    def dark() -> int:  # the badge is the outline's colour; the rim alone is far less
        return find_colour(desk.screenshot(), OUTLINE_COLOUR, 30, tray_host)[0]

    plain_dark, plain_green = dark(), _count(desk, tray_host, Health.GREEN)
    app.publish(view_json(paused_until=NOW + 3600))
    wait_for(lambda: dark() >= plain_dark * 1.3, message=f"no pause badge ({dark()} dark px)")
    desk.save_screenshot(screenshots / "tray-paused.png", tray_host)
    assert _count(desk, tray_host, Health.GREEN) >= max(MIN_PIXELS, plain_green * 0.7)
    assert app.stats()["icon_changes"] == 1

    app.publish(view_json())  # resumed
    wait_for(lambda: dark() <= plain_dark * 1.1, message="the pause badge stayed")
    assert app.stats()["icon_changes"] == 2


@pytest.mark.parametrize("backend", ["appindicator"])  # the tray refills its one menu
def test_an_open_menu_stays_as_it_was_shown(
    start_app: Any, desktop_env: DesktopEnv, tray_host: Region
) -> None:
    """A view that changes the menu while it is open leaves the open menu as it is (its items
    stay under the pointer and the keyboard); the next click shows the new menu."""
    desk = desktop_env
    paused = view_json(paused_until=NOW + 3600)
    app: TrayApp = start_app(paused)
    at = _icon_at(desk, tray_host, Health.GREEN)
    _open_menu(desk, tray_host, at)
    resumed = view_json()  # "Resume" is greyed in its menu
    app.publish(resumed)
    wait_for(lambda: app.stats()["applied"] == 1, message="the view was never applied")
    app.publish(resumed)  # applied after the menu update the first one queued (in order)
    wait_for(lambda: app.stats()["applied"] == 2, message="the same view was never applied")
    assert app.stats()["menu_rebuilds"] == 1
    desk.xdotool("key", *keys_to(menu_of(paused), "Notifications paused", "Resume"))
    assert app.wait_recorded("resume") == ["resume"]
    wait_for(lambda: _menu_white(desk, tray_host) < MENU_WHITE, message="menu stayed open")

    _open_menu(desk, tray_host, at)
    desk.xdotool("key", *keys_to(menu_of(resumed), "Pause notifications", "For 1 hour"))
    assert app.wait_recorded("pause_1h") == ["resume", "pause_1h"]


def test_left_click_runs_the_default_item_on_gtk(
    start_app: Any, desktop_env: DesktopEnv, tray_host: Region, backend: str
) -> None:
    app: TrayApp = start_app(view_json())
    at = _icon_at(desktop_env, tray_host, Health.GREEN)
    if backend == "gtk":
        desktop_env.xdotool("mousemove", str(at[0]), str(at[1]), "click", "1")
        assert app.wait_recorded("check_now") == ["check_now"]
    else:  # appindicator has no default action: a left click opens the menu
        _open_menu(desktop_env, tray_host, at, button="1")
        desktop_env.xdotool("key", "Escape")
        assert app.recorded() == []


@pytest.mark.parametrize("backend", ["gtk"])  # pystray's own StatusIcon: the tooltip is ours
def test_hovering_shows_the_tooltip(
    start_app: Any, desktop_env: DesktopEnv, tray_host: Region, screenshots: Path
) -> None:
    desk = desktop_env
    start_app(view_json())
    at = _icon_at(desk, tray_host, Health.GREEN)
    assert _menu_white(desk, tray_host) == 0  # the screen below the strip is black
    desk.xdotool("mousemove", str(at[0]), str(at[1]))
    # The tooltip's text (light on dark) appears under the strip after GTK's hover delay.
    wait_for(
        lambda: 30 <= _menu_white(desk, tray_host, tol=60) < MENU_WHITE,
        timeout=15,
        message="no tooltip appeared over the icon",
    )
    desk.save_screenshot(screenshots / "tooltip.png")
    desk.xdotool("mousemove", "600", "600")


def test_tray_available_here(desktop_env: DesktopEnv, backend: str) -> None:
    code = "from agent.desktop.tray import tray_available; print(repr(tray_available()))"
    env = {**desktop_env.env, "PYSTRAY_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == repr((True, f"pystray backend '{backend}'")), done.stderr


def test_tray_available_without_a_session_bus(desktop_env: DesktopEnv, tmp_path: Path) -> None:
    """gtk/appindicator hang in run() without a session bus: say so before starting."""
    code = "from agent.desktop.tray import tray_available; print(repr(tray_available()))"
    env = {k: v for k, v in desktop_env.env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env.update(PYSTRAY_BACKEND="gtk", XDG_RUNTIME_DIR=str(tmp_path))  # no "bus" socket there
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.stdout.strip() == repr(
        (
            False,
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus): "
            "the gtk tray needs a desktop session; run `tailnet-agent run --headless`",
        )
    ), done.stderr


def test_copy_text_puts_it_on_the_x_clipboard(
    desktop_env: DesktopEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.desktop.actions import clipboard_commands, copy_text

    monkeypatch.setenv("DISPLAY", desktop_env.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("PATH", os.environ["PATH"])
    assert clipboard_commands()[0][0][0] == require_tool("xclip")
    assert copy_text("100.64.0.7 ünïcode")
    out = subprocess.run(
        [require_tool("xclip"), "-selection", "clipboard", "-o"],
        env=desktop_env.env,
        capture_output=True,
        timeout=10,
        check=True,
    )
    assert out.stdout.decode("utf-8") == "100.64.0.7 ünïcode"
