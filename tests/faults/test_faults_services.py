"""Faults of a service, against the running agent (`run --headless`): each is turned on
while the agent watches a healthy FastAPI, must show as the right verdict, and must end in
"FastAPI is back" and green once the service behaves again. The service and the agent are
tests/faults/conftest.py's fixtures."""

from __future__ import annotations

import pytest

from tests.helpers.faulty_service import HUGE_BYTES, FaultyService
from tests.helpers.running_agent import FASTAPI_PROBE as PROBE
from tests.helpers.running_agent import RunningAgent


def _recovers(agent: RunningAgent, service: FaultyService) -> None:
    """The fault ends: one "FastAPI is back", green, and the next sweeps are all up."""
    service.mode = "ok"
    back = agent.wait_line("event service_up", "FastAPI is back")
    agent.wait_line("state green", count=2)
    agent.wait_line(PROBE, ": up", count=3, since=agent.mark())
    said = agent.said()
    after = said[said.index(back) :]
    assert ": down" not in "\n".join(x for x in after.splitlines() if PROBE in x), after
    assert len(agent.lines("event service_down")) == 1, said
    assert len(agent.lines("event service_up")) == 1, said
    assert agent.lines("INFO agent.app: state")[-1].split("state ")[1].startswith("green"), said
    assert "Traceback" not in said, said


def test_a_service_that_accepts_and_never_answers(
    agent: RunningAgent, service: FaultyService
) -> None:
    service.mode = "silent"
    red = agent.wait_line("state red", "Mac mini: FastAPI down")
    assert "connected, but no answer within 1 s" in red
    event = agent.wait_line("event service_down")
    assert "accepted the connection but never answered" in event
    agent.wait_line("notification", "critical", "Mac mini: FastAPI down")
    assert service.count("served", "silent") >= 2  # the confirming sweeps asked again
    _recovers(agent, service)


@pytest.mark.parametrize(
    ("mode", "verdict"),
    [
        (
            "cut_head",
            "not an HTTP server on this port (it closed the connection without an answer)",
        ),
        ("cut_body", "HTTP 200, then the connection closed in the middle of the body"),
    ],
)
def test_a_service_that_closes_mid_response(
    agent: RunningAgent, service: FaultyService, mode: str, verdict: str
) -> None:
    service.mode = mode
    red = agent.wait_line("state red", "Mac mini: FastAPI down")
    assert verdict in red, red
    agent.wait_line("event service_down")
    _recovers(agent, service)


def test_a_service_that_drip_feeds_is_cut_at_the_probe_deadline(
    agent: RunningAgent, service: FaultyService
) -> None:
    service.mode = "drip"
    red = agent.wait_line("state red", "Mac mini: FastAPI down")
    assert "connected, but no answer within 1 s" in red, red
    agent.wait_line("event service_down")
    # Every byte comes well within the read timeout, and a drip lasts 100 s: only the probe's
    # total deadline can end the drips the agent gave up on, long before they are over.
    agent.wait(lambda: service.count("cut_by_client", "drip") >= 2, "the drips were not cut")
    assert service.count("completed", "drip") == 0
    _recovers(agent, service)


def test_a_service_that_answers_10_mb_is_read_within_bounds(
    agent: RunningAgent, service: FaultyService
) -> None:
    agent.wait_line(PROBE, ": up", count=3, since=agent.mark())  # warmed up on honest answers
    baseline = agent.rss_kib()
    service.mode = "huge"
    agent.wait_line(PROBE, ": up", count=5, since=agent.mark())
    assert service.count("served", "huge") >= 5
    grown = agent.rss_kib() - baseline
    # the body starts with "ok": up (the verdict right), found in the first 64 KiB
    assert agent.lines("event service_down") == []
    assert agent.lines("state red") == []
    # read within bounds: the probe hung up long before the 10 MB were out, memory flat
    assert all(sent < HUGE_BYTES / 10 for sent in service.sent("huge")), service.sent("huge")
    assert grown < 8 * 1024, f"RSS grew {grown} KiB over 5 answers of 10 MB"
    _recovers_quietly(agent, service)


def _recovers_quietly(agent: RunningAgent, service: FaultyService) -> None:
    service.mode = "ok"
    agent.wait_line(PROBE, ": up", count=2, since=agent.mark())
    assert agent.lines("event ") == [], agent.said()


# ---- no early red (docs/RELIABILITY.md, "a first failed probe, before confirmation"): the
# state line, the icon's colour, turns red only once the monitor confirms the outage.

STATE = "INFO agent.app: state "


def _state_words(agent: RunningAgent) -> list[str]:
    return [line.split(STATE, 1)[1] for line in agent.lines(STATE)]


def test_a_blip_shorter_than_the_confirmation_shows_no_red_and_is_not_announced(
    agent: RunningAgent, service: FaultyService
) -> None:
    service.mode = "cut_head"  # the listener hangs up: the probe fails
    agent.wait(lambda: service.count("served", "cut_head") >= 1, "no failing probe")
    service.mode = "ok"  # back before the re-check, about a second later
    downs = agent.wait_line(PROBE, ": down")
    # the re-check and two sweeps more: all up
    agent.wait_line(PROBE, ": up", count=3, since=agent.said().index(downs))
    said = agent.said()
    assert len(agent.lines(PROBE, ": down")) == 1, said  # it was a blip of one reading
    states = _state_words(agent)
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
    agent.wait_line(PROBE, ": down", count=2, since=agent.mark())  # two sweeps more, still down
    said = agent.said()
    event = agent.wait_line("event service_down", "Mac mini: FastAPI down")
    red = [line for line in agent.lines(STATE) if line.split(STATE, 1)[1].startswith("red")]
    assert len(red) == 1, said
    assert said.index(event) < said.index(red[0]), said  # red only once it is confirmed
    first_down = agent.lines(PROBE, ": down")[0]
    between = said[said.index(first_down) : said.index(event)]
    assert STATE + "red" not in between, said
    assert len(agent.lines("notification", "Mac mini: FastAPI down")) == 1, said
