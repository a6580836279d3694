"""The topology file edited to invalid, emptied and deleted under a running `run --headless`,
then put back.

What the user reads: one warning and one notification naming the file and why, while the
agent keeps sweeping the last good topology (no alarm about its services, the state line
unchanged); once the file is back, "accepted", and the next sweeps are right: the backend
stopping is told.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import APP_NAME
from tests.conftest import AgentSandbox
from tests.faults.test_faults_tailscale import ALL_GOOD
from tests.helpers.running_agent import LoopbackNetwork, loopback_network, running_agent


def touch_later(path: Path) -> None:
    """A fresh mtime, so a coarse clock and a quick edit still read as a change."""
    later = time.time() + 5
    os.utime(path, (later, later))


def make_invalid(net: LoopbackNetwork) -> None:
    net.topology.write_text(net.text.replace('check = "http"', 'chek = "http"', 1))
    touch_later(net.topology)


def make_empty(net: LoopbackNetwork) -> None:
    net.topology.write_text("")
    touch_later(net.topology)


@pytest.mark.parametrize(
    ("break_it", "why"),
    [
        pytest.param(make_invalid, "chek", id="edited-to-invalid"),
        pytest.param(make_empty, "version", id="emptied"),
        pytest.param(lambda net: net.topology.unlink(), "topology.toml", id="deleted"),
    ],
)
def test_a_broken_topology_file_is_refused_the_last_good_one_kept_and_its_fix_taken(
    sandbox: AgentSandbox, tmp_path: Path, break_it: Callable[[LoopbackNetwork], None], why: str
) -> None:
    with (
        loopback_network(sandbox, tmp_path) as net,
        running_agent(sandbox, net.topology, node=None) as agent,
    ):
        agent.wait_line(ALL_GOOD)
        began = agent.mark()
        break_it(net)
        refused = agent.wait_line("topology refused, keeping the last good one:", since=began)
        assert str(net.topology) in refused and why in refused, refused
        agent.wait_line("notification (log only): Topology file refused", since=began)
        net.wait_status_calls(agent, 3)  # the last good topology is still swept
        during = agent.lines(since=began)
        assert sum("topology refused" in line for line in during) == 1, during
        assert sum("(log only): Topology file refused" in line for line in during) == 1, during
        assert not [line for line in during if "state " in line or "event service" in line]

        healed = agent.mark()
        net.topology.write_text(net.text)
        touch_later(net.topology)
        agent.wait_line(f"topology reloaded from {net.topology}", since=healed)
        agent.wait_line("notification (log only): Topology file accepted", since=healed)

        stopped = agent.mark()  # the next sweeps are right: an outage now is told
        net.fastapi.kill()
        net.fastapi.wait(5)
        assert "refused" in agent.wait_line("critical): Mac mini: FastAPI down", since=stopped)
        agent.wait_line("state red:", since=stopped)
    assert sandbox.outside_connections() == []


def test_a_deleted_user_topology_is_refused_never_swapped_for_the_bundled_example(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    """The user config folder's topology.toml (no --topology) deleted while the agent runs:
    like a deleted --topology file, refused and the last good one swept on. Falling back to
    the bundled example would probe its 100.x peers: the guard and the log would show it."""
    user = Path(sandbox.env["XDG_CONFIG_HOME"]) / APP_NAME / "topology.toml"
    with loopback_network(sandbox, tmp_path) as net:
        user.parent.mkdir(parents=True)
        user.write_text(net.text, encoding="utf-8")
        with running_agent(sandbox, None, node=None) as agent:
            agent.wait_line(ALL_GOOD)
            began = agent.mark()
            user.unlink()
            refused = agent.wait_line("topology refused, keeping the last good one:", since=began)
            assert f"{user}: no such file" in refused, refused
            notified = agent.wait_line(
                "notification (log only): Topology file refused", since=began
            )
            assert str(user) in notified, notified
            net.wait_status_calls(agent, 3)  # the last good topology is still swept
            during = agent.lines(since=began)
            assert sum("topology refused" in line for line in during) == 1, during
            assert sum("(log only): Topology file refused" in line for line in during) == 1
            assert not [line for line in during if "state " in line or "event service" in line]

            healed = agent.mark()
            user.write_text(net.text, encoding="utf-8")
            touch_later(user)
            agent.wait_line(f"topology reloaded from {user}", since=healed)
            agent.wait_line("notification (log only): Topology file accepted", since=healed)

            stopped = agent.mark()  # the next sweeps are right: an outage now is told
            net.fastapi.kill()
            net.fastapi.wait(5)
            agent.wait_line("critical): Mac mini: FastAPI down", since=stopped)
            agent.wait_line("state red:", since=stopped)
            bundled = [
                line
                for line in agent.lines()
                if any(word in line for word in ("bundled", "Sparklio", "ComfyUI", "100."))
            ]
            assert bundled == []
    assert sandbox.outside_connections() == []
