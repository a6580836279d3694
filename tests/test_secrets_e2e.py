"""A credential a service entry carries never reaches a sink: log, notification, history,
metrics, share view, check's output, or any file the agent writes.

The real agent runs headless (no session bus: notifications go to the log) with --metrics
and --share-view over a service whose probe URL carries a token in its query string and
whose failing answer's body carries a password, an API key and a bearer token. Every
place the agent writes to or serves is then read back and searched.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import AgentSandbox, installed_agent
from tests.helpers.desktop import wait_for
from tests.helpers.servers import Route, free_port, http_server

TOKEN = "q-token-7f3a"
PASSWORD = "pw-hunter2-9c1"
API_KEY = "ak-51d0e2"
BEARER = "bearer-Zx81Qw77Lm"
SECRETS = (TOKEN, PASSWORD, API_KEY, BEARER)
BODY = json.dumps(
    {
        "error": "database down",
        "password": PASSWORD,
        "api_key": API_KEY,
        "hint": f"Authorization: Bearer {BEARER}",
    }
)


def _topology(port: int) -> str:
    return f"""
version = 1
name = "secrets"

[defaults]
interval = "1s"
timeout = "1s"
failure_threshold = 1

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"

  [[nodes.services]]
  name = "FastAPI"
  port = {port}
  check = "http"
  path = "/health?token={TOKEN}"
  impact = "critical"
  open = true
"""


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _files_with_secrets(root: Path, skip: Path) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and path != skip:
            leaked = _leaks(path.read_bytes().decode("utf-8", errors="replace"))
            if leaked:
                found[str(path.relative_to(root))] = leaked
    return found


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 — a loopback http URL
        return str(response.read().decode("utf-8"))


def test_a_services_credentials_reach_no_sink(sandbox: AgentSandbox, tmp_path: Path) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        sandbox.env.pop(name, None)
    metrics_port, view_port = free_port(), free_port()
    stderr = tmp_path / "stderr.log"
    with http_server({"/health": Route(500, BODY)}) as (_host, port):
        topology = sandbox.root / "topology.toml"
        topology.write_text(_topology(port), encoding="utf-8")
        argv = [installed_agent(), "run", "--headless", "-v", "--topology", str(topology)]
        argv += ["--metrics", f"127.0.0.1:{metrics_port}", "--share-view", str(view_port)]
        with stderr.open("wb") as err:
            agent = subprocess.Popen(
                argv, env=sandbox.env, stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        try:

            def said() -> str:
                return stderr.read_text(encoding="utf-8", errors="replace")

            wait_for(
                lambda: "FastAPI" in said() and "notification" in said() and "HTTP 500" in said(),
                40,
                message=f"no notification of the failure:\n{said()}",
            )

            def scraped() -> str | None:  # once a sweep's samples are in (not only build_info)
                text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
                return text if 'service="FastAPI"' in text else None

            metrics = wait_for(scraped, 20, interval=0.2)
            view = wait_for(lambda: _get(f"http://127.0.0.1:{view_port}/v1/view"), 20, interval=0.2)
            check = sandbox.run("check", "--json", "-v", "--topology", str(topology))
        finally:
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(20)
    history = sandbox.run("history", "--json")
    log = said()
    assert code == 0, log
    assert "fastapi" in metrics.lower() and "desktop" in view, (metrics, view)
    assert json.loads(check.stdout)["overall"] == "red", check.stderr
    assert "FastAPI" in history.stdout, history.stderr
    sinks = {
        "the log (and the notifications, which go to it here)": log,
        "metrics": metrics,
        "share view": view,
        "check --json": check.stdout + check.stderr,
        "history --json": history.stdout + history.stderr,
    }
    assert {name: _leaks(text) for name, text in sinks.items() if _leaks(text)} == {}
    assert _files_with_secrets(sandbox.root, skip=topology) == {}
    assert sandbox.outside_connections() == []
