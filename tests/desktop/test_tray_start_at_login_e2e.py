"""End to end: start at login on a private desktop, from the CLI to the tray's own checkbox.

`tailnet-agent autostart enable` writes the XDG autostart entry in the desktop's HOME; the
entry's command (parsed by GLib, as a session parses it at login) starts the real tray, which
docks green over a loopback network. Unticking "Start at login" in its menu removes the entry;
ticking it again writes the same command back (the tray's own options); Quit ends the agent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.core.model import Health
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES, installed_agent
from tests.desktop.test_tray_real import _count, _icon_at, _open_menu
from tests.helpers.desktop import DesktopEnv, Region, wait_for
from tests.helpers.servers import http_server

pytestmark = pytest.mark.linux_desktop

# Keyboard walk from the bottom of the menu (separators are skipped): Quit, About, Open log
# folder, Open topology file, Start at login.
TO_START_AT_LOGIN = ["Up"] * 5


def _exec_argv(entry: Path) -> list[str]:
    import gi

    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib

    info = Gio.DesktopAppInfo.new_from_filename(str(entry))
    assert info is not None, entry.read_text()
    ok, argv = GLib.shell_parse_argv(info.get_commandline().replace("%%", "%"))
    assert ok
    return list(argv)


def test_login_entry_starts_the_tray_and_its_checkbox_turns_it_off_and_on(
    desktop_env: DesktopEnv, tray_host: Region, tmp_path: Path
) -> None:
    desk = desktop_env
    env = dict(desk.env)
    env.update(
        PATH=f"{FAKE_TAILSCALE_DIR}:{env['PATH']}",
        FAKE_TAILSCALE_JSON=str(TAILSCALE_FIXTURES / "loopback_all_direct.json"),
        PYSTRAY_BACKEND="gtk",
    )
    entry = Path(env["XDG_CONFIG_HOME"]) / "autostart" / "tailnet-agent.desktop"
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(
            'version = 1\nname = "t"\n[defaults]\ninterval = "2s"\n'
            '[[nodes]]\nid = "desktop"\nhostname = "sweetlife"\nip = "127.0.0.1"\n'
            f'[[nodes.services]]\nname = "Ollama"\nport = {port}\ncheck = "http"\n',
            encoding="utf-8",
        )
        enabled = subprocess.run(
            [
                installed_agent(),
                "autostart",
                "enable",
                "--topology",
                str(topo),
                "--node",
                "desktop",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert enabled.returncode == 0, enabled.stderr
        argv = _exec_argv(entry)
        assert argv == [installed_agent(), "--topology", str(topo), "--node", "desktop"]

        agent = desk.spawn(argv, name="agent-login", extra_env=env)
        try:
            at = _icon_at(desk, tray_host, Health.GREEN)

            _open_menu(desk, tray_host, at)
            desk.xdotool("key", *TO_START_AT_LOGIN, "Return")
            wait_for(lambda: not entry.exists(), 15, message="unticking kept the entry")

            _open_menu(desk, tray_host, at)
            desk.save_screenshot(tmp_path / "menu-start-at-login-off.png")
            desk.xdotool("key", *TO_START_AT_LOGIN, "Return")
            wait_for(entry.exists, 15, message="ticking wrote no entry")
            assert _exec_argv(entry) == argv  # the tray's own options, written back

            _open_menu(desk, tray_host, at)
            desk.xdotool("key", "Up", "Return")  # Quit
            assert agent.wait(15) == 0, desk.log_tail("agent-login")
        finally:
            if agent.poll() is None:
                desk.stop(agent)
            entry.unlink(missing_ok=True)
    wait_for(
        lambda: _count(desk, tray_host, Health.GREEN) == 0, 15, message="the icon stayed docked"
    )
    log = Path(env["XDG_STATE_HOME"]) / "tailnet-agent" / "log" / "tailnet-agent.log"
    text = log.read_text(encoding="utf-8")
    assert f"start at login off: {entry}" in text
    assert f"start at login on: {entry} {' '.join(argv)}" in text
    assert "Traceback" not in desk.log_tail("agent-login", 20_000)
    assert desk.outside_connections() == []
