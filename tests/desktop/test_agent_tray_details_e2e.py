"""End to end: the desktop node's submenu shows Ollama's models and ComfyUI's queue (issue 10).

The real `tailnet-agent tray` runs on the private desktop (Xvfb, trayer, a private session
bus) over the loopback network of tests/fixtures/tailscale/loopback_all_direct.json, where
this machine is the desktop node ("sweetlife", 127.0.0.1). Its Ollama and ComfyUI are the
demo's stand-ins (agent.demo.standins), which answer /api/tags, /api/ps, /queue and
/system_stats in the real programs' shapes. The test opens the menu with a right click,
then the desktop node's submenu with the keyboard, and keeps both screenshots for people
to read (in the test's tmp dir, or in $TAILNET_AGENT_SHOTS when set). It checks what can be
checked without reading pixels as text: a second popup window (the submenu) is mapped and
painted beside the menu, and, on appindicator, the submenu's lines as the agent exported
them over dbusmenu (the gtk backend's GtkMenu cannot be read from outside its process).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.core.model import CheckKind, Health, Service
from agent.demo.standins import StandIn
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES, installed_agent
from tests.desktop.test_tray_real import MENU_WHITE, _icon_at, _menu_white, _open_menu
from tests.helpers.dbusmenu import read_menu
from tests.helpers.desktop import (
    DesktopEnv,
    Region,
    find_colour,
    unix_sockets_allowed,
    wait_for,
)

pytestmark = pytest.mark.linux_desktop

SELF_IP = "127.0.0.1"  # loopback_all_direct.json: this machine ("sweetlife")
OLLAMA_LINE = "↳ 2 models: llama3.1:8b, qwen2.5:14b · loaded: llama3.1:8b"
COMFYUI_LINE = "↳ queue: 1 running, 2 pending · VRAM 7.8 of 24.0 GiB used"


@contextlib.contextmanager
def stand_ins(host: str, *services: Service) -> Iterator[dict[str, int]]:
    """The demo's stand-ins for `services` on `host`, served from a thread: name -> port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="stand-ins", daemon=True)
    thread.start()
    running = [StandIn(service, host) for service in services]

    def on_loop(coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    try:
        for stand_in in running:
            on_loop(stand_in.start())
        yield {s.name: int(s.port or 0) for s in running}
    finally:
        for stand_in in running:
            on_loop(stand_in.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _topology(ollama_port: int, comfyui_port: int) -> str:
    return f"""
version = 1
name = "Sparklio (loopback)"

[defaults]
interval = "2s"
timeout = "1s"

[[nodes]]
id = "desktop"
name = "Desktop — GPU Worker"
hostname = "sweetlife"
ip = "{SELF_IP}"

  [[nodes.services]]
  name = "Ollama"
  port = {ollama_port}
  check = "http"
  path = "/api/tags"

  [[nodes.services]]
  name = "ComfyUI"
  port = {comfyui_port}
  check = "http"
  path = "/"

[[nodes]]
id = "laptop"
name = "Laptop — Frontend Dev"
hostname = "desktop-ecmkau8"
ip = "127.0.0.2"
always_on = false

[[nodes]]
id = "macmini"
name = "Mac mini — Backend Server"
hostname = "woosuns-mac-mini"
ip = "127.0.0.3"
"""


def _popups(desk: DesktopEnv) -> list[Region]:
    """The mapped override-redirect windows on screen (menus, submenus, tooltips), left to
    right. (GTK keeps a 10x10 one mapped at -100,-100: off screen, left out.)"""
    from Xlib import X
    from Xlib import display as xdisplay

    with unix_sockets_allowed():
        conn = xdisplay.Display(desk.display)
        try:
            found = []
            for window in conn.screen().root.query_tree().children:
                attrs = window.get_attributes()
                if attrs.map_state != X.IsViewable or not attrs.override_redirect:
                    continue
                g = window.get_geometry()
                if g.x + g.width > 0 and g.y + g.height > 0:
                    found.append((g.x, g.y, g.x + g.width, g.y + g.height))
            return sorted(found)
        finally:
            conn.close()


@pytest.mark.parametrize("backend", ["gtk", "appindicator"])
def test_the_desktop_nodes_submenu_shows_the_models_and_the_queue(
    backend: str, desktop_env: DesktopEnv, tray_host: Region, tmp_path: Path
) -> None:
    desk = desktop_env
    shots = Path(os.environ.get("TAILNET_AGENT_SHOTS") or tmp_path)
    # The real programs' ports when free here (else any: the lines checked carry no port).
    ollama = Service("Ollama", 11434, CheckKind.HTTP, "/api/tags")
    comfyui = Service("ComfyUI", 8188, CheckKind.HTTP, "/")
    with stand_ins(SELF_IP, ollama, comfyui) as ports:
        topo = tmp_path / "topology.toml"
        topo.write_text(_topology(ports["Ollama"], ports["ComfyUI"]), encoding="utf-8")
        name = f"agent-tray-details-{backend}"
        agent = desk.spawn(
            [installed_agent(), "tray", "--topology", str(topo)],
            name=name,
            extra_env={
                "PATH": f"{FAKE_TAILSCALE_DIR}:{desk.env['PATH']}",
                "FAKE_TAILSCALE_JSON": str(TAILSCALE_FIXTURES / "loopback_all_direct.json"),
                "PYSTRAY_BACKEND": backend,
                "XDG_STATE_HOME": str(tmp_path / "state"),
            },
        )
        try:
            at = _icon_at(desk, tray_host, Health.GREEN)
            _open_menu(desk, tray_host, at)
            wait_for(lambda: len(_popups(desk)) == 1, message="no menu window mapped")
            (menu,) = _popups(desk)
            desk.save_screenshot(shots / f"menu-{backend}.png")
            # The status line, then the first node (this machine): Down Down Right opens it.
            desk.xdotool("key", "Down", "Down", "Right")

            seen: list[Region] = []

            def submenu_shown() -> Region | None:
                """The submenu once mapped beside the menu, where it was at the last look,
                and painted (mostly the menu's white where the screen was black).
                libdbusmenu-gtk (appindicator) fills it as the items arrive, and sometimes
                opens the selected Ollama line's own submenu too: a third popup, left of
                it for want of room on the right, over the menu."""
                beside = [p for p in _popups(desk) if p != menu and p[0] >= menu[2] - 8]
                if not beside:
                    return None
                box = beside[0]  # the nearest: a nested submenu opens further right
                settled = seen[-1:] == [box]
                seen.append(box)
                area = (box[2] - box[0]) * (box[3] - box[1])
                white = find_colour(desk.screenshot(), (255, 255, 255), 8, box)[0]
                return box if settled and white > area // 2 else None

            try:
                submenu = wait_for(submenu_shown)
            except TimeoutError:
                desk.save_screenshot(shots / f"no-submenu-{backend}.png")
                raise AssertionError(
                    f"no submenu painted beside the menu {menu}: now {_popups(desk)}, "
                    f"last seen {seen[-3:]}; screenshot in {shots}"
                ) from None
            desk.save_screenshot(shots / f"desktop-submenu-{backend}.png")
            print(f"menu {menu}, submenu {submenu}; screenshots in {shots}")
            if backend == "appindicator":
                node = read_menu(desk.bus_address, agent.pid).find("✓ Desktop — GPU Worker")
                lines = node.lines()
                print("\n".join(lines))
                assert lines[0] == "This machine"
                for service, details in (("Ollama", OLLAMA_LINE), ("ComfyUI", COMFYUI_LINE)):
                    head = f"✓ {service} :{ports[service]} — up"
                    (at_line,) = [i for i, line in enumerate(lines) if line.startswith(head)]
                    assert lines[at_line + 1] == details, lines  # right under its service
            desk.xdotool("key", "Escape", "Escape")
            wait_for(lambda: _menu_white(desk, tray_host) < MENU_WHITE, message="menu stayed")
        finally:
            desk.stop(agent)
    assert desk.outside_connections() == []
