"""The agent's two listening endpoints over its lifetime: the Prometheus endpoint waits for
Tailscale when its Tailscale IP cannot be checked at start, and both endpoints end cleanly
(socket closed, thread joined) when the agent stops.

In process: the Exporter driven by scripted sweeps (Tailscale stopped, then running) on a
real socket. End to end: the installed agent with the stand-in `tailscale`, whose status
file the test switches from Stopped to Running while the agent runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from agent.core.menu import MonitorStatus
from agent.core.metrics import MetricsAddress
from agent.core.model import Snapshot, Topology
from agent.exporter import Exporter
from tests.conftest import TAILSCALE_FIXTURES, AgentSandbox, installed_agent
from tests.core.snapshots import sweep
from tests.helpers.desktop import wait_for
from tests.helpers.servers import free_port

THIS_NODE = "100.120.180.42"  # the stand-in's Self (not on this machine: never bindable)
OTHER_NODE = "100.123.51.5"  # the Mac mini's


def metrics_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "metrics"]


def listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def running_here(*self_ips: str) -> Snapshot:
    snapshot = sweep()
    return replace(snapshot, tailnet=replace(snapshot.tailnet, self_ips=self_ips))


class Scripted:
    """A sweep_once that returns the snapshot set last, and the statuses passed on."""

    def __init__(self) -> None:
        self.snapshot = sweep(running=False)
        self.shown: list[MonitorStatus] = []

    async def sweep_once(self, _: Topology) -> Snapshot:
        return self.snapshot


def test_the_exporter_waits_for_tailscale_then_binds_then_stops_cleanly() -> None:
    port = free_port()
    exporter = Exporter(MetricsAddress("127.0.0.1", port), waiting="waiting for Tailscale")
    script = Scripted()
    timed, publish = exporter.observe(script.sweep_once, script.shown.append)

    def one_pass() -> MonitorStatus:
        snapshot = asyncio.run(timed(script.snapshot.topology))
        publish(MonitorStatus(snapshot=snapshot, now=snapshot.at))
        return script.shown[-1]

    exporter.start()  # waiting: nothing bound
    assert not listening("127.0.0.1", port) and not metrics_threads()
    status = one_pass()  # Tailscale still stopped
    assert not listening("127.0.0.1", port)
    assert status.notes == (
        f"Metrics: waiting for Tailscale to serve on 127.0.0.1:{port} (Tailscale is stopped on "
        "this machine (run `tailscale up`))",
    )
    script.snapshot = running_here("127.0.0.1")  # Tailscale running, with this IP
    status = one_pass()
    assert status.notes == () and exporter.waiting == ""
    assert httpx.get(exporter.address.url, timeout=5).status_code == 200
    assert len(metrics_threads()) == 1

    exporter.stop()
    assert not metrics_threads()
    assert not listening("127.0.0.1", port)
    socket.create_server(("127.0.0.1", port)).close()  # the port is free again


def test_an_address_tailscale_then_says_is_another_nodes_is_an_error_not_a_bind() -> None:
    exporter = Exporter(MetricsAddress(OTHER_NODE, 9233), waiting="waiting for Tailscale")
    script = Scripted()
    script.snapshot = running_here(THIS_NODE)  # running; this machine is not the Mac mini
    timed, publish = exporter.observe(script.sweep_once, script.shown.append)
    snapshot = asyncio.run(timed(script.snapshot.topology))
    publish(MonitorStatus(snapshot=snapshot, now=snapshot.at))
    (note,) = script.shown[-1].notes
    assert note.startswith(f"Metrics: not served: {OTHER_NODE} is neither loopback nor one of")
    assert not metrics_threads()
    exporter.stop()


# ==== end to end ================================================================

TOPOLOGY = """
version = 1
name = "endpoints (loopback)"

[defaults]
interval = "1s"
timeout = "1s"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"

  [[nodes.services]]
  name = "Ollama"
  port = {port}
  check = "tcp"
"""


def running_status(self_ips: list[str]) -> str:
    """loopback_all_direct.json (this machine "sweetlife", peers on 127.0.0.x) with Self's
    Tailscale IPs as given."""
    status = json.loads((TAILSCALE_FIXTURES / "loopback_all_direct.json").read_text())
    status["TailscaleIPs"] = self_ips
    status["Self"]["TailscaleIPs"] = self_ips
    return json.dumps(status)


@contextlib.contextmanager
def agent(sandbox: AgentSandbox, tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    with socket.create_server(("127.0.0.1", 0)) as ollama:
        topology = tmp_path / "topology.toml"
        topology.write_text(TOPOLOGY.replace("{port}", str(ollama.getsockname()[1])), "utf-8")
        with (tmp_path / "agent.log").open("wb") as err:
            proc = subprocess.Popen(
                [installed_agent(), "run", "--headless", "--topology", str(topology), *args],
                env=sandbox.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(20)


@pytest.mark.parametrize(
    ("host", "then"),
    [
        (THIS_NODE, f"waiting to listen on {THIS_NODE}:{{port}} ("),  # not up here: retried
        (OTHER_NODE, f"not served: {OTHER_NODE} is neither loopback nor one of this node's"),
    ],
)
def test_a_tailscale_ip_while_tailscale_is_stopped_starts_and_waits(
    sandbox: AgentSandbox, tmp_path: Path, host: str, then: str
) -> None:
    status = tmp_path / "status.json"
    status.write_text((TAILSCALE_FIXTURES / "stopped.json").read_text())
    sandbox.use_fake_tailscale(status)
    port = free_port()
    log = tmp_path / "agent.log"

    def said() -> str:
        return log.read_text(encoding="utf-8", errors="replace")

    waiting = f"--metrics {host}:{port}: waiting for Tailscale to serve on {host}:{port} ("
    with agent(sandbox, tmp_path, "--metrics", f"{host}:{port}") as proc:
        wait_for(lambda: "state red: " in said(), 30, message=said())  # started, swept: no exit 3
        assert waiting in said() and proc.poll() is None
        status.write_text(running_status([THIS_NODE]))  # tailscaled is up now
        wait_for(lambda: then.format(port=port) in said(), 30, message=said())
        assert said().count(waiting) == 1  # said once, not each sweep
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, said()
    assert sandbox.outside_connections() == []


def test_the_share_view_endpoint_is_closed_when_the_agent_stops(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    status = tmp_path / "status.json"
    status.write_text(running_status(["127.0.0.1"]))  # its view is served on 127.0.0.1
    sandbox.use_fake_tailscale(status)
    port = free_port()
    log = tmp_path / "agent.log"

    def said() -> str:
        return log.read_text(encoding="utf-8", errors="replace")

    with agent(sandbox, tmp_path, "--share-view", str(port)) as proc:
        url = f"http://127.0.0.1:{port}/v1/view"
        wait_for(lambda: f"sharing this node's view on {url}" in said(), 30, message=said())
        wait_for(lambda: httpx.get(url, timeout=5).status_code == 200, 30, message=said())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, said()
    assert f"share-view endpoint 127.0.0.1:{port} closed" in said()
    assert not listening("127.0.0.1", port)
    socket.create_server(("127.0.0.1", port)).close()
    assert sandbox.outside_connections() == []
