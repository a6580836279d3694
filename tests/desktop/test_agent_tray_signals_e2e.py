"""End to end: the real `tailnet-agent tray` stops cleanly on SIGTERM and SIGINT.

A service manager, a logout or `kill` ends the tray with SIGTERM; Ctrl+C in the terminal
it was started from, with SIGINT. Either way the agent must leave as Quit does: the icon
leaves the tray, the monitor and the instance lock are released, the log says why, and
the exit code is 0 (not 143 or 130).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.core.model import Health
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES, installed_agent
from tests.desktop.test_headless_e2e import flaky_server
from tests.desktop.test_tray_real import _count, _icon_at
from tests.helpers.desktop import DesktopEnv, Region, wait_for

pytestmark = pytest.mark.linux_desktop

TOPOLOGY = """
version = 1
name = "Signals"
[defaults]
interval = "2s"
timeout = "1s"
[[nodes]]
id = "desktop"
hostname = "sweetlife"
ip = "127.0.0.1"
  [[nodes.services]]
  name = "Ollama"
  port = {port}
  check = "http"
"""


@pytest.mark.parametrize("backend", ["gtk", "appindicator", "xorg"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_agent_tray_stops_cleanly_on_a_signal(
    sig: signal.Signals,
    backend: str,
    desktop_env: DesktopEnv,
    tray_host: Region,
    tmp_path: Path,
) -> None:
    desk = desktop_env
    log_file = Path(desk.env["XDG_STATE_HOME"]) / "tailnet-agent" / "log" / "tailnet-agent.log"
    seen = log_file.read_text() if log_file.exists() else ""
    name = f"agent-tray-{backend}-{sig.name}"
    with flaky_server("127.0.0.1") as ollama:
        topo = tmp_path / "topology.toml"
        topo.write_text(TOPOLOGY.format(port=ollama.server_address[1]), encoding="utf-8")
        agent = desk.spawn(
            [installed_agent(), "tray", "--topology", str(topo)],
            name=name,
            extra_env={
                "PATH": f"{FAKE_TAILSCALE_DIR}:{desk.env['PATH']}",
                "FAKE_TAILSCALE_JSON": str(TAILSCALE_FIXTURES / "loopback_all_direct.json"),
                "PYSTRAY_BACKEND": backend,
            },
        )
        try:
            _icon_at(desk, tray_host, Health.GREEN)
            agent.send_signal(sig)
            assert agent.wait(20) == 0, desk.log_tail(name)
        finally:
            if agent.poll() is None:
                desk.stop(agent)
    wait_for(
        lambda: _count(desk, tray_host, Health.GREEN) == 0, 15, message="the icon stayed docked"
    )
    written = log_file.read_text()[len(seen) :]
    assert f"stopping on {sig.name}" in written, written
    assert "Traceback" not in desk.log_tail(name, 20000)
    assert desk.outside_connections() == []
