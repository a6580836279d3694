"""A first run probes nothing of the bundled example: the real agent (`check`, `run
--headless`) under the loopback guard, on a recorded tailnet of five machines none of which
is the example's. The guard refuses and records every attempted connect outside loopback
(tests/helpers/netguard), and the stand-in `tailscale` records every `ping`; on a first run
both records hold nothing of the example's 100.x addresses, while Tailscale is still read.

The control: this machine one of the example's nodes (the Sparklio users themselves), where
the same commands do try its peers — so the records can catch an attempt."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from agent.edges.topology_source import load_topology
from tests.conftest import AgentSandbox, installed_agent
from tests.helpers.desktop import wait_for

STRANGER_STATUS = "real/v1_98_9_five_peers.json"  # five machines, none of the example's
MEMBER_STATUS = "running_all_direct.json"  # this machine is the example's desktop
EXAMPLE_IPS = {"100.120.180.42", "100.101.68.23", "100.123.51.5"}


def tailscale_calls(sandbox: AgentSandbox) -> list[list[str]]:
    log = Path(sandbox.env["FAKE_TAILSCALE_LOG"])
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def pinged(sandbox: AgentSandbox) -> list[str]:
    return [call[-1] for call in tailscale_calls(sandbox) if call[:1] == ["ping"]]


def status_reads(sandbox: AgentSandbox) -> int:
    return sum(1 for call in tailscale_calls(sandbox) if call[:1] == ["status"])


def test_the_example_ips_are_the_bundled_ones() -> None:
    assert {n.ip for n in load_topology(None, {}).nodes} == EXAMPLE_IPS


def test_check_on_a_first_run_says_so_probes_nothing_and_exits_3(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale(STRANGER_STATUS)
    done = sandbox.run("check")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "This machine is not in the Sparklio example network" in done.stdout
    assert "nothing was probed" in done.stdout
    assert "tailnet-agent init" in done.stdout  # what to do instead
    assert sandbox.outside_connections() == []
    assert pinged(sandbox) == []
    assert status_reads(sandbox) == 1  # Tailscale itself is still read
    assert "Traceback" not in done.stderr


def test_check_json_and_nagios_on_a_first_run_are_grey(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale(STRANGER_STATUS)
    done = sandbox.run("check", "--json")
    assert done.returncode == 3, done.stderr
    data = json.loads(done.stdout)
    assert data["overall"] == "grey" and data["exit_code"] == 3
    assert data["first_run"] == "This machine is not in the Sparklio example network"
    services = [s for n in data["nodes"] for s in n["services"]]
    assert services and {s["state"] for s in services} == {"skipped"}
    assert all("nothing of the bundled example is probed" in s["detail"] for s in services)
    nagios = sandbox.run("check", "--nagios")
    assert nagios.returncode == 3
    assert nagios.stdout.startswith("TAILNET UNKNOWN - This machine is not in the Sparklio")
    assert sandbox.outside_connections() == []
    assert pinged(sandbox) == []


def test_headless_on_a_first_run_probes_nothing(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale(STRANGER_STATUS)
    proc = subprocess.Popen(
        [installed_agent(), "run", "--headless"],
        env=sandbox.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # two sweeps: the first and the next on the example's schedule (each reads Tailscale)
        wait_for(lambda: status_reads(sandbox) >= 2 or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "not in the Sparklio example network" in stderr
    assert sandbox.outside_connections() == []
    assert pinged(sandbox) == []


@pytest.mark.parametrize("command", [["check"], ["check", "--json"]], ids=["table", "json"])
def test_a_node_of_the_example_probes_its_peers_as_before(
    sandbox: AgentSandbox, command: list[str]
) -> None:
    """The control: the guard refuses each attempt (so nothing leaves) and records it."""
    sandbox.use_fake_tailscale(MEMBER_STATUS)
    done = sandbox.run(*command)
    assert done.returncode != 3, done.stdout + done.stderr
    assert "not in the Sparklio example" not in done.stdout
    # its peers, and its own services that listen on its own Tailscale address only
    assert set(sandbox.outside_connections()) == EXAMPLE_IPS
    assert set(pinged(sandbox)) == EXAMPLE_IPS - {"100.120.180.42"}
