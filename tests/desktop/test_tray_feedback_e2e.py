"""End to end: what the real `tailnet-agent tray` tells the user when something around it fails.

Issue 7 ("what a newcomer hit"): Quit with no notification service on the session bus, the
menu's open actions with no browser or `xdg-open`, "Copy address", About, and paused
notifications on the icon. Each test runs the installed agent on the private desktop (Xvfb,
trayer, a private session bus with the capture server, or a second bus without one) over a
loopback network, clicks its real menu with xdotool and reads what reached the user: the
notifications the capture server recorded, the clipboard, the screen, the agent's log.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.core.model import Health
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES, installed_agent
from tests.desktop.test_headless_e2e import flaky_server
from tests.desktop.test_tray_real import _count, _icon_at, _open_menu
from tests.helpers.desktop import DesktopEnv, Region, wait_for

pytestmark = pytest.mark.linux_desktop

SELF_IP = "127.0.0.1"  # loopback_all_direct.json: this machine ("sweetlife")


@pytest.fixture(scope="session")
def silent_bus(desktop_env: DesktopEnv) -> str:
    """A second session bus on which nobody owns org.freedesktop.Notifications."""
    return desktop_env.start_session_bus(name="dbus-daemon-silent")


def _topology(port: int) -> str:
    return f"""
version = 1
name = "feedback"

[defaults]
interval = "2s"
timeout = "1s"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "{SELF_IP}"

  [[nodes.services]]
  name = "Ollama"
  port = {port}
  check = "http"
  path = "/api/tags"
  open = true
"""


@dataclass
class Agent:
    """The agent's process, its name in the desktop's logs and where its files are."""

    desk: DesktopEnv
    proc: subprocess.Popen[bytes]
    name: str
    topology: Path

    def stderr(self) -> str:
        return self.desk.log_tail(self.name, 200_000)

    def log_file(self) -> str:
        path = Path(self.desk.env["XDG_STATE_HOME"]) / "tailnet-agent" / "log" / "tailnet-agent.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


@contextlib.contextmanager
def agent_tray(
    desk: DesktopEnv,
    strip: Region,
    tmp_path: Path,
    *,
    backend: str = "gtk",
    bus: str | None = None,
    path: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Agent]:
    """The real agent's tray, green on the strip; stopped (if still running) on the way out."""
    with flaky_server(SELF_IP) as ollama:
        topo = tmp_path / "topology.toml"
        topo.write_text(_topology(ollama.server_address[1]), encoding="utf-8")
        env = {
            "PATH": path or f"{FAKE_TAILSCALE_DIR}:{desk.env['PATH']}",
            "FAKE_TAILSCALE_JSON": str(TAILSCALE_FIXTURES / "loopback_all_direct.json"),
            "PYSTRAY_BACKEND": backend,
            **(extra_env or {}),
        }
        if bus is not None:
            env["DBUS_SESSION_BUS_ADDRESS"] = bus
        name = f"agent-{backend}-{tmp_path.name}"
        proc = desk.spawn([installed_agent(), "tray", "--topology", str(topo)], name=name,
                          extra_env=env)  # fmt: skip
        agent = Agent(desk, proc, name, topo)
        try:
            yield agent
        finally:
            if proc.poll() is None:
                desk.stop(proc)
            wait_for(
                lambda: all(_count(desk, strip, h) == 0 for h in Health),
                15,
                message="the icon stayed in the strip after the agent ended",
            )
    assert desk.outside_connections() == []


# ==== item 2: Quit without a notification service ==============================


@pytest.mark.parametrize("backend", ["gtk", "appindicator"])
def test_quit_is_clean_without_a_notification_service(
    backend: str, desktop_env: DesktopEnv, tray_host: Region, silent_bus: str, tmp_path: Path
) -> None:
    """pystray's gtk/appindicator close a notification on the way out (CloseNotification with
    id 0, though the agent never notified through pystray); with nobody owning
    org.freedesktop.Notifications that raised GLib.GError ServiceUnknown out of run()."""
    desk = desktop_env
    with agent_tray(desk, tray_host, tmp_path, backend=backend, bus=silent_bus) as agent:
        at = _icon_at(desk, tray_host, Health.GREEN)
        _open_menu(desk, tray_host, at)
        desk.xdotool("key", "Up", "Return")  # Quit, the last item
        code = agent.proc.wait(15)
        assert "Traceback" not in agent.stderr(), agent.stderr()
        assert "Traceback" not in agent.log_file(), agent.log_file()
        assert code == 0, agent.stderr()
