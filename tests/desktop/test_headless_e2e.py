"""End to end: `tailnet-agent run --headless` over a loopback network, notifications on a real bus.

The backend ("FastAPI") is a real separate process (python -m http.server on
127.0.0.3) that the test kills and restarts; "Ollama" on this machine is an
in-process server that can be told to fail exactly one request (a blip). The
agent's notifications go over a private D-Bus session to a capture server.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES, installed_agent
from tests.helpers.desktop import DesktopEnv, NotificationLog, wait_for
from tests.helpers.servers import free_port, http_server_process

pytestmark = pytest.mark.linux_desktop

INTERVAL_S, TIMEOUT_S = 2.0, 1.0
DESKTOP, LAPTOP, MACMINI = "127.0.0.1", "127.0.0.2", "127.0.0.3"
APP_ICON = (Path(__file__).resolve().parents[2] / "icons" / "tailnet-agent.png").resolve()


class FlakyHealth(http.server.ThreadingHTTPServer):
    """Answers 200 on every path, except `fail_next` requests that get a 503."""

    daemon_threads = True

    def __init__(self, host: str) -> None:
        self.fail_next = 0
        self.served = 0
        self.lock = threading.Lock()
        super().__init__((host, 0), _FlakyHandler)


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    server: FlakyHealth

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.served += 1
            failing = self.server.fail_next > 0
            if failing:
                self.server.fail_next -= 1
        body = b"busy" if failing else b'{"models":[]}'
        self.send_response(503 if failing else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def flaky_server(host: str) -> Iterator[FlakyHealth]:
    server = FlakyHealth(host)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def start_backend(port: int, root: Path) -> subprocess.Popen[bytes]:
    """The Mac mini's FastAPI stand-in, a process the test kills and restarts."""
    return http_server_process(MACMINI, port, root)


def topology(ollama_port: int, fastapi_port: int) -> str:
    return f"""
version = 1
name = "Sparklio (loopback)"

[defaults]
interval = "{INTERVAL_S}s"
timeout = "{TIMEOUT_S}s"

[[nodes]]
id = "desktop"
name = "Desktop — GPU Worker"
hostname = "sweetlife"
ip = "{DESKTOP}"

  [[nodes.services]]
  name = "Ollama"
  port = {ollama_port}
  check = "http"
  path = "/api/tags"

[[nodes]]
id = "laptop"
name = "Laptop — Frontend Dev"
hostname = "desktop-ecmkau8"
ip = "{LAPTOP}"
always_on = false

[[nodes]]
id = "macmini"
name = "Mac mini — Backend Server"
hostname = "woosuns-mac-mini"
ip = "{MACMINI}"

  [[nodes.services]]
  name = "FastAPI"
  port = {fastapi_port}
  check = "http"
  impact = "critical"
"""


def test_outage_is_announced_blip_is_not_recovery_is(
    desktop_env: DesktopEnv, notification_log: NotificationLog, tmp_path: Path
) -> None:
    fastapi_port = free_port(MACMINI)
    backend = start_backend(fastapi_port, tmp_path)
    with flaky_server(DESKTOP) as ollama:
        topo = tmp_path / "topology.toml"
        topo.write_text(topology(ollama.server_address[1], fastapi_port), encoding="utf-8")
        env = {
            "PATH": f"{FAKE_TAILSCALE_DIR}:{desktop_env.env['PATH']}",
            "FAKE_TAILSCALE_JSON": str(TAILSCALE_FIXTURES / "loopback_all_direct.json"),
            # its own history: a problem another test left open would be carried forward
            "XDG_STATE_HOME": str(tmp_path / "state"),
        }
        agent = desktop_env.spawn(
            [installed_agent(), "run", "--headless", "--topology", str(topo)],
            name="agent",
            extra_env=env,
        )
        try:
            wait_for(
                lambda: "state green" in desktop_env.log_tail("agent", 20000),
                20,
                message="the agent never reported green",
            )
            assert notification_log.records() == []  # a healthy start is silent

            # A blip: one failed request, then the re-check a second later succeeds.
            served = ollama.served
            ollama.fail_next = 1
            wait_for(lambda: ollama.served >= served + 3, 15, message="no re-check after the blip")
            assert notification_log.records() == [], "a one-sweep blip must not notify"

            # A real outage: the backend process dies.
            backend.send_signal(signal.SIGKILL)
            backend.wait(5)
            killed_at = time.monotonic()
            down = notification_log.wait_for(
                lambda r: "FastAPI down" in r["summary"], timeout=INTERVAL_S + 2 * TIMEOUT_S + 8
            )
            detected_s = time.monotonic() - killed_at
            assert down["summary"] == "Mac mini — Backend Server: FastAPI down"
            assert "refused" in down["body"] and "service not running?" in down["body"]
            assert down["hints"].get("urgency") == 2  # critical
            assert down["app_icon"] == APP_ICON.as_uri()  # app.run_headless passes the icon
            print(f"outage notified {detected_s:.2f} s after the kill")

            notification_log.mark()
            backend = start_backend(fastapi_port, tmp_path)
            up = notification_log.wait_for(
                lambda r: "FastAPI up" in r["summary"], timeout=INTERVAL_S + 2 * TIMEOUT_S + 8
            )
            assert "is back" in up["body"]
            assert up["replaces_id"] == down["id"]  # the critical alarm does not stay on screen
        finally:
            code = desktop_env.stop(agent, timeout=10)
            backend.kill()
            backend.wait(5)
    assert code == 0, desktop_env.log_tail("agent")
    assert desktop_env.outside_connections() == []

    history = subprocess.run(
        [installed_agent(), "history", "--json", "--since", "1h"],
        env={**desktop_env.env, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    kinds = [(e["kind"], e["service"]) for e in json.loads(history.stdout)]
    assert ("service_down", "FastAPI") in kinds and ("service_up", "FastAPI") in kinds
    assert ("service_down", "Ollama") not in kinds


def test_a_restart_carries_known_problems_forward_and_history_shows_it(
    desktop_env: DesktopEnv, notification_log: NotificationLog, tmp_path: Path
) -> None:
    """Two runs over one history: a problem recorded before the restart is not announced
    (nor recorded) again, one that began while the agent was stopped is, a service removed
    from the topology is retired, and both runs' start and stop are in the history."""
    state = tmp_path / "state"  # this test's own history, not the session's
    env = {
        "PATH": f"{FAKE_TAILSCALE_DIR}:{desktop_env.env['PATH']}",
        "FAKE_TAILSCALE_JSON": str(TAILSCALE_FIXTURES / "loopback_all_direct.json"),
        "XDG_STATE_HOME": str(state),
    }
    fastapi_port = free_port(MACMINI)  # nothing listens: the backend is down all along
    old_port = free_port(MACMINI)
    topo = tmp_path / "topology.toml"
    extra = f"""
  [[nodes.services]]
  name = "Old"
  port = {old_port}
  check = "tcp"
"""

    def run_until(summary: str, name: str) -> None:
        agent = desktop_env.spawn(
            [installed_agent(), "run", "--headless", "--topology", str(topo)],
            name=name,
            extra_env=env,
        )
        try:
            notification_log.wait_for(lambda r: summary in r["summary"], timeout=30)
        finally:
            code = desktop_env.stop(agent, timeout=10)
        assert code == 0, desktop_env.log_tail(name)

    with flaky_server(DESKTOP) as ollama:
        topo.write_text(topology(ollama.server_address[1], fastapi_port) + extra, "utf-8")
        run_until("Old down", "agent-run-1")
        first = [r["summary"] for r in notification_log.records()]
        assert "Mac mini — Backend Server: FastAPI down" in first
        ollama_port = ollama.server_address[1]
    # While the agent is stopped: Ollama goes away, and "Old" leaves the topology.
    topo.write_text(topology(ollama_port, fastapi_port), "utf-8")
    notification_log.mark()
    run_until("Ollama down", "agent-run-2")
    second = [r["summary"] for r in notification_log.records()]
    assert not any("FastAPI" in s or "Old" in s for s in second), second

    history = subprocess.run(
        [installed_agent(), "history", "--json"],
        env={**desktop_env.env, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    kinds = [(e["kind"], e["service"]) for e in json.loads(history.stdout)]
    assert kinds.count(("service_down", "FastAPI")) == 1, kinds
    assert kinds.count(("service_down", "Old")) == 1, kinds
    assert kinds.count(("service_down", "Ollama")) == 1, kinds
    assert ("service_retired", "Old") in kinds
    agent = [k for k, _ in kinds if k.startswith("agent_")]
    assert agent == ["agent_started", "agent_stopped", "agent_started", "agent_stopped"]
    text = subprocess.run(
        [installed_agent(), "history"],
        env={**desktop_env.env, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "tailnet-agent started" in text and "Old removed from the topology" in text
    assert desktop_env.outside_connections() == []
