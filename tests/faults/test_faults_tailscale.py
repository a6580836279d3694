"""Faults of the `tailscale` CLI under a running `tailnet-agent run --headless`.

The real agent sweeps a loopback network (tests/helpers/running_agent.py) while the stand-in
CLI is made to fail the way the real one does — gone, hanging past the agent's 5 s bound,
printing garbage or half a document, exiting non-zero, reporting Stopped — and then healed.
For each: the state line and the one critical notification the user reads (a server's
notifications are log lines), no alarm about the peers the agent could not check, and after
the fault green again with both services up, Tailscale's return announced, nothing sent
beyond loopback.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.core.confirm import GRACE_S
from tests.conftest import FAKE_TAILSCALE_DIR, AgentSandbox
from tests.helpers.running_agent import (
    LoopbackNetwork,
    RunningAgent,
    loopback_network,
    running_agent,
)

ALL_GOOD = "state green: All good — 2 nodes, 2 of 2 services up"


def fault_and_heal(
    agent: RunningAgent,
    net: LoopbackNetwork,
    start: object,
    heal: object,
    *,
    state: str,
    alarm: str,
    back: str,
    sweeps_run: bool = True,
) -> tuple[list[str], list[str]]:
    """Start the fault (`start()`), check what the user reads, heal it (`heal()`), check that
    the next sweeps are right. Returns the lines said during the fault and after it."""
    agent.wait_line(ALL_GOOD)
    began = agent.mark()
    start()  # type: ignore[operator]
    assert "Tailscale" in agent.wait_line("state red:", since=began)
    agent.wait_line(f"notification (log only, critical): {alarm}", since=began)
    if sweeps_run:
        net.wait_status_calls(agent, 2)  # it keeps sweeping through the fault
    else:
        time.sleep(3)  # with no CLI to count: about three sweeps of 1 s
    during = agent.lines(since=began)
    healed = agent.mark()
    heal()  # type: ignore[operator]
    agent.wait_line(f"notification (log only): {back}", since=healed)
    # Tailscale's return starts a grace period: the state line says so, as the tray does,
    # and reads all good once it is over
    agent.wait_line("state green: Settling after Tailscale", since=healed)
    agent.wait_line(ALL_GOOD, since=healed, timeout=GRACE_S + 30)
    after = agent.lines(since=healed)

    assert any(state in line for line in during if "state red:" in line), during
    # one alarm for the whole fault, however many sweeps it lasted
    assert sum(f"critical): {alarm}" in line for line in during) == 1, during
    # the peers could not be checked: no word about them, then or after
    assert not [line for line in [*during, *after] if "service_down" in line or "offline" in line]
    # nor a claim that this machine is no node: Tailscale cannot tell which it is
    assert not [line for line in during if "no node of the topology" in line], during
    return during, after


@pytest.mark.parametrize(
    ("mode", "state", "alarm", "back"),
    [
        pytest.param(
            "fail",
            "`tailscale status` failed (exit 1): failed to connect to local tailscaled",
            "Tailscale cannot be reached here",
            "Tailscale can be reached here again",
            id="exits-non-zero",
        ),
        pytest.param(
            "hang",
            "`tailscale status` did not answer within 5 s (tailscaled may be stuck",
            "Tailscale does not answer here",
            "Tailscale answers here again",
            id="hangs-past-its-timeout",
        ),
        pytest.param(
            "garbage",
            '`tailscale status --json` printed something that is not JSON: "Tailscale is stopped.',
            "Tailscale cannot be read here",
            "Tailscale can be read here again",
            id="prints-garbage",
        ),
        pytest.param(
            "half",
            '`tailscale status --json` printed something that is not JSON: "{ \\"Version\\"',
            "Tailscale cannot be read here",
            "Tailscale can be read here again",
            id="prints-half-a-document",
        ),
    ],
)
def test_a_failing_tailscale_cli_is_red_once_and_green_after(
    sandbox: AgentSandbox, tmp_path: Path, mode: str, state: str, alarm: str, back: str
) -> None:
    with (
        loopback_network(sandbox, tmp_path) as net,
        running_agent(sandbox, net.topology, node=None) as agent,
    ):
        fault_and_heal(
            agent,
            net,
            lambda: net.set_fault(mode),
            lambda: net.set_fault("ok"),
            state=state,
            alarm=alarm,
            back=back,
        )
    assert sandbox.outside_connections() == []


def test_a_hung_cli_is_killed_every_time_not_left_behind(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    with (
        loopback_network(sandbox, tmp_path) as net,
        running_agent(sandbox, net.topology, node=None) as agent,
    ):
        agent.wait_line(ALL_GOOD)
        net.set_fault("hang")
        net.wait_status_calls(agent, 3)
        net.set_fault("ok")
        agent.wait_line("notification (log only): Tailscale answers here again")
        pids = [int(p) for p in (tmp_path / "tailscale-pids").read_text().split()]
        # every `tailscale` it started, the hung ones too, was killed and reaped
        assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert sandbox.outside_connections() == []


def test_a_tailscale_cli_that_disappears_and_comes_back(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    cli = tmp_path / "bin" / "tailscale"  # --tailscale names it: an uninstall removes it
    cli.parent.mkdir()
    cli.symlink_to(FAKE_TAILSCALE_DIR / "tailscale")
    with (
        loopback_network(sandbox, tmp_path) as net,
        running_agent(sandbox, net.topology, "--tailscale", str(cli), node=None) as agent,
    ):
        during, _ = fault_and_heal(
            agent,
            net,
            cli.unlink,
            lambda: cli.symlink_to(FAKE_TAILSCALE_DIR / "tailscale"),
            state=f"Tailscale is not installed here: {cli} does not exist",
            alarm="Tailscale is not installed here",
            back="Tailscale is installed here now",
            sweeps_run=False,
        )
        told = [line for line in during if "tailscale_stopped" in line or "critical)" in line]
        assert len(told) == 2, during  # the event's log line and the notification
        # each says its title once: "TITLE: PATH does not exist (…)", not the title twice
        assert [line.count("Tailscale is not installed here") for line in told] == [1, 1], told
        assert all(f"{cli} does not exist" in line for line in told), told
        untold = "which node this machine is cannot be told while Tailscale is unusable"
        assert any(untold in line for line in during), during
    assert sandbox.outside_connections() == []


def test_tailscale_stopped_then_running_again_and_a_real_outage_after_it_is_told(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    with (
        loopback_network(sandbox, tmp_path) as net,
        running_agent(sandbox, net.topology, node=None) as agent,
    ):
        _, after = fault_and_heal(
            agent,
            net,
            lambda: net.set_status("stopped.json"),
            lambda: net.set_status("loopback_all_direct.json"),
            state="Tailscale is stopped on this machine (run `tailscale up`)",
            alarm="Tailscale is not running here",
            back="Tailscale is running here again",
        )
        assert any("grace period: settling after Tailscale started again" in x for x in after)
        # The peers are watched again: the backend stopping now is told (after the settling).
        stopped = agent.mark()
        net.fastapi.kill()
        net.fastapi.wait(5)
        alarm = agent.wait_line("critical): Mac mini: FastAPI down", since=stopped, timeout=90)
        assert "refused" in alarm
        agent.wait_line("state red:", since=stopped)
    assert sandbox.outside_connections() == []
