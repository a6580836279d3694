"""End to end: `run --headless --metrics` serves Prometheus metrics that follow the network.

The real agent runs over a loopback network (the stand-in tailscale says this machine is
"sweetlife" on 127.0.0.1, the Mac mini on 127.0.0.3, the laptop on 127.0.0.2, all direct);
the Mac mini's FastAPI is a real `python -m http.server` process that the test stops and
starts. Each scrape is a real HTTP GET of the endpoint, parsed with prometheus-client's own
parser (prometheus_client.parser), never with string matching.
"""

from __future__ import annotations

import contextlib
import datetime
import platform
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import __version__
from tests.conftest import AgentSandbox, installed_agent
from tests.helpers.desktop import wait_for
from tests.helpers.servers import free_port, http_server_process

DESKTOP, MACMINI = "127.0.0.1", "127.0.0.3"

EXPECTED_FAMILIES = {
    "tailnet_agent_build_info",
    "tailnet_sweeps",  # the parser names a counter's family without `_total`
    "tailnet_sweep_duration_seconds",
    "tailnet_health",
    "tailnet_topology_last_reload_successful",
    "tailnet_last_sweep_timestamp_seconds",
    "tailnet_tailscale_running",
    "tailnet_node_health",
    "tailnet_service_up",
    "tailnet_probe_duration_seconds",
    "tailnet_service_failure_reason",
    "tailnet_peer_online",
    "tailnet_peer_path",
    "tailnet_peer_latency_seconds",
    "tailnet_peer_always_on",
    "tailnet_node_key_expiry_timestamp_seconds",
    "process_resident_memory_bytes",
}

KEY_EXPIRY = {  # loopback_all_direct.json's KeyExpiry of each node
    "desktop": "2026-10-30T08:15:30+00:00",
    "macmini": "2026-11-03T12:02:47+00:00",
    "laptop": "2026-11-01T02:40:11+00:00",
}


def topology(web_port: int, fastapi_port: int) -> str:
    return f"""
version = 1
name = "metrics (loopback)"

[defaults]
interval = "1s"
timeout = "1s"
failure_threshold = 1

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "{DESKTOP}"

  [[nodes.services]]
  name = "Ollama"
  port = {web_port}
  check = "tcp"

[[nodes]]
id = "laptop"
name = "Laptop"
hostname = "desktop-ecmkau8"
ip = "127.0.0.2"
always_on = false

[[nodes]]
id = "macmini"
name = "Mac mini"
hostname = "woosuns-mac-mini"
ip = "{MACMINI}"

  [[nodes.services]]
  name = "FastAPI"
  port = {fastapi_port}
  check = "http"
  path = "/"
  impact = "critical"
"""


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[set[str], Samples]:
    """The families' names and every sample, keyed by (sample name, sorted labels)."""
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(response.text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    return {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@contextlib.contextmanager
def backend(port: int, root: Path) -> Iterator[None]:
    proc = http_server_process(MACMINI, port, root)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def agent(sandbox: AgentSandbox, *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [installed_agent(), "run", "--headless", *args],
            env=sandbox.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_a_scrape_shows_every_metric_and_follows_a_service_stopped_and_started(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    web = socket.create_server((DESKTOP, 0))  # "Ollama" here: a listening TCP port
    fastapi_port = free_port(MACMINI)
    path = tmp_path / "topology.toml"
    path.write_text(topology(web.getsockname()[1], fastapi_port), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    log = tmp_path / "agent.log"
    fastapi = {"node": "macmini", "service": "FastAPI", "port": str(fastapi_port), "check": "http"}

    def said() -> str:
        return log.read_text(encoding="utf-8", errors="replace")

    def scraped_when_fastapi_up(up: float, health: int) -> tuple[set[str], Samples]:
        """The first scrape with FastAPI's reading `up` and the confirmed colour `health`
        (a failure turns tailnet_health red only once re-checked, as the icon)."""

        def attempt() -> tuple[set[str], Samples] | None:
            try:
                names, samples = scrape(url)
            except httpx.TransportError:  # not listening yet
                return None
            seen = (
                value(samples, "tailnet_service_up", **fastapi),
                value(samples, "tailnet_health"),
            )
            return (names, samples) if seen == (up, health) else None

        message = f"FastAPI never {up} with health {health}:\n{said()}"
        return wait_for(attempt, 40, interval=0.2, message=message)

    with (
        web,
        agent(sandbox, "--topology", str(path), "--metrics", f"127.0.0.1:{port}", log=log) as proc,
    ):
        with backend(fastapi_port, tmp_path):
            names, up = scraped_when_fastapi_up(1, 0)
        assert names >= EXPECTED_FAMILIES, EXPECTED_FAMILIES - names
        assert value(up, "tailnet_service_up", **fastapi) == 1
        assert value(up, "tailnet_probe_duration_seconds", **fastapi) is not None
        assert value(up, "tailnet_service_failure_reason", **fastapi, reason="refused") is None
        assert value(up, "tailnet_peer_online", node="macmini") == 1
        assert value(up, "tailnet_peer_path", node="macmini", path="direct") == 1
        assert value(up, "tailnet_peer_path", node="macmini", path="relay") == 0
        assert (value(up, "tailnet_peer_latency_seconds", node="macmini") or 0) > 0
        assert value(up, "tailnet_tailscale_running") == 1
        assert value(up, "tailnet_health") == 0
        for node_id, expiry in KEY_EXPIRY.items():  # the fixture's KeyExpiry, Self's too
            assert value(up, "tailnet_node_key_expiry_timestamp_seconds", node=node_id) == (
                datetime.datetime.fromisoformat(expiry).timestamp()
            ), node_id
        assert value(up, "tailnet_agent_build_info", version=__version__,
                     python_version=platform.python_version())  # fmt: skip

        # the backend stopped: the next sweeps see it refused
        _, down = scraped_when_fastapi_up(0, 2)  # confirmed: red
        assert value(down, "tailnet_service_failure_reason", **fastapi, reason="refused") == 1
        assert value(down, "tailnet_health") == 2  # a critical service down: red
        assert value(down, "tailnet_node_health", node="macmini") == 2
        assert value(down, "tailnet_service_up", node="desktop", service="Ollama", check="tcp",
                     port=str(web.getsockname()[1])) == 1  # fmt: skip
        assert down[("tailnet_sweeps_total", ())] > up[("tailnet_sweeps_total", ())]
        assert (
            down[("tailnet_last_sweep_timestamp_seconds", ())]
            > up[("tailnet_last_sweep_timestamp_seconds", ())]
        )

        with backend(fastapi_port, tmp_path):
            _, again = scraped_when_fastapi_up(1, 0)
        assert value(again, "tailnet_service_failure_reason", **fastapi, reason="refused") is None
        assert value(again, "tailnet_health") == 0

        # read-only: GET only, /metrics and its index page, nothing else
        for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS"):
            answer = httpx.request(method, url, timeout=5)
            assert answer.status_code == 405, method
            assert answer.headers["allow"] == "GET"
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/probe", timeout=5).status_code == 404

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, said()
    with socket.socket() as sock:  # stopped cleanly: nothing listens there any more
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert sandbox.outside_connections() == []


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("0.0.0.0:{port}", "would listen on every network"),
        ("100.123.51.5:{port}", "neither loopback nor one of this node's Tailscale IPs"),
        ("example.com:{port}", "is not an IP address"),
        # This node's own Tailscale IP is accepted, and then cannot be bound here.
        ("100.120.180.42:{port}", "cannot listen there"),
    ],
)
def test_addresses_that_may_not_serve_are_refused_with_exit_3(
    sandbox: AgentSandbox, tmp_path: Path, address: str, words: str
) -> None:
    sandbox.use_fake_tailscale("running_all_direct.json")  # this node: 100.120.180.42
    path = tmp_path / "topology.toml"
    path.write_text(topology(closed := free_port(), closed), encoding="utf-8")
    given = address.format(port=free_port())
    done = sandbox.run("run", "--headless", "--topology", str(path), "--metrics", given)
    assert done.returncode == 3, done.stderr
    assert f"--metrics {given}: " in done.stderr and words in done.stderr, done.stderr
    assert sandbox.outside_connections() == []


def test_the_address_also_comes_from_the_variable_or_config_toml(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    path = tmp_path / "topology.toml"
    path.write_text(topology(free_port(), free_port(MACMINI)), encoding="utf-8")
    config = Path(sandbox.env["XDG_CONFIG_HOME"]) / "tailnet-agent" / "config.toml"
    config.parent.mkdir(parents=True)
    port = free_port()
    # Other keys of the file are someone else's: only `metrics` is read.
    config.write_text(f'source = "topology.toml"\nmetrics = "127.0.0.1:{port}"\n', "utf-8")
    for env_value in (None, f"127.0.0.1:{free_port()}"):
        served = port if env_value is None else int(env_value.rsplit(":", 1)[1])
        if env_value is not None:
            sandbox.env["TAILNET_AGENT_METRICS"] = env_value  # the variable wins over the file
        log = tmp_path / f"agent-{served}.log"
        with agent(sandbox, "--topology", str(path), log=log):

            def answered(served: int = served) -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{served}/metrics", timeout=5).is_success
                except httpx.TransportError:
                    return False

            wait_for(answered, 30, interval=0.2, message=log.read_text())

    config.write_text("metrics = 9233\n", "utf-8")
    sandbox.env.pop("TAILNET_AGENT_METRICS")
    done = sandbox.run("run", "--headless", "--topology", str(path))
    assert done.returncode == 3
    assert "config.toml: metrics: give a string" in done.stderr, done.stderr
    assert sandbox.outside_connections() == []


def test_metrics_goes_with_run_and_tray_only(sandbox: AgentSandbox) -> None:
    done = sandbox.run("--metrics", "127.0.0.1:9233", "check")
    assert done.returncode == 3
    assert "--metrics does not go with `check`" in done.stderr
