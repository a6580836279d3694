"""The security pass (issue 12 item 4), each point against the real thing.

- No shell and no string command anywhere in agent/ (the AST, beside ruff's S60x rules).
- The tailscale executable never comes from a topology, a file's or a served one.
- A probe goes to the topology's host alone: a redirect to another host or scheme is an
  answer, never followed.
- The listening endpoints (metrics, share view) on real sockets: every method but GET
  refused and nothing changed by it, an oversized request line or header block refused, a
  flood limited (429), and the endpoint still serving afterwards.

Credentials in the sinks: tests/test_secrets_e2e.py and tests/core (menu, scrub).
"""

from __future__ import annotations

import ast
import asyncio
import http.client
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.metrics import MetricFamily, MetricKind, MetricsAddress, refusal
from agent.core.model import ProbeState
from agent.core.rate_limit import BURST
from agent.edges.metrics import MetricsServer
from agent.edges.probes.http import probe as http_probe
from agent.edges.share_view import ViewServer
from tests.conftest import AgentSandbox
from tests.helpers.servers import Route, free_port, http_server
from tests.helpers.topology_server import TopologyServer
from tests.probes.support import fixed_clock, target

AGENT = Path(__file__).resolve().parents[1] / "agent"


# ==== no shell, no string commands =============================================

_RUNNERS = {"run", "Popen", "call", "check_call", "check_output", "create_subprocess_exec"}
_SHELLS = {"system", "popen", "create_subprocess_shell", "getoutput", "getstatusoutput"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_no_shell_and_no_string_command_in_the_agent() -> None:
    found = []
    for path in sorted(AGENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name, where = _call_name(node), f"{path.relative_to(AGENT)}:{node.lineno}"
            if name in _SHELLS:
                found.append(f"{where}: {name}()")
            if any(k.arg == "shell" for k in node.keywords):
                found.append(f"{where}: shell=")
            if name in _RUNNERS and node.args:
                first = node.args[0]
                if isinstance(first, ast.JoinedStr | ast.BinOp) or (
                    isinstance(first, ast.Constant) and isinstance(first.value, str)
                ):
                    found.append(f"{where}: {name}() given a string command")
    assert found == []


# ==== the tailscale executable =================================================

TOPOLOGY_NAMING_A_CLI = """
version = 1
name = "hostile"
tailscale = "{cli}"

[defaults]
tailscale = "{cli}"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"
"""


@pytest.fixture
def canary_cli(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A `tailscale` that leaves a file behind if anything runs it."""
    ran = tmp_path / "canary-ran"
    cli = tmp_path / "canary" / "tailscale"
    cli.parent.mkdir()
    cli.write_text(f"#!/bin/sh\ntouch '{ran}'\necho '{{}}'\n", encoding="utf-8")
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    yield cli, ran


def test_a_topology_file_cannot_name_the_tailscale_cli(
    sandbox: AgentSandbox, canary_cli: tuple[Path, Path]
) -> None:
    cli, ran = canary_cli
    topology = sandbox.root / "topology.toml"
    topology.write_text(TOPOLOGY_NAMING_A_CLI.format(cli=cli), encoding="utf-8")
    done = sandbox.run("check", "--topology", str(topology))
    assert done.returncode == 3, done.stderr
    assert "unknown key 'tailscale'" in done.stderr
    assert not ran.exists()


def test_a_served_topology_cannot_name_the_tailscale_cli(
    sandbox: AgentSandbox, canary_cli: tuple[Path, Path]
) -> None:
    cli, ran = canary_cli
    server = TopologyServer(TOPOLOGY_NAMING_A_CLI.format(cli=cli))
    with server.running():
        done = sandbox.run("check", "--topology", server.url())
    assert done.returncode == 3, done.stderr
    assert "unknown key 'tailscale'" in done.stderr
    assert not ran.exists()
    assert sandbox.outside_connections() == []


# ==== probes stay on the topology's hosts ======================================


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.2:{port}/elsewhere", "https://127.0.0.2:{port}/", "//127.0.0.2:{port}/"],
    ids=["another-host", "another-scheme", "scheme-relative"],
)
def test_a_redirect_is_an_answer_and_never_followed(location: str) -> None:
    with socket.create_server(("127.0.0.2", 0)) as elsewhere:
        elsewhere.setblocking(False)
        port = elsewhere.getsockname()[1]
        moved = Route(302, b"", headers={"Location": location.format(port=port)})
        with http_server({"/health": moved}) as address:
            result = asyncio.run(
                http_probe(target("http", address, path="/health"), clock=fixed_clock)
            )
        with pytest.raises(BlockingIOError):  # nothing ever connected to the other host
            elsewhere.accept()
    assert (result.state, result.detail) == (ProbeState.UP, "HTTP 302")


# ==== the listening endpoints ==================================================

HOST = "127.0.0.9"


def _exchange(port: int, raw: bytes) -> bytes:
    """Send raw bytes, return the whole answer (the endpoints close after refusing)."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _status(port: int, method: str = "GET", path: str = "/", body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _body(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


FAMILY = MetricFamily(
    "tailnet_agent_up", "1 when up", MetricKind.GAUGE, ("service",), ((("FastAPI",), 1.0),)
)


@pytest.fixture(params=["metrics", "share-view"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """(port, the path it serves) of a running endpoint on HOST."""
    port = free_port(HOST)
    if request.param == "metrics":
        metrics = MetricsServer(MetricsAddress(HOST, port), lambda: [FAMILY])
        metrics.start()
        yield port, "/metrics"
        metrics.stop()
    else:
        view = ViewServer(port)
        view.bind(HOST)
        view.publish(b'{"kind":"tailnet-agent/view"}')
        yield port, "/v1/view"
        view.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_endpoints_refuse_every_method_but_get_and_change_nothing(
    endpoint: tuple[int, str], method: str
) -> None:
    port, path = endpoint
    before = _body(port, path)
    assert _status(port, method, path, body=b"x" * 4096) in (405, 501)
    after = _body(port, path)
    if path == "/metrics":  # its process_* figures move; the service's sample does not
        before, after = (b"\n".join(line for line in text.splitlines() if b"_up{" in line)
                         for text in (before, after))  # fmt: skip
    assert before == after and before


def test_endpoints_refuse_oversized_requests(endpoint: tuple[int, str]) -> None:
    port, path = endpoint
    long_line = _exchange(port, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert long_line.startswith(b"HTTP/1.") and b" 414 " in long_line.split(b"\r\n")[0]
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(150))
    many = _exchange(
        port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    )
    assert b" 431 " in many.split(b"\r\n")[0]
    assert _status(port, path=path) == 200  # and it still serves


def test_endpoints_limit_a_flood_and_serve_again(endpoint: tuple[int, str]) -> None:
    port, path = endpoint
    codes = [_status(port, path=path) for _ in range(int(BURST) + 10)]
    assert codes[0] == 200 and codes[-1] == 429
    assert codes.count(200) <= BURST + 2


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("100.101.68.24", False),
     ("127.0.0.1", True), ("::1", True), ("100.101.68.23", True)],
)  # fmt: skip
def test_metrics_listen_on_loopback_or_this_nodes_tailscale_ip_alone(
    host: str, allowed: bool
) -> None:
    why = refusal(MetricsAddress(host, 9100), ["100.101.68.23"])
    assert (why == "") is allowed, why
