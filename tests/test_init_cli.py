"""`tailnet-agent init`: the installed command over the stand-in `tailscale`, with real
loopback servers for `--discover`. The stand-in status lists machines on 127.61.0.x only,
so discovery probes nothing but loopback; every test checks that with the network guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.core.model import CheckKind
from agent.core.topology import parse_topology
from tests.conftest import TAILSCALE_FIXTURES, AgentSandbox
from tests.helpers.servers import http_server, postgres_server, redis_server

SELF, PEER, ASLEEP = "127.61.0.1", "127.61.0.2", "127.61.0.3"
REAL = TAILSCALE_FIXTURES / "real"


def _peer(host: str, dns: str, ip: str, *, online: bool, os: str = "linux") -> dict[str, Any]:
    return {"HostName": host, "DNSName": f"{dns}.tail0loop.ts.net.", "OS": os,
            "TailscaleIPs": [ip], "Online": online, "Active": False}  # fmt: skip


def loopback_status(tmp: Path) -> Path:
    status = {
        "Version": "1.98.9-tloopback",
        "BackendState": "Running",
        "TailscaleIPs": [SELF],
        "Self": _peer("workstation", "workstation", SELF, online=True),
        "Peer": {
            "nodekey:a": _peer("backend", "backend", PEER, online=True, os="macOS"),
            "nodekey:b": _peer("Pat’s MacBook Air", "pats-macbook-air", ASLEEP, online=False),
        },
    }
    path = tmp / "status.json"
    path.write_text(json.dumps(status, ensure_ascii=False), encoding="utf-8")
    return path


def user_topology(sandbox: AgentSandbox) -> Path:
    return Path(sandbox.env["XDG_CONFIG_HOME"]) / "tailnet-agent" / "topology.toml"


def test_init_writes_a_valid_starter_where_the_agent_looks(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale(REAL / "v1_98_9_five_peers.json")
    done = sandbox.run("init")
    assert done.returncode == 0, done.stderr
    path = user_topology(sandbox)
    topology = parse_topology(path.read_text(encoding="utf-8"), str(path))
    assert len(topology.nodes) == 6
    assert f"Wrote {path}: 6 nodes (this machine: pi5)" in done.stdout
    assert "same file on every machine" in done.stdout
    assert "# [[nodes.services]]" in path.read_text(encoding="utf-8")  # commented examples
    shown = sandbox.run("topology", "validate")  # the agent finds it by itself
    assert shown.returncode == 0 and str(path) in shown.stdout
    assert sandbox.outside_connections() == []


def test_init_never_overwrites_without_force(sandbox: AgentSandbox, tmp_path: Path) -> None:
    sandbox.use_fake_tailscale(REAL / "v1_94_2_macos_apostrophe_three_ios_localhost.json")
    target = tmp_path / "mine.toml"
    target.write_text("# hand-written\n", encoding="utf-8")
    refused = sandbox.run("init", str(target))
    assert refused.returncode == 3
    assert f"{target} already exists; not overwritten (use --force" in refused.stderr
    assert target.read_text(encoding="utf-8") == "# hand-written\n"
    forced = sandbox.run("init", "--force", str(target))
    assert forced.returncode == 0, forced.stderr
    parse_topology(target.read_text(encoding="utf-8"), str(target))


def test_init_without_tailscale_or_with_a_signed_out_one_exits_3(sandbox: AgentSandbox) -> None:
    missing = sandbox.run("init")
    assert missing.returncode == 3
    assert "cannot read this machine's tailnet" in missing.stderr
    sandbox.use_fake_tailscale(REAL / "v1_94_2_needs_login_signed_out.json")
    signed_out = sandbox.run("init")
    assert signed_out.returncode == 3
    assert "nothing to write" in signed_out.stderr and "log in" in signed_out.stderr
    assert not user_topology(sandbox).exists()


def test_port_without_discover_is_a_usage_error(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale(REAL / "v1_94_2_macos_apostrophe_three_ios_localhost.json")
    done = sandbox.run("init", "--port", "8080")
    assert done.returncode == 3 and "--port goes with --discover" in done.stderr
    bad = sandbox.run("init", "--discover", "--port", "70000")
    assert bad.returncode == 3 and "out of range" in bad.stderr


def test_help_says_discover_connects_to_the_peers(sandbox: AgentSandbox) -> None:
    done = sandbox.run("init", "--help")
    assert done.returncode == 0
    assert "CONNECTS TO EVERY ONLINE PEER" in " ".join(done.stdout.split())


def test_discover_names_what_answers_with_the_right_check(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    sandbox.use_fake_tailscale(loopback_status(tmp_path))
    routes = {"/": "<html>app</html>"}
    with (
        http_server(routes, host=PEER) as (_, web),
        http_server({"/health": 200}, host=PEER) as (_, api_404_at_root),
        redis_server(host=PEER) as (_, cache),
        postgres_server(host=PEER) as (_, db),
    ):
        ports = [str(p) for p in (web, api_404_at_root, cache, db)]
        args = ["init", "--discover", *(a for p in ports for a in ("--port", p))]
        done = sandbox.run(*args, timeout=120)
    assert done.returncode == 0, done.stderr
    path = user_topology(sandbox)
    text = path.read_text(encoding="utf-8")
    topology = parse_topology(text, str(path))
    backend = topology.node("backend")
    assert backend is not None
    kinds = {s.port: (s.check, s.path) for s in backend.services}
    assert kinds[web] == (CheckKind.HTTP, "/")
    assert kinds[cache][0] is CheckKind.REDIS
    assert kinds[db][0] is CheckKind.POSTGRES
    # HTTP, but nothing answers 2xx at "/": a tcp check that says so
    assert kinds[api_404_at_root][0] is CheckKind.TCP
    assert "HTTP, but HTTP 404" in text
    sleeping = topology.node("pats-macbook-air")
    assert sleeping is not None and not sleeping.always_on and sleeping.services == ()
    assert "Not probed: pats-macbook-air (offline in Tailscale)" in done.stdout
    assert "4 services found by --discover" in done.stdout
    assert sandbox.outside_connections() == []
