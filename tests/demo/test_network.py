"""The demo's simulated network, in-process: its addresses, its stand-ins met by the agent's
real probes and by the real clients (redis-cli, pg_isready, a WebSocket client), and its
`tailscale status --json` read by the agent's parser and compared with a recorded document.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.core.model import CheckKind, Health, Link, ProbeState, ProbeTarget, Service
from agent.core.tailnet import link_of, parse_status_json
from agent.core.topology import parse_topology
from agent.demo.network import SELF_NODE, DemoError, DemoNetwork, choose_addresses
from agent.edges import paths
from agent.edges.probes import run_probes
from agent.edges.topology_source import load_topology
from tests.conftest import TAILSCALE_FIXTURES

BUNDLED = load_topology(str(paths.bundled_topology_path()), {})


@pytest.fixture(scope="module")
def network() -> Iterator[DemoNetwork]:
    running = DemoNetwork.start(BUNDLED)
    try:
        yield running
    finally:
        running.close()


def _address(network: DemoNetwork, node: str, service: str) -> tuple[str, int]:
    host, _, port = network.addresses()[(node, service)].rpartition(":")
    return host.strip("[]"), int(port)


def test_every_machine_gets_its_own_loopback_address_where_127_8_answers() -> None:
    bindable = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "::1"]
    assert choose_addresses(BUNDLED, SELF_NODE, bindable) == {
        "laptop": "127.0.0.1",
        "desktop": "127.0.0.2",
        "macmini": "127.0.0.3",
    }


def test_on_macos_the_peers_take_the_two_addresses_and_this_machine_one_never_dialled() -> None:
    # The laptop's only service listens on localhost too: probed on 127.0.0.1 whatever its IP.
    addresses = choose_addresses(BUNDLED, SELF_NODE, ["127.0.0.1", "::1"])
    assert addresses == {"laptop": "127.0.0.2", "desktop": "127.0.0.1", "macmini": "::1"}


def test_too_few_loopback_addresses_is_said_with_the_fix() -> None:
    with pytest.raises(DemoError, match="ifconfig lo0 alias"):
        choose_addresses(BUNDLED, SELF_NODE, ["127.0.0.1"])


def _endpoints(network: DemoNetwork) -> dict[tuple[str, str], str]:
    """Where each stand-in listens, this machine's own on the shared 127.0.0.1 left out."""
    return {k: a for k, a in network.addresses().items() if not a.startswith("127.0.0.1:")}


def test_two_demos_take_blocks_of_their_own_and_a_stopped_port_stays_theirs() -> None:
    """The first demo stops FastAPI; a second one starting meanwhile from the same block
    finds the block's other real ports taken and moves on to the next, so nothing takes
    the stopped port and FastAPI comes back on it."""
    first = DemoNetwork.start(BUNDLED, first_block=200)
    try:
        mine = _endpoints(first)
        assert mine[("macmini", "FastAPI")] == "127.84.200.3:8000"  # the block, real ports
        assert {(k, a.rsplit(":", 1)[1]) for k, a in mine.items()} == {
            ((n.id, s.name), str(s.port)) for n in BUNDLED.nodes for s in n.services
            if n.id != SELF_NODE
        }  # fmt: skip
        first.stop_service("macmini", "FastAPI")
        second = DemoNetwork.start(BUNDLED, first_block=200)
        try:
            theirs = _endpoints(second)
            assert {a.rsplit(".", 1)[0] for a in theirs.values()} == {"127.84.201"}
            assert not set(theirs.values()) & set(mine.values())
            first.start_service("macmini", "FastAPI")
            assert _endpoints(first) == mine
        finally:
            second.close()
    finally:
        first.close()


def test_where_127_8_does_not_answer_it_shares_the_usual_addresses() -> None:
    """macOS: only 127.0.0.1 and ::1 bind, so no block; the usual choice, on any free port."""
    network = DemoNetwork.start(BUNDLED, bindable=lambda a: a in ("127.0.0.1", "::1"))
    try:
        hosts = {a.rpartition(":")[0] for a in network.addresses().values()}
        assert hosts == {"127.0.0.1", "[::1]"}  # desktop and this machine's own; the Mac mini
    finally:
        network.close()


def test_the_topology_names_only_loopback_addresses_and_validates(
    network: DemoNetwork, tmp_path: Path
) -> None:
    path = tmp_path / "topology.toml"
    network.write_topology(path, "Sparklio demo 1/7: all green", 2.0)
    topology = parse_topology(path.read_text(encoding="utf-8"), str(path))
    assert topology.name == "Sparklio demo 1/7: all green"
    assert [n.id for n in topology.nodes] == [n.id for n in BUNDLED.nodes]
    assert all(ipaddress.ip_address(n.ip).is_loopback for n in topology.nodes)
    names = {(n.id, s.name) for n in topology.nodes for s in n.services}
    assert names == {(n.id, s.name) for n in BUNDLED.nodes for s in n.services}
    document = network.status_json()
    for node in BUNDLED.nodes:
        assert node.ip not in document and node.ip not in path.read_text(encoding="utf-8")


def test_every_stand_in_answers_the_agents_probes(network: DemoNetwork) -> None:
    topology = network.topology("demo", 2.0)
    targets = []
    for node in topology.nodes:
        for service in node.services:
            host, _ = _address(network, node.id, service.name)
            targets.append(ProbeTarget(node.id, service, host, 2.0))
    # ComfyUI's WebSocket shares its port: probed as the websocket check would.
    comfy = next(t for t in targets if t.service.name == "ComfyUI")
    ws = Service("ComfyUI", comfy.service.port, CheckKind.WEBSOCKET, path="/ws")
    targets.append(ProbeTarget("desktop", ws, comfy.host, 2.0))
    results = asyncio.run(run_probes(targets))
    found = {
        (t.service.name, t.service.check.value): (r.state, r.detail)
        for t, r in zip(targets, results, strict=True)
    }
    assert {state for state, _ in found.values()} == {ProbeState.UP}, found
    assert len(found) == 9
    # The desktop node's details, read from /api/tags, /api/ps, /queue and /system_stats.
    details = {
        t.service.name: dict(r.details)
        for t, r in zip(targets, results, strict=True)
        if t.service.check is CheckKind.HTTP
    }
    assert details["Ollama"] == {
        "models": ("llama3.1:8b", "qwen2.5:14b"),
        "models_loaded": ("llama3.1:8b",),
    }
    comfy_details = {k: details["ComfyUI"][k] for k in ("queue_running", "queue_pending")}
    assert comfy_details == {"queue_running": 1, "queue_pending": 2}
    assert details["ComfyUI"]["vram_total_bytes"] == 25756696576


def test_the_http_stand_ins_answer_in_the_real_programs_shapes(network: DemoNetwork) -> None:
    def get(node: str, service: str, path: str) -> httpx.Response:
        host, port = _address(network, node, service)
        return httpx.get(f"http://{host}:{port}{path}", timeout=5)

    tags = get("desktop", "Ollama", "/api/tags").json()
    assert {m["name"] for m in tags["models"]} >= {"llama3.1:8b"}
    assert all({"model", "size", "digest", "details"} <= set(m) for m in tags["models"])
    loaded = get("desktop", "Ollama", "/api/ps").json()["models"]
    assert [m["name"] for m in loaded] == ["llama3.1:8b"]
    assert all({"model", "size", "digest", "details", "expires_at", "size_vram"} <= set(m)
               for m in loaded)  # fmt: skip
    queue = get("desktop", "ComfyUI", "/queue").json()
    assert (len(queue["queue_running"]), len(queue["queue_pending"])) == (1, 2)
    for number, prompt_id, prompt, extra_data, outputs in queue["queue_running"]:
        assert isinstance(number, int) and isinstance(prompt_id, str)
        assert isinstance(prompt, dict) and isinstance(extra_data, dict) and outputs
    stats = get("desktop", "ComfyUI", "/system_stats").json()
    assert stats["devices"][0]["type"] == "cuda" and "comfyui_version" in stats["system"]
    assert get("macmini", "FastAPI", "/health").json() == {"status": "ok"}
    assert get("macmini", "FastAPI", "/nope").json() == {"detail": "Not Found"}
    live = get("macmini", "MinIO API", "/minio/health/live")
    assert (live.status_code, live.headers["server"]) == (200, "MinIO")
    assert b"<Code>AccessDenied</Code>" in get("macmini", "MinIO API", "/bucket").content
    assert get("laptop", "Next.js", "/").headers["x-powered-by"] == "Next.js"


def test_comfyuis_websocket_sends_its_status_message(network: DemoNetwork) -> None:
    from websockets.sync.client import connect

    host, port = _address(network, "desktop", "ComfyUI")
    with connect(f"ws://{host}:{port}/ws", open_timeout=5, compression=None) as socket:
        first = json.loads(socket.recv(timeout=5))
    assert first["type"] == "status"
    # as ComfyUI counts it: the running prompt and the two pending
    assert first["data"]["status"]["exec_info"] == {"queue_remaining": 3}


def test_redis_cli_and_pg_isready_take_the_stand_ins_for_the_real_servers(
    network: DemoNetwork,
) -> None:
    for tool, package in (("redis-cli", "redis-tools"), ("pg_isready", "postgresql-client")):
        assert shutil.which(tool), f"apt-get install {package}"
    host, port = _address(network, "macmini", "Redis")
    ping = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port), "PING"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert ping.stdout.strip() == "PONG", ping
    host, port = _address(network, "macmini", "PostgreSQL")
    ready = subprocess.run(
        ["pg_isready", "-h", host, "-p", str(port), "-t", "5"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert ready.returncode == 0, ready  # the server answered (it refuses the login itself)


def test_the_status_json_has_the_recorded_documents_keys() -> None:
    recorded = json.loads((TAILSCALE_FIXTURES / "loopback_all_direct.json").read_text())
    network = DemoNetwork.start(BUNDLED)
    try:
        document = json.loads(network.status_json())
    finally:
        network.close()
    assert set(document) == set(recorded)
    assert set(document["Self"]) == set(recorded["Self"])
    for peer in document["Peer"].values():
        assert set(peer) == set(next(iter(recorded["Peer"].values())))
    assert all(key.startswith("nodekey:") and len(key) == 72 for key in document["Peer"])


def test_the_walks_changes_read_as_tailscale_would_say_them(network: DemoNetwork) -> None:
    def links() -> dict[str, tuple[Link, str]]:
        view = parse_status_json(network.status_json())
        assert view.running and view.problem is None
        by_ip = {n.ip: n.id for n in network.topology("demo", 2.0).nodes}
        return {by_ip[p.ips[0]]: link_of(p) for p in view.peers}

    assert links() == {"desktop": (Link.DIRECT, ""), "macmini": (Link.DIRECT, "")}
    network.relay("desktop")
    network.go_offline("macmini")
    try:
        assert links() == {"desktop": (Link.RELAY, "tok"), "macmini": (Link.OFFLINE, "")}
        host, port = _address(network, "macmini", "FastAPI")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{host}:{port}/health", timeout=5)
    finally:
        network.direct("desktop")
        network.come_online("macmini")
    assert links() == {"desktop": (Link.DIRECT, ""), "macmini": (Link.DIRECT, "")}
    assert httpx.get(f"http://{host}:{port}/health", timeout=5).status_code == 200


def test_the_tray_names_the_step_running_in_its_tooltip_and_menu_title(
    network: DemoNetwork,
) -> None:
    """The walk names each step in the topology; the tray shows the topology's name."""
    from agent.app import tray_view
    from agent.core.menu import MonitorStatus, build_menu, tooltip
    from agent.sweep import sweep

    network.stop_service("macmini", "FastAPI")
    try:
        topology = network.topology("Sparklio demo 4/7: FastAPI stops", 2.0)
        snapshot = asyncio.run(
            sweep(topology, tailscale_cli=None, read_tailnet=network.read_tailnet)
        )
    finally:
        network.start_service("macmini", "FastAPI")
    view = tray_view(MonitorStatus(snapshot, snapshot.at), autostart=None)
    assert snapshot.overall is Health.RED
    assert tooltip(view).startswith("tailnet-agent (Sparklio demo 4/7: FastAPI stops): ")
    title = build_menu(view, local_time=lambda _: "12:00")[0].text
    assert "Sparklio demo 4/7: FastAPI stops: " in title and "FastAPI" in title
