"""End to end: the real `tailnet-agent tray` on a private desktop over a loopback network.

The icon docks green in trayer; when the backend process is killed it turns red
and a notification arrives; when the backend returns it turns green again. The
menu opens on a right click (a screenshot is kept) and Quit ends the agent.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.core.model import Health
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES, installed_agent
from tests.desktop.test_headless_e2e import MACMINI, flaky_server, start_backend, topology
from tests.desktop.test_tray_real import _count, _icon_at, _open_menu
from tests.helpers.desktop import DesktopEnv, NotificationLog, Region, wait_for
from tests.helpers.servers import free_port

pytestmark = pytest.mark.linux_desktop


@pytest.mark.parametrize("backend", ["gtk", "appindicator"])
def test_agent_tray_turns_red_when_the_backend_drops(
    backend: str,
    desktop_env: DesktopEnv,
    tray_host: Region,
    notification_log: NotificationLog,
    tmp_path: Path,
) -> None:
    desk = desktop_env
    fastapi_port = free_port(MACMINI)
    server = start_backend(fastapi_port, tmp_path)
    with flaky_server("127.0.0.1") as ollama:
        topo = tmp_path / "topology.toml"
        topo.write_text(topology(ollama.server_address[1], fastapi_port), encoding="utf-8")
        agent = desk.spawn(
            [installed_agent(), "tray", "--topology", str(topo)],
            name=f"agent-tray-{backend}",
            extra_env={
                "PATH": f"{FAKE_TAILSCALE_DIR}:{desk.env['PATH']}",
                "FAKE_TAILSCALE_JSON": str(TAILSCALE_FIXTURES / "loopback_all_direct.json"),
                "PYSTRAY_BACKEND": backend,
                # its own history: a problem another test left open would be carried forward
                "XDG_STATE_HOME": str(tmp_path / "state"),
            },
        )
        try:
            at = _icon_at(desk, tray_host, Health.GREEN)
            desk.save_screenshot(tmp_path / f"agent-green-{backend}.png", tray_host)

            server.send_signal(signal.SIGKILL)
            server.wait(5)
            _icon_at(desk, tray_host, Health.RED)
            assert _count(desk, tray_host, Health.GREEN) == 0
            down = notification_log.wait_for(lambda r: "FastAPI down" in r["summary"], 20)
            assert "refused" in down["body"]

            _open_menu(desk, tray_host, at)
            desk.save_screenshot(tmp_path / f"agent-menu-red-{backend}.png")
            desk.xdotool("key", "Escape")

            server = start_backend(fastapi_port, tmp_path)
            _icon_at(desk, tray_host, Health.GREEN)

            _open_menu(desk, tray_host, at)
            desk.xdotool("key", "Up", "Return")  # Quit, the last item
            assert agent.wait(15) == 0, desk.log_tail(f"agent-tray-{backend}")
        finally:
            if agent.poll() is None:
                desk.stop(agent)
            server.kill()
            server.wait(5)
    wait_for(
        lambda: _count(desk, tray_host, Health.GREEN) == 0, 15, message="the icon stayed docked"
    )
    assert desk.outside_connections() == []
