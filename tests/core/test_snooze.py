"""Snoozed alerts on plain data: grey in the health rules, quiet in the notifications,
recorded as a window, ended by time or by the first confirmed good sweep."""

from __future__ import annotations

from agent.core import notify_policy
from agent.core.events import EventKind
from agent.core.health import judge, with_snoozes
from agent.core.model import Health
from agent.core.snooze import (
    Snooze,
    SnoozeKind,
    expire,
    from_json,
    key_text,
    parse_key,
    quiet,
    snooze_started_event,
    to_json,
)
from tests.core.sample_network import (
    LAPTOP,
    MACMINI,
    REFUSED,
    TIMEOUT,
    TOPOLOGY,
    judged,
    node_of,
    peer,
    running,
)
from tests.core.snapshots import Driver

TAILNET = running(peer(LAPTOP), peer(MACMINI))
FASTAPI_KEY = ("macmini", "FastAPI")
BACK = Snooze("macmini", "FastAPI", SnoozeKind.UNTIL_BACK, 0.0, None)


def test_a_snoozed_service_is_grey_and_neither_its_node_nor_the_icon_turn_red() -> None:
    down = judged(TAILNET, FastAPI=REFUSED)
    assert down.overall is Health.RED
    snoozed = with_snoozes(down, {FASTAPI_KEY})
    mac = node_of(snoozed, "macmini")
    assert [s.health for s in mac.services] == [Health.GREY, Health.GREEN]
    assert (mac.health, snoozed.overall) == (Health.GREEN, Health.GREEN)
    assert mac.services[0].result == node_of(down, "macmini").services[0].result  # still down
    assert with_snoozes(down, set()) is down


def test_a_snoozed_node_colours_nothing_even_offline_and_a_rejudged_sweep_is_the_same() -> None:
    away = running(peer(LAPTOP), peer(MACMINI, online=False))
    offline = judged(away, FastAPI=TIMEOUT, Redis=TIMEOUT)
    assert offline.overall is Health.RED
    snoozed = with_snoozes(offline, {("macmini", "")})
    assert snoozed.overall is Health.GREEN and node_of(snoozed, "macmini").health is Health.GREY
    # judging a judged sweep again (what with_snoozes does) changes nothing else
    assert with_snoozes(offline, {("laptop", "")}).nodes[2] == offline.nodes[2]
    plain = judge(TOPOLOGY, away, "desktop", {}, {}, now=1.0, snoozed={("macmini", "")})
    assert plain.overall is not Health.RED


def test_news_of_a_snoozed_subject_is_recorded_not_announced_and_the_rest_is_untouched() -> None:
    d = Driver()
    d.step(judged(TAILNET))
    d.step(judged(TAILNET, FastAPI=REFUSED, Redis=REFUSED))
    events = d.step(judged(TAILNET, FastAPI=REFUSED, Redis=REFUSED)).events
    quieted = quiet(events, frozenset({FASTAPI_KEY}))
    by_service = {e.service: e for e in quieted}
    assert not by_service["FastAPI"].announce and by_service["Redis"].announce
    _, notes = notify_policy.plan(notify_policy.initial_policy(), quieted, d.wall)
    assert [n.title for n in notes] == ["Mac mini — Backend Server: Redis down"]
    whole_node = quiet(events, frozenset({("macmini", "")}))
    assert [e.kind for e in whole_node] == [e.kind for e in events]
    assert not any(e.announce for e in whole_node)


def test_until_it_is_back_ends_on_the_first_confirmed_good_sweep() -> None:
    d = Driver()
    d.step(judged(TAILNET))
    d.step(judged(TAILNET, FastAPI=REFUSED))
    d.step(judged(TAILNET, FastAPI=REFUSED))
    snoozes = {BACK.key: BACK}
    kept, ended = expire(snoozes, d.state, TOPOLOGY, "desktop", d.wall)
    assert kept == snoozes and ended == ()  # still down: the snooze holds
    d.step(judged(TAILNET))  # back (success_threshold 1)
    kept, ended = expire(snoozes, d.state, TOPOLOGY, "desktop", d.wall)
    assert kept == {}
    (event,) = ended
    assert (event.kind, event.announce, event.still_down) == (EventKind.SNOOZE_ENDED, False, ())
    assert "it is back" in event.message


def test_a_window_that_ends_while_it_is_still_down_says_so_and_its_recovery_is_told() -> None:
    d = Driver()
    d.step(judged(TAILNET))
    hour = Snooze("macmini", "", SnoozeKind.HOUR, d.wall, d.wall + 3600)
    for _ in range(2):
        d.step(judged(TAILNET, FastAPI=REFUSED))
    kept, ended = expire({hour.key: hour}, d.state, TOPOLOGY, "desktop", d.wall)
    assert kept == {hour.key: hour}
    kept, ended = expire({hour.key: hour}, d.state, TOPOLOGY, "desktop", d.wall + 3600)
    (event,) = ended
    assert (event.announce, event.critical, event.still_down) == (True, True, ("FastAPI",))
    assert event.title == "Mac mini — Backend Server: snooze over — FastAPI still wrong"
    policy, notes = notify_policy.plan(notify_policy.initial_policy(), ended, d.wall + 3600)
    assert [n.critical for n in notes] == [True]
    up = d.step(judged(TAILNET)).events
    _, told = notify_policy.plan(policy, up, d.wall)
    assert [n.title for n in told] == ["Mac mini — Backend Server: FastAPI up"]


def test_a_snooze_of_something_that_left_the_topology_is_dropped() -> None:
    gone = Snooze("nas", "", SnoozeKind.UNTIL_BACK, 0.0, None)
    kept, ended = expire({gone.key: gone}, Driver().state, TOPOLOGY, "desktop", 10.0)
    assert (kept, ended) == ({}, ())


def test_the_window_is_recorded_and_the_state_file_reads_back() -> None:
    entry = Snooze("macmini", "FastAPI", SnoozeKind.TOMORROW, 100.0, 100.0 + 7200)
    started = snooze_started_event(entry, MACMINI, 100.0)
    assert (started.kind, started.announce, started.duration_s) == (
        EventKind.SNOOZE_STARTED, False, 7200.0,
    )  # fmt: skip
    assert started.title == "Mac mini — Backend Server: FastAPI: alerts snoozed for 2 h"
    node = Snooze("laptop", "", SnoozeKind.UNTIL_BACK, 5.0, None)
    snoozes = {entry.key: entry, node.key: node}
    assert from_json(to_json(snoozes)) == snoozes
    assert from_json({"snoozes": [{"node": "x", "kind": "nap"}, 3, {"node": ""}]}) == {}
    assert from_json("garbage") == {}
    assert parse_key(key_text(("macmini", "MinIO/API"))) == ("macmini", "MinIO/API")
    assert parse_key(key_text(("macmini", ""))) == ("macmini", "")
