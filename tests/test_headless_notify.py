"""`tailnet-agent run --headless` where no desktop can show a notification: it says so once.

A server (or a CI runner) has no session bus and no display. Every desktop backend needs the
session bus (D-Bus itself, notify-send, plyer's dbus-python), so the agent must not pick one
that can only fail, and must not log "notification shown" for what nobody saw. The real agent
runs with the stand-in tailscale failing (a critical "Tailscale cannot be reached here" at the
first sweep) and the real notify-send on PATH.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import AgentSandbox
from tests.helpers.running_agent import running_agent

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
    runtime = tmp_path / "runtime"  # no "bus" socket in it
    runtime.mkdir(mode=0o700)
    sandbox.env["XDG_RUNTIME_DIR"] = str(runtime)
    topology = tmp_path / "topology.toml"
    topology.write_text(TOPOLOGY, encoding="utf-8")

    def notified() -> bool:
        return any(
            line.startswith(("INFO agent.", "WARNING agent."))
            and "notification" in line
            and "Tailscale cannot be reached here" in line
            for line in agent.lines()
        )

    with running_agent(sandbox, topology, node=None) as agent:  # no display, no session bus
        agent.wait(notified, "no notification line")
    text = agent.said()
    assert text.count("notifications go to the log only") == 1, text
    assert "notification shown" not in text, text
    assert "Cannot autolaunch D-Bus" not in text, text  # notify-send was not even tried
