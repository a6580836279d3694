"""End to end: `tailnet-agent audit`, `acl` and drift in `check`, the installed agent over
loopback (issue 10, items 1-3).

The audit meets real sockets that are bound and listening, never connected to: one on
0.0.0.0 (a PostgreSQL reachable from the LAN), one on the node's "Tailscale IP" — a
loopback address (127.0.0.5) that the stand-in `tailscale` reports as this machine's —
and one on 127.0.0.1. Drift comes from a recorded-format status whose Mac mini has moved
to another IP, whose laptop was renamed, and which holds a phone the topology lacks.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import TAILSCALE_FIXTURES, AgentSandbox

MACMINI_TS_IP = "127.0.0.5"


@contextlib.contextmanager
def listening(address: str) -> Iterator[int]:
    """A TCP socket bound to `address` and listening: nothing ever connects to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
        sock.listen()
        yield sock.getsockname()[1]
    finally:
        sock.close()


def macmini_status(tmp_path: Path) -> Path:
    """The recorded loopback status with this machine as the Mac mini at 127.0.0.5."""
    status = json.loads((TAILSCALE_FIXTURES / "loopback_all_direct.json").read_text())
    status["TailscaleIPs"] = [MACMINI_TS_IP]
    status["Self"].update(TailscaleIPs=[MACMINI_TS_IP], HostName="woosuns-mac-mini")
    path = tmp_path / "status.json"
    path.write_text(json.dumps(status))
    return path


def audit_topology(tmp_path: Path, ports: dict[str, int], defaults: str) -> Path:
    path = tmp_path / "topology.toml"
    path.write_text(
        f"""version = 1
name = "Sparklio (loopback)"
[defaults]
{defaults}
[[nodes]]
id = "macmini"
name = "Mac mini — Backend Server"
hostname = "woosuns-mac-mini"
ip = "{MACMINI_TS_IP}"
  [[nodes.services]]
  name = "PostgreSQL"
  port = {ports["postgres"]}
  check = "postgres"
  impact = "critical"
  [[nodes.services]]
  name = "FastAPI"
  port = {ports["fastapi"]}
  check = "http"
  [[nodes.services]]
  name = "Redis"
  port = {ports["redis"]}
  check = "redis"
[[nodes]]
id = "desktop"
hostname = "sweetlife"
ip = "127.0.0.1"
[[nodes]]
id = "laptop"
hostname = "desktop-ecmkau8"
ip = "127.0.0.2"
""",
        encoding="utf-8",
    )
    return path


def test_audit_flags_a_postgres_on_every_interface(sandbox: AgentSandbox, tmp_path: Path) -> None:
    sandbox.use_fake_tailscale(macmini_status(tmp_path))
    with (
        listening("0.0.0.0") as postgres,
        listening(MACMINI_TS_IP) as fastapi,
        listening("127.0.0.1") as redis,
    ):
        ports = {"postgres": postgres, "fastapi": fastapi, "redis": redis}
        topology = audit_topology(tmp_path, ports, 'access = "tailscale"')
        text = sandbox.run("audit", "--topology", str(topology))
        done = sandbox.run("audit", "--topology", str(topology), "--json")
    print(text.stdout)
    assert text.returncode == 1, text.stderr
    assert text.stdout.startswith(
        "Exposure audit of macmini (Tailscale IPs 127.0.0.5): 1 service exposed beyond Tailscale"
    )
    assert f"listens on 0.0.0.0:{postgres}: reachable beyond Tailscale" in text.stdout
    assert "fix: listen_addresses = '127.0.0.5' in postgresql.conf" in text.stdout
    assert done.returncode == 1
    report = json.loads(done.stdout)
    verdicts = {s["name"]: (s["verdict"], s["addresses"], s["colours"]) for s in report["services"]}
    assert verdicts == {
        "PostgreSQL": ("exposed", ["0.0.0.0"], True),
        "FastAPI": ("ok", [MACMINI_TS_IP], False),
        "Redis": ("loopback", ["127.0.0.1"], False),  # access = "tailscale": not even loopback
    }
    assert report["exposed"] == 1 and report["node"] == "macmini"
    assert sandbox.outside_connections() == []


def test_audit_is_clean_when_every_service_listens_on_tailscale(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    sandbox.use_fake_tailscale(macmini_status(tmp_path))
    with (
        listening(MACMINI_TS_IP) as postgres,
        listening(MACMINI_TS_IP) as fastapi,
        listening("127.0.0.1") as redis,
    ):
        ports = {"postgres": postgres, "fastapi": fastapi, "redis": redis}
        topology = audit_topology(tmp_path, ports, 'access = "localhost+tailscale"')
        done = sandbox.run("audit", "--topology", str(topology))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing exposed beyond Tailscale" in done.stdout
    assert sandbox.outside_connections() == []


def test_check_carries_the_exposure_as_amber(sandbox: AgentSandbox, tmp_path: Path) -> None:
    sandbox.use_fake_tailscale(macmini_status(tmp_path))
    with (
        listening("0.0.0.0") as postgres,
        listening(MACMINI_TS_IP) as fastapi,
        listening(MACMINI_TS_IP) as redis,
    ):
        ports = {"postgres": postgres, "fastapi": fastapi, "redis": redis}
        topology = audit_topology(tmp_path, ports, 'access = "tailscale"\ntimeout = "1s"')
        done = sandbox.run("check", "--topology", str(topology), "--json")
    report = json.loads(done.stdout)
    (finding,) = [f for f in report["findings"] if f["kind"] == "exposure"]
    assert finding["node"] == "macmini" and finding["subject"] == "PostgreSQL"
    assert finding["health"] == "amber"
    mac = next(n for n in report["nodes"] if n["id"] == "macmini")
    assert mac["health"] in ("amber", "red")  # red too when its probes find nothing answering
    assert any(r.startswith("exposure: PostgreSQL listens on 0.0.0.0") for r in mac["reasons"])
    assert sandbox.outside_connections() == []


DRIFTED_TOPOLOGY = """version = 1
name = "Sparklio (loopback)"
[defaults]
timeout = "1s"
[[nodes]]
id = "desktop"
name = "Desktop — GPU Worker"
hostname = "sweetlife"
ip = "127.0.0.1"
[[nodes]]
id = "laptop"
name = "Laptop — Frontend Dev"
hostname = "desktop-ecmkau8"
ip = "127.0.0.2"
always_on = false
[[nodes]]
id = "macmini"
name = "Mac mini — Backend Server"
hostname = "woosuns-mac-mini"
ip = "127.0.0.3"
[[nodes]]
id = "nas"
name = "NAS"
hostname = "synology"
ip = "127.0.0.4"
"""


def test_check_shows_drift_with_the_edit_to_make(sandbox: AgentSandbox, tmp_path: Path) -> None:
    sandbox.use_fake_tailscale("loopback_drifted.json")
    topology = tmp_path / "topology.toml"
    topology.write_text(DRIFTED_TOPOLOGY, encoding="utf-8")
    table = sandbox.run("check", "--topology", str(topology))
    done = sandbox.run("check", "--topology", str(topology), "--json")
    print(table.stdout)
    assert table.returncode == 1, table.stdout + table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("Sparklio (loopback): AMBER — ")
    for edit in (
        'change ip = "127.0.0.3" to ip = "127.0.0.9"',
        'change hostname = "desktop-ecmkau8" to hostname = "frontend-laptop"',
        'delete the [[nodes]] table with id = "nas"',
        'add [[nodes]] with id = "pixel-7", hostname = "pixel-7", ip = "127.0.0.7"',
    ):
        assert sum(edit in line for line in lines) == 1, edit
    report = json.loads(done.stdout)
    assert report["overall"] == "amber" and report["exit_code"] == 1
    drift = {f["key"]: f["health"] for f in report["findings"] if f["kind"] == "drift"}
    assert drift == {
        "drift:ip:macmini:127.0.0.9": "amber",
        "drift:hostname:laptop:frontend-laptop": "amber",
        "drift:missing:nas": "amber",
        "drift:stray:127.0.0.7": "green",  # said, never coloured
    }
    assert "drift" in report["assessed"]
    assert sandbox.outside_connections() == []


def test_acl_prints_the_policy_for_the_bundled_topology(sandbox: AgentSandbox) -> None:
    text = sandbox.run("acl")
    strict = sandbox.run("acl", "--json")
    print(text.stdout)
    assert text.returncode == 0 and strict.returncode == 0, text.stderr
    assert "// Syntax: https://tailscale.com/kb/1337/policy-syntax" in text.stdout
    uncommented = "\n".join(
        line for line in text.stdout.splitlines() if not line.lstrip().startswith("//")
    )
    assert json.loads(uncommented) == json.loads(strict.stdout)
    policy = json.loads(strict.stdout)
    assert policy["hosts"]["macmini"] == "100.123.51.5"
    assert {"src": ["laptop"], "dst": ["macmini"], "ip": ["tcp:5432", "tcp:6379", "tcp:9001"]} in (
        policy["grants"]
    )
    assert sandbox.outside_connections() == []
