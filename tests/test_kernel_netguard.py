"""The kernel-level loopback guard sees what the Python-level one cannot: uvloop's connects.

From UVLOOP_MIN_PROBES probes on a sweep runs on uvloop, whose connects are libuv's own:
`socket.socket.connect` (patched by tests/helpers/netguard and pytest-socket) is never
called. An agent run in `isolated_network` (tests/helpers/netns) has loopback alone, and
its kernel reports every flow to outside. The canary is a peer at 192.0.2.10 (TEST-NET-1,
RFC 5737: no real machine), the one non-loopback address of the topology; nothing can leave
the namespace, so even a broken guard sends no packet anywhere. Where no network namespace
can be made (not root, and unprivileged user namespaces forbidden) the tests skip and say
why; on CI (CI=true, run as root) that is a failure instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.edges.event_loop import UVLOOP_MIN_PROBES
from tests.conftest import TAILSCALE_FIXTURES, AgentSandbox
from tests.helpers import namespaces
from tests.helpers.netns import NETNS, isolated_network
from tests.helpers.servers import closed_port

CANARY = "192.0.2.10"
LOOPBACK_SERVICES = UVLOOP_MIN_PROBES  # with the canary's one, past the uvloop threshold

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="network namespaces: Linux")


@pytest.fixture
def isolated(sandbox: AgentSandbox) -> Iterator[AgentSandbox]:
    namespaces.require(NETNS)  # skipped where it cannot be made, saying why; never on CI
    with isolated_network(sandbox.netguard_log) as network:
        sandbox.isolate(network)
        yield sandbox


def _large_topology(root: Path) -> Path:
    port = closed_port()  # refused at once (inside the namespace nothing listens anyway)
    services = "".join(
        f'\n  [[nodes.services]]\n  name = "svc-{i:02d}"\n  port = {port + i}\n  check = "tcp"\n'
        for i in range(LOOPBACK_SERVICES)
    )
    path = root / "topology.toml"
    path.write_text(
        textwrap.dedent(
            """\
            version = 1
            name = "large"

            [defaults]
            timeout = "1s"

            [[nodes]]
            id = "desktop"
            name = "Desktop"
            hostname = "sweetlife"
            ip = "127.0.0.1"
            """
        )
        + services
        + textwrap.dedent(
            f"""
            [[nodes]]
            id = "macmini"
            name = "Mac mini"
            hostname = "woosuns-mac-mini"
            ip = "{CANARY}"

              [[nodes.services]]
              name = "PostgreSQL"
              port = 5432
              check = "tcp"
            """
        ),
        encoding="utf-8",
    )
    return path


def _status_with_the_canary(root: Path) -> Path:
    """The recorded loopback status, the Mac mini (online, direct) moved to the canary."""
    status = json.loads((TAILSCALE_FIXTURES / "loopback_all_direct.json").read_text())
    for peer in status["Peer"].values():
        if peer["HostName"] == "Woosuns-Mac-mini":
            peer["TailscaleIPs"] = [CANARY]
            peer["Addrs"] = [f"{CANARY}:41641"]
    path = root / "status.json"
    path.write_text(json.dumps(status), encoding="utf-8")
    return path


def test_a_large_topology_that_probes_outside_is_caught(isolated: AgentSandbox) -> None:
    isolated.use_fake_tailscale(_status_with_the_canary(isolated.root))
    topology = _large_topology(isolated.root)

    done = isolated.run("check", "--json", "--topology", str(topology), "--node", "desktop")

    report = json.loads(done.stdout or "{}")
    probed = [s for n in report.get("nodes", []) for s in n["services"]]
    assert len(probed) == LOOPBACK_SERVICES + 1 >= UVLOOP_MIN_PROBES, done.stderr
    assert isolated.outside_connections() == [CANARY]


UVLOOP_CHILD = textwrap.dedent(
    """
    import asyncio, socket, sys, uvloop

    async def main():
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(asyncio.Protocol, sys.argv[1], 9)
        except OSError:
            pass
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(sys.argv[2], 53)
        )
        transport.sendto(b"x")
        transport.close()

    uvloop.run(main())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(False)
        udp.connect_ex((sys.argv[3], 123))
        udp.send(b"x")
    """
)


def test_uvloop_connects_and_datagrams_are_seen_by_the_kernel(isolated: AgentSandbox) -> None:
    # Without the Python guard in this child: the kernel alone must see all three.
    env = {k: v for k, v in isolated.env.items() if k != "PYTHONPATH"}
    subprocess.run(
        isolated.command(
            [sys.executable, "-c", UVLOOP_CHILD, "192.0.2.11", "192.0.2.12", "192.0.2.13"]
        ),
        env=env,
        check=True,
        timeout=30,
    )
    assert sorted(isolated.outside_connections()) == ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
