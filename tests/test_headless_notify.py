"""`tailnet-agent run --headless` where no desktop can show a notification: it says so once.

A server (or a CI runner) has no session bus and no display. Every desktop backend needs the
session bus (D-Bus itself, notify-send, plyer's dbus-python), so the agent must not pick one
that can only fail, and must not log "notification shown" for what nobody saw. The real agent
runs with the stand-in tailscale failing (a critical "Tailscale cannot be reached here" at the
first sweep) and the real notify-send on PATH.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from tests.conftest import AgentSandbox, installed_agent
from tests.helpers.desktop import wait_for

TOPOLOGY = """
version = 1
name = "headless"

[defaults]
interval = "1s"
timeout = "1s"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"
"""


def test_headless_without_a_session_bus_says_once_that_notifications_go_to_the_log(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    assert shutil.which("notify-send", path=sandbox.env["PATH"]), "apt-get install libnotify-bin"
    sandbox.use_fake_tailscale(mode="fail")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        sandbox.env.pop(name, None)
    runtime = tmp_path / "runtime"  # no "bus" socket in it
    runtime.mkdir(mode=0o700)
    sandbox.env["XDG_RUNTIME_DIR"] = str(runtime)
    topology = tmp_path / "topology.toml"
    topology.write_text(TOPOLOGY, encoding="utf-8")
    stderr = tmp_path / "stderr.log"

    with stderr.open("wb") as err:
        agent = subprocess.Popen(
            [installed_agent(), "run", "--headless", "--topology", str(topology)],
            env=sandbox.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:

        def said() -> str:
            return stderr.read_text(encoding="utf-8", errors="replace")

        def notified() -> bool:
            return any(
                line.startswith(("INFO agent.", "WARNING agent."))
                and "notification" in line
                and "Tailscale cannot be reached here" in line
                for line in said().splitlines()
            )

        wait_for(notified, 30, message=f"no notification line:\n{said()}")
    finally:
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
        code = agent.wait(15)
    text = said()
    assert code == 0, text
    assert text.count("notifications go to the log only") == 1, text
    assert "notification shown" not in text, text
    assert "Cannot autolaunch D-Bus" not in text, text  # notify-send was not even tried
    assert sandbox.outside_connections() == []
