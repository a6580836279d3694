"""The demo's walk waits for the colour the tray icon shows (the confirmed one), not for the
latest reading's: a step is shown when the icon shows its colour."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.menu import MonitorStatus
from agent.core.model import Health
from agent.demo.network import DemoNetwork
from agent.demo.walk import Step, Walk
from agent.edges import paths
from agent.edges.topology_source import load_topology
from tests.core.sample_network import ALL_DIRECT, REFUSED, judged

HANG_GUARD_S = 30.0  # below the walk's GIVE_UP_S: a step not shown by then is a failure


@pytest.fixture(scope="module")
def network() -> Iterator[DemoNetwork]:
    running = DemoNetwork.start(load_topology(str(paths.bundled_topology_path()), {}))
    try:
        yield running
    finally:
        running.close()


def test_a_step_is_shown_by_the_icons_colour_while_the_reading_is_an_unconfirmed_blip(
    network: DemoNetwork, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blip = judged(ALL_DIRECT, FastAPI=REFUSED)  # one failed probe, re-checked next
    assert blip.overall is Health.RED
    icon_green = MonitorStatus(blip, now=blip.at, health=Health.GREEN)
    done = threading.Event()
    # the step's change publishes the status: after the walk forgot the ones from before it
    green = Step("all green", "all green", lambda _: walk.watch(icon_green), Health.GREEN, None, 0)
    walk = Walk(network, tmp_path / "topology.toml", speed=1.0, finished=done.set, steps=(green,))
    caplog.set_level(logging.WARNING, logger="agent.demo.walk")
    walk.start()
    try:
        assert done.wait(HANG_GUARD_S), "the walk did not take the icon's green as shown"
    finally:
        walk.stop()
    assert [r.getMessage() for r in caplog.records] == []
