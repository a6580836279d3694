"""No early red (docs/RELIABILITY.md, "a first failed probe, before confirmation"): the real
`run --headless` over a loopback FastAPI whose listener misbehaves for one probe (a blip,
shorter than failure_threshold) or for good (an outage). The state line, the icon's colour,
turns red only once the monitor confirms the outage, with its notification."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AgentSandbox
from tests.faults.test_faults_services import MACMINI, PROBE, _topology
from tests.helpers.faulty_service import FaultyService, faulty_service
from tests.helpers.running_agent import RunningAgent, running_agent

STATE = "INFO agent.app: state "


@pytest.fixture
def service() -> Iterator[FaultyService]:
    with faulty_service(MACMINI) as server:
        yield server


@pytest.fixture
def agent(sandbox: AgentSandbox, tmp_path: Path, service: FaultyService) -> Iterator[RunningAgent]:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    topology = _topology(tmp_path / "topology.toml", service.port)  # failure_threshold 2
    with running_agent(sandbox, topology, "-v") as running:
        running.wait_line(STATE + "green")
        yield running
    assert sandbox.outside_connections() == []


def _states(agent: RunningAgent) -> list[str]:
    return [line.split(STATE, 1)[1] for line in agent.lines(STATE)]


def test_a_blip_shorter_than_the_confirmation_shows_no_red_and_is_not_announced(
    agent: RunningAgent, service: FaultyService
) -> None:
    service.mode = "cut_head"  # the listener hangs up: the probe fails
    agent.wait(lambda: service.count("served", "cut_head") >= 1, "no failing probe")
    service.mode = "ok"  # back before the re-check, about a second later
    downs = agent.wait_line(PROBE, ": down")
    said = agent.said()
    ups = len([x for x in said[said.index(downs) :].splitlines() if PROBE in x and ": up" in x])
    agent.wait_line(PROBE, ": up", count=3 + ups)  # the re-check and two sweeps more: all up
    said = agent.said()
    assert len(agent.lines(PROBE, ": down")) == 1, said  # it was a blip of one reading
    states = _states(agent)
    assert [s for s in states if s.startswith("red")] == [], said
    assert any(s.startswith("green") and s.endswith("(re-checking)") for s in states), said
    assert states[-1].startswith("green: All good"), said
    assert agent.lines("event service_down") == [], said
    assert agent.lines("notification", "FastAPI") == [], said


def test_a_real_outage_shows_one_red_line_after_its_confirmation(
    agent: RunningAgent, service: FaultyService
) -> None:
    service.mode = "cut_head"
    agent.wait_line("notification", "critical", "Mac mini: FastAPI down")
    downs_after = len(agent.lines(PROBE, ": down"))
    agent.wait_line(PROBE, ": down", count=2, after=downs_after)  # two sweeps more, still down
    said = agent.said()
    event = agent.wait_line("event service_down", "Mac mini: FastAPI down")
    red = [line for line in agent.lines(STATE) if line.split(STATE, 1)[1].startswith("red")]
    assert len(red) == 1, said
    assert said.index(event) < said.index(red[0]), said  # red only once it is confirmed
    first_down = agent.lines(PROBE, ": down")[0]
    between = said[said.index(first_down) : said.index(event)]
    assert STATE + "red" not in between, said
    assert len(agent.lines("notification", "Mac mini: FastAPI down")) == 1, said
