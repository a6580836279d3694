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
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent import __version__
from agent.core.model import Health
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES, installed_agent
from tests.desktop.test_headless_e2e import APP_ICON, flaky_server
from tests.desktop.test_tray_real import MENU_WHITE, _count, _icon_at, _menu_white, _open_menu
from tests.helpers.desktop import DesktopEnv, NotificationLog, Region, require_tool, wait_for

pytestmark = pytest.mark.linux_desktop

SELF_IP = "127.0.0.1"  # loopback_all_direct.json: this machine ("sweetlife")
FAKE_XDG_OPEN = Path(__file__).resolve().parents[1] / "helpers" / "fake_opener" / "xdg-open"


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
    port: int  # the "Ollama" service's
    state: Path  # its XDG_STATE_HOME: the log and the history, this agent's alone

    def stderr(self) -> str:
        return self.desk.log_tail(self.name, 200_000)

    @property
    def log_dir(self) -> Path:
        return self.state / "tailnet-agent" / "log"

    def log_file(self) -> str:
        path = self.log_dir / "tailnet-agent.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def wait_logged(self, text: str) -> None:
        wait_for(lambda: text in self.log_file(), message=f"{text!r} not in:\n{self.log_file()}")


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
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            **(extra_env or {}),
        }
        if bus is not None:
            env["DBUS_SESSION_BUS_ADDRESS"] = bus
        name = f"agent-{backend}-{tmp_path.name}"
        proc = desk.spawn([installed_agent(), "tray", "--topology", str(topo)], name=name,
                          extra_env=env)  # fmt: skip
        agent = Agent(desk, proc, name, topo, ollama.server_address[1], tmp_path / "state")
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


# ==== item 3: open actions that cannot open ====================================

# The bottom of the menu, reached from the end with Up (GTK's first Up selects the last item).
OPEN_TOPOLOGY = ("Up",) * 4
OPEN_LOGS = ("Up",) * 3
ABOUT = ("Up",) * 2
# The status line, then the one node's submenu, whose first selectable item is the Ollama
# line (its own submenu: why, Snooze alerts; the link line above it is not clickable), then
# "Open Ollama in browser", then "Copy address".
OPEN_OLLAMA = ("Down", "Down", "Right", "Down")
COPY_ADDRESS = ("Down", "Down", "Right", "Down", "Down")


def _bin_dir(tmp_path: Path, *tools: tuple[str, Path | str]) -> str:
    """A PATH of exactly these programs (name, target): no xdg-open, gio or browser unless given."""
    folder = tmp_path / "bin"
    folder.mkdir()
    base = [
        ("tailscale", FAKE_TAILSCALE_DIR / "tailscale"),
        ("python3", sys.executable),  # the stand-in tailscale's interpreter
    ]
    for name, target in [*base, *tools]:
        (folder / name).symlink_to(target)
    return str(folder)


def _click(agent: Agent, strip: Region, at: tuple[int, int], keys: tuple[str, ...]) -> None:
    desk = agent.desk
    _open_menu(desk, strip, at)
    desk.xdotool("key", *keys, "Return")
    wait_for(lambda: _menu_white(desk, strip) < MENU_WHITE, message="the menu stayed open")


def _clipboard(desk: DesktopEnv) -> str:
    done = subprocess.run(
        [require_tool("xclip"), "-selection", "clipboard", "-o"],
        env=desk.env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_open_actions_without_any_opener_tell_the_user_and_copy_the_target(
    desktop_env: DesktopEnv, tray_host: Region, notification_log: NotificationLog, tmp_path: Path
) -> None:
    """No xdg-open, no gio, no browser: each open action says so in a notification that names
    the path or link, and puts it on the clipboard (the notification says that too)."""
    desk = desktop_env
    path = _bin_dir(tmp_path, ("xclip", require_tool("xclip")))
    with agent_tray(desk, tray_host, tmp_path, path=path, extra_env={"BROWSER": ""}) as agent:
        at = _icon_at(desk, tray_host, Health.GREEN)
        url = f"http://{SELF_IP}:{agent.port}/api/tags"
        cases = [
            (OPEN_TOPOLOGY, "Could not open the topology file", str(agent.topology)),
            (OPEN_LOGS, "Could not open the log folder", str(agent.log_dir)),
            (OPEN_OLLAMA, "Could not open the link", url),
        ]
        for keys, title, target in cases:
            notification_log.mark()
            _click(agent, tray_host, at, keys)
            shown = notification_log.wait_for(lambda r, t=title: r["summary"] == t)
            assert target in shown["body"], shown
            assert "clipboard" in shown["body"], shown
            wait_for(lambda t=target: _clipboard(desk) == t, message=f"{target} not copied")
            agent.wait_logged(f"could not open {target}")


def test_a_failing_opener_is_told_and_its_complaint_logged(
    desktop_env: DesktopEnv, tray_host: Region, notification_log: NotificationLog, tmp_path: Path
) -> None:
    """xdg-open runs but fails (exit 4, gio's "No application is registered"): the exit status
    is read, the user is told, and what the opener printed lands in the agent's log."""
    desk = desktop_env
    calls = tmp_path / "xdg-open.log"
    path = _bin_dir(tmp_path, ("xclip", require_tool("xclip")), ("xdg-open", FAKE_XDG_OPEN))
    env = {"FAKE_XDG_OPEN_EXIT": "4", "FAKE_XDG_OPEN_LOG": str(calls)}
    with agent_tray(desk, tray_host, tmp_path, path=path, extra_env=env) as agent:
        at = _icon_at(desk, tray_host, Health.GREEN)
        url = f"http://{SELF_IP}:{agent.port}/api/tags"
        for keys, title, target in [
            (OPEN_LOGS, "Could not open the log folder", str(agent.log_dir)),
            (OPEN_OLLAMA, "Could not open the link", url),
        ]:
            notification_log.mark()
            _click(agent, tray_host, at, keys)
            shown = notification_log.wait_for(lambda r, t=title: r["summary"] == t)
            assert target in shown["body"] and "exit status 4" in shown["body"], shown
            agent.wait_logged(f"{target}: No application is registered")
        assert _lines(calls) == [str(agent.log_dir), url]


def test_a_working_opener_is_used_and_nothing_else_is_said(
    desktop_env: DesktopEnv, tray_host: Region, notification_log: NotificationLog, tmp_path: Path
) -> None:
    desk = desktop_env
    calls = tmp_path / "xdg-open.log"
    path = _bin_dir(tmp_path, ("xclip", require_tool("xclip")), ("xdg-open", FAKE_XDG_OPEN))
    env = {"FAKE_XDG_OPEN_LOG": str(calls)}
    with agent_tray(desk, tray_host, tmp_path, path=path, extra_env=env) as agent:
        at = _icon_at(desk, tray_host, Health.GREEN)
        url = f"http://{SELF_IP}:{agent.port}/api/tags"
        notification_log.mark()
        for keys in (OPEN_TOPOLOGY, OPEN_LOGS, OPEN_OLLAMA):
            _click(agent, tray_host, at, keys)
        expected = [str(agent.topology), str(agent.log_dir), url]
        wait_for(lambda: _lines(calls) == expected, message=f"xdg-open calls: {_lines(calls)}")
        _click(agent, tray_host, at, ABOUT)  # a notification after the opens: they sent none
        about = notification_log.wait_for(lambda r: r["summary"].startswith("tailnet-agent"))
        assert [r["summary"] for r in notification_log.records()] == [about["summary"]]


# ==== rough edge: "Copy address" said nothing ==================================


def test_copy_address_is_confirmed(
    desktop_env: DesktopEnv, tray_host: Region, notification_log: NotificationLog, tmp_path: Path
) -> None:
    desk = desktop_env
    path = _bin_dir(tmp_path, ("xclip", require_tool("xclip")))
    with agent_tray(desk, tray_host, tmp_path, path=path) as agent:
        at = _icon_at(desk, tray_host, Health.GREEN)
        notification_log.mark()
        _click(agent, tray_host, at, COPY_ADDRESS)
        shown = notification_log.wait_for(lambda r: r["summary"] == f"Copied {SELF_IP}")
        assert "clipboard" in shown["body"]
        assert _clipboard(desk) == SELF_IP


def test_without_a_clipboard_tool_the_user_is_told(
    desktop_env: DesktopEnv, tray_host: Region, notification_log: NotificationLog, tmp_path: Path
) -> None:
    """No xclip, xsel or wl-copy (and no opener): "Copy address" says why it could not, and a
    failed open names the path to open by hand instead of claiming it was copied."""
    desk = desktop_env
    with agent_tray(desk, tray_host, tmp_path, path=_bin_dir(tmp_path)) as agent:
        at = _icon_at(desk, tray_host, Health.GREEN)
        notification_log.mark()
        _click(agent, tray_host, at, COPY_ADDRESS)
        failed = notification_log.wait_for(lambda r: r["summary"] == f"Could not copy {SELF_IP}")
        assert "xclip" in failed["body"], failed
        _click(agent, tray_host, at, OPEN_LOGS)
        shown = notification_log.wait_for(lambda r: r["summary"] == "Could not open the log folder")
        assert shown["body"].endswith(f"Open it yourself: {agent.log_dir}"), shown


# ==== rough edge: About showed no paths ========================================


def test_about_names_the_files_in_use_and_the_versions(
    desktop_env: DesktopEnv, tray_host: Region, notification_log: NotificationLog, tmp_path: Path
) -> None:
    desk = desktop_env
    with agent_tray(desk, tray_host, tmp_path) as agent:
        at = _icon_at(desk, tray_host, Health.GREEN)  # a sweep is in: Tailscale's version known
        notification_log.mark()
        _click(agent, tray_host, at, ABOUT)
        about = notification_log.wait_for(lambda r: r["summary"].startswith("tailnet-agent"))
    assert about["summary"] == f"tailnet-agent {__version__}"
    assert about["app_icon"] == APP_ICON.as_uri()  # app.run_tray passes the icon
    history = agent.state / "tailnet-agent" / "history.sqlite3"
    assert about["body"].splitlines() == [
        f"Topology: {agent.topology}",
        f"Log folder: {agent.log_dir}",
        f"History: {history}",
        "Tailscale 1.102.3",  # loopback_all_direct.json: "1.102.3-t5f2a9c1e7-g0b3d6a8f1"
    ]
