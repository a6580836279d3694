"""A DNS name that does not resolve, against the running agent (`run --headless`).

The probes dial the topology's IPs only (the loader refuses names), so the one name the
agent resolves is a `--topology` URL's host. The agent, the topology server and the service
run together in an empty network namespace of their own (only `lo`, up), with a hosts file
the test owns bound over /etc/hosts and a resolv.conf naming 127.0.0.1, where nothing
answers on port 53: no lookup can leave the namespace. The name is absent first, then
added, then removed again; the test edits the hosts file in place (the bind mount follows
the file, not its name).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AgentSandbox
from tests.helpers.namespaces import namespaced, require
from tests.helpers.running_agent import MACMINI, RunningAgent, fastapi_topology, running_agent

NETNS = ("--net", "--mount")
NAME = "topology.faults.test"  # .test: reserved, never a real host
PORT = 8000  # the namespace is empty: any port is free
URL = f"http://{NAME}:{PORT}/topology.toml"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"


# Inside the namespace: loopback up, the test's hosts and resolv.conf over the system's, the
# backend (the topology and the FastAPI's /health, one http.server on the Mac mini's
# address) in the background, its pid written down for the test to end it.
_SETUP = """
ip link set lo up
mount --bind "$1" /etc/hosts
mount --bind "$2" /etc/resolv.conf
cd "$3"
python3 -m http.server --bind "$4" "$5" >/dev/null 2>&1 &
echo $! > "$6"
"""


@pytest.fixture
def dns_agent(sandbox: AgentSandbox, tmp_path: Path) -> Iterator[tuple[RunningAgent, Path]]:
    """The agent on URL, the name absent; yields it and the hosts file."""
    require(NETNS)
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    www = tmp_path / "www"
    www.mkdir()
    fastapi_topology(www / "topology.toml", PORT)
    (www / "health").write_text("ok\n", encoding="utf-8")
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS, encoding="utf-8")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n", encoding="utf-8")
    config = sandbox.root / "config" / "tailnet-agent"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('refresh = "1s"\n', encoding="utf-8")  # ask often
    pidfile = tmp_path / "backend.pid"
    args = (str(hosts), str(resolv), str(www), MACMINI, str(PORT), str(pidfile))
    prefix = namespaced(NETNS, _SETUP, *args)
    try:
        with running_agent(sandbox, URL, "-v", prefix=prefix) as agent:
            yield agent, hosts
    finally:
        if pidfile.exists():  # the backend, by its pid: it outlives the agent otherwise
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
    assert sandbox.outside_connections() == []


def test_a_topology_url_whose_name_does_not_resolve(
    dns_agent: tuple[RunningAgent, Path],
) -> None:
    agent, hosts = dns_agent
    said = agent.wait_line("state grey", NAME, "does not resolve")
    assert "no copy was ever fetched" in said
    assert agent.lines("topology source", f"the name {NAME} does not resolve"), agent.said()
    assert not agent.lines("probe macmini/FastAPI")  # nothing to sweep yet

    with hosts.open("a", encoding="utf-8") as f:  # the name appears (in place: same inode)
        f.write(f"{MACMINI} {NAME}\n")
    agent.wait_line("topology fetched from", NAME)
    agent.wait_line("state green")
    agent.wait_line("probe macmini/FastAPI", "up in", count=2, since=agent.mark())  # sweeps on

    with hosts.open("r+", encoding="utf-8") as f:  # and goes again
        f.truncate(0)
        f.write(HOSTS)
    kept = agent.wait_line("topology source", f"the name {NAME} does not resolve", count=2)
    assert "in use: the copy fetched" in kept  # the last good copy stays in use
    agent.wait_line("probe macmini/FastAPI", "up in", count=2, since=agent.mark())
    assert "Traceback" not in agent.said()
