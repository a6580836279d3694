"""A loopback tailnet for the benchmarks: a topology file and the status JSON that goes with it.

`write_network(folder, nodes, ...)` writes `topology.toml` (this machine a node of its own on
127.0.0.1 unless said, without services; each peer a node on its own 127.0.0.x, with its
services) and `status.json` in the recorded format of `tailscale status --json` (Running,
every peer online with a direct path), for tests/helpers/fake_tailscale (`FAKE_TAILSCALE_JSON`)
or a stand-in of the bench's own. Only loopback addresses are ever written.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchNode", "BenchService", "Network", "write_network"]

SELF_HOST = "127.0.0.1"


@dataclass(frozen=True)
class BenchService:
    name: str
    port: int
    check: str = "http"  # http | tcp
    path: str = "/health"


@dataclass(frozen=True)
class BenchNode:
    node_id: str
    host: str  # a loopback address of its own
    services: Sequence[BenchService]


@dataclass(frozen=True)
class Network:
    topology: Path
    status: Path


def _loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing a non-loopback address: {host}")
    return host


def _service_toml(service: BenchService, impact: str) -> str:
    lines = [
        "  [[nodes.services]]",
        f'  name = "{service.name}"',
        f"  port = {service.port}",
        f'  check = "{service.check}"',
        f'  impact = "{impact}"',
    ]
    if service.check == "http":
        lines.append(f'  path = "{service.path}"')
    return "\n".join(lines)


def _peer_json(node: BenchNode, index: int) -> dict[str, object]:
    return {
        "ID": f"bench{index}",
        "PublicKey": f"nodekey:{index:064x}",
        "HostName": node.node_id,
        "DNSName": f"{node.node_id}.bench.ts.net.",
        "OS": "linux",
        "TailscaleIPs": [node.host],
        "CurAddr": f"{node.host}:41641",
        "Relay": "fra",
        "PeerRelay": "",
        "Online": True,
        "Active": True,
    }


def write_network(
    folder: Path,
    nodes: Sequence[BenchNode],
    *,
    interval: str = "10s",
    timeout: str = "2s",
    impact: str = "critical",
    self_host: str = SELF_HOST,
) -> Network:
    """Write the topology and the status JSON of `nodes` (peers of this machine) into
    `folder`; `impact` is every service's."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [
        'version = 1\nname = "bench"\n',
        f'[defaults]\ninterval = "{interval}"\ntimeout = "{timeout}"\nlatency_warn_ms = 1000\n',
        f'[[nodes]]\nid = "here"\nname = "This machine"\nhostname = "here"\n'
        f'ip = "{_loopback(self_host)}"\nos = "linux"\nalways_on = true\n',
    ]
    for node in nodes:
        parts.append(
            f'[[nodes]]\nid = "{node.node_id}"\nname = "Node {node.node_id}"\n'
            f'hostname = "{node.node_id}"\nip = "{_loopback(node.host)}"\nos = "linux"\n'
            "always_on = true\n" + "\n".join(_service_toml(s, impact) for s in node.services) + "\n"
        )
    topology = folder / "topology.toml"
    topology.write_text("\n".join(parts), encoding="utf-8")
    status = {
        "Version": "1.102.3",
        "BackendState": "Running",
        "TailscaleIPs": [self_host],
        "Self": {
            "ID": "bench-self",
            "HostName": "here",
            "DNSName": "here.bench.ts.net.",
            "OS": "linux",
            "TailscaleIPs": [self_host],
            "Online": True,
        },
        "Health": [],
        "MagicDNSSuffix": "bench.ts.net",
        "Peer": {f"nodekey:{i:064x}": _peer_json(node, i) for i, node in enumerate(nodes, start=1)},
    }
    status_path = folder / "status.json"
    status_path.write_text(json.dumps(status, indent=1), encoding="utf-8")
    return Network(topology, status_path)
