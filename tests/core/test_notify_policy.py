"""Notification policy: coalescing, rate limits, pause and resume, on plain Events."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.core.events import (
    Event,
    EventKind,
    link_relayed_event,
    peer_offline_event,
    peer_online_event,
    retired_event,
    service_down_event,
    service_up_event,
    tailscale_running_event,
    tailscale_stopped_event,
    topology_error_event,
    topology_fixed_event,
)
from agent.core.model import BackendState, ProbeResult, ProbeState, Reason, Service, TailnetView
from agent.core.notify_policy import (
    ON_SCREEN_MAX,
    RATE_LIMIT_S,
    Notification,
    PolicyState,
    decide,
    initial_policy,
    is_paused,
    pause_presets,
    pause_until,
    plan,
    resume,
)
from tests.core.snapshots import DESKTOP, FASTAPI, LAPTOP, MACMINI, NEXT, OLLAMA, REDIS, VITE

REFUSED = ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused")
MINIO = replace(REDIS, name="MinIO API", port=9000)
CONSOLE = replace(REDIS, name="MinIO Console", port=9001)


def down(service: Service, at: float = 0.0, node: object = MACMINI) -> Event:
    return service_down_event(node, service, REFUSED, at)  # type: ignore[arg-type]


def up(service: Service, at: float = 0.0, node: object = MACMINI) -> Event:
    return service_up_event(node, service, at, down_for_s=60.0, announce=True)  # type: ignore[arg-type]


def titles(notes: tuple[Notification, ...]) -> list[str]:
    return [n.title for n in notes]


# ==== what passes ==============================================================


def test_unannounced_events_never_notify() -> None:
    events = [
        service_down_event(LAPTOP, NEXT, REFUSED, 0.0),  # info service
        peer_offline_event(LAPTOP, 0.0),  # not always on
        service_down_event(MACMINI, REDIS, REFUSED, 0.0, folded=True),
    ]
    state, notes = plan(initial_policy(), events, 0.0)
    assert notes == ()
    assert state.shown_bad == frozenset()


def test_a_single_event_keeps_its_own_words() -> None:
    event = down(FASTAPI)
    _, notes = plan(initial_policy(), [event], 0.0)
    assert notes == (
        Notification(
            title="Mac mini — Backend Server: FastAPI down",
            message="FastAPI on woosuns-mac-mini refused the connection (service not running?)",
            critical=True,
            event_kinds=(EventKind.SERVICE_DOWN,),
            node_id="macmini",
            key="n1",
        ),
    )


# ==== coalescing ===============================================================


def test_a_burst_of_downs_on_one_node_is_one_notification() -> None:
    _, notes = plan(initial_policy(), [down(REDIS), down(MINIO), down(CONSOLE)], 0.0)
    (note,) = notes
    assert note.title == "Mac mini — Backend Server: 3 services down"
    for name in ("Redis", "MinIO API", "MinIO Console"):
        assert name in note.message
    assert note.message.splitlines()[0] == (
        "Redis on woosuns-mac-mini refused the connection (service not running?)"
    )
    assert not note.critical and note.events == 3
    assert note.event_kinds == (EventKind.SERVICE_DOWN,) * 3


def test_a_critical_event_is_never_coalesced_away() -> None:
    _, notes = plan(initial_policy(), [down(REDIS), down(FASTAPI), down(MINIO)], 0.0)
    assert titles(notes) == [
        "Mac mini — Backend Server: FastAPI down",
        "Mac mini — Backend Server: 2 services down",
    ]
    assert [n.critical for n in notes] == [True, False]


def test_two_criticals_get_one_notification_each() -> None:
    offline = peer_offline_event(MACMINI, 0.0)
    stopped = tailscale_stopped_event(TailnetView(backend_state=BackendState.STOPPED), 0.0)
    _, notes = plan(initial_policy(), [offline, stopped], 0.0)
    assert titles(notes) == ["Mac mini — Backend Server offline", "Tailscale is not running here"]
    assert all(n.critical for n in notes)


def test_no_coalescing_across_nodes_or_directions() -> None:
    state, _ = plan(initial_policy(), [down(MINIO)], 0.0)  # shown: its recovery will pass
    events = [down(REDIS), down(OLLAMA, node=DESKTOP), up(MINIO)]
    _, notes = plan(state, events, 10.0)
    assert titles(notes) == [
        "Mac mini — Backend Server: Redis down",
        "Desktop — GPU Worker: Ollama down",
        "Mac mini — Backend Server: MinIO API up",
    ]


def test_mixed_kinds_and_recoveries_coalesce_by_direction() -> None:
    relayed = link_relayed_event(MACMINI, "tok", 0.0, was_direct=True)
    state, notes = plan(initial_policy(), [relayed, down(REDIS), down(MINIO)], 0.0)
    (note,) = notes
    assert note.title == "Mac mini — Backend Server: 3 problems"
    assert "relayed" not in note.title and "relay" in note.message
    _, notes = plan(state, [up(REDIS, 5.0), up(MINIO, 5.0)], 5.0)
    assert titles(notes) == ["Mac mini — Backend Server: 2 services up"]


def test_a_long_burst_lists_five_and_counts_the_rest() -> None:
    services = [replace(REDIS, name=f"S{i}", port=9100 + i) for i in range(8)]
    _, notes = plan(initial_policy(), [down(s) for s in services], 0.0)
    (note,) = notes
    assert note.title == "Mac mini — Backend Server: 8 services down"
    lines = note.message.splitlines()
    assert len(lines) == 6 and lines[-1] == "(+3 more)"


def test_events_without_a_node_are_never_grouped() -> None:
    stopped = tailscale_stopped_event(TailnetView(backend_state=BackendState.STOPPED), 0.0)
    error = topology_error_event("topology.toml:1: not TOML", 0.0)
    state, notes = plan(initial_policy(), [stopped, error], 0.0)
    assert titles(notes) == ["Tailscale is not running here", "Topology file refused"]
    events = [
        tailscale_running_event(5.0, stopped_for_s=5.0, announce=True),
        topology_fixed_event("topology.toml", 3, 5.0),
    ]
    _, notes = plan(state, events, 5.0)
    assert titles(notes) == ["Tailscale is running here again", "Topology file accepted"]


# ==== rate limit ===============================================================


def test_a_flapping_service_is_shown_at_most_once_per_ten_minutes() -> None:
    state = initial_policy()
    steps: list[tuple[float, Event, bool]] = [
        (0.0, down(REDIS), True),
        (60.0, up(REDIS), True),  # the recovery of a shown down always passes
        (120.0, down(REDIS), False),  # a repeat within 10 min
        (180.0, up(REDIS), False),  # its down was not shown: the user never saw it go
        (RATE_LIMIT_S + 1.0, down(REDIS), True),
        (RATE_LIMIT_S + 2.0, up(REDIS), True),
    ]
    for at, event, shown in steps:
        state, notes = plan(state, [event], at)
        assert bool(notes) is shown, (at, event.kind)


def test_critical_events_are_never_rate_limited() -> None:
    state = initial_policy()
    for i in range(4):
        state, notes = plan(state, [down(FASTAPI)], i * 60.0)
        assert titles(notes) == ["Mac mini — Backend Server: FastAPI down"]
        state, notes = plan(state, [up(FASTAPI)], i * 60.0 + 30.0)
        assert titles(notes) == ["Mac mini — Backend Server: FastAPI up"]


def test_rate_limit_is_per_subject_and_kind() -> None:
    state, _ = plan(initial_policy(), [down(REDIS)], 0.0)
    state, notes = plan(state, [down(MINIO)], 10.0)
    assert titles(notes) == ["Mac mini — Backend Server: MinIO API down"]


def test_old_rate_limit_entries_are_forgotten() -> None:
    state, _ = plan(initial_policy(), [down(REDIS)], 0.0)
    assert len(state.last_shown) == 1
    state, _ = plan(state, [], RATE_LIMIT_S + 1.0)
    assert state.last_shown == {}


# ==== pause ====================================================================


def test_pause_drops_non_critical_counts_them_and_lets_critical_through() -> None:
    state = pause_until(initial_policy(), 3600.0)
    assert is_paused(state, 0.0) and not is_paused(state, 3600.0)
    state, notes = plan(state, [down(REDIS), down(MINIO)], 10.0)
    assert notes == () and state.dropped == 2
    state, notes = plan(state, [down(FASTAPI)], 20.0)  # the backend is never missed
    assert titles(notes) == ["Mac mini — Backend Server: FastAPI down"]
    state, notes = plan(state, [up(FASTAPI)], 30.0)  # and neither is its recovery
    assert titles(notes) == ["Mac mini — Backend Server: FastAPI up"]
    relayed = link_relayed_event(MACMINI, "tok", 40.0, was_direct=True)
    state, notes = plan(state, [relayed, up(REDIS)], 40.0)
    assert notes == () and state.dropped == 4
    state, notes = resume(state)
    assert notes == (
        Notification(
            title="While paused: 4 changes",
            message="Mac mini — Backend Server: Redis down; Mac mini — Backend Server: MinIO API "
            "down; Mac mini — Backend Server: relayed via DERP 'tok'; Mac mini — Backend "
            "Server: Redis up. The menu shows the current state.",
            critical=False,
            event_kinds=(),
            events=0,
            key="n3",  # after "FastAPI down" (n1) and "FastAPI up" (n2, which replaced n1)
        ),
    )
    assert state.paused_until is None and state.dropped == 0
    assert resume(state) == (state, ())


def test_resume_with_nothing_dropped_says_nothing() -> None:
    state, notes = resume(pause_until(initial_policy(), 100.0))
    assert notes == () and state.paused_until is None


def test_the_summary_lists_the_last_five_and_counts_the_rest() -> None:
    state = pause_until(initial_policy(), 1e9)
    services = [replace(REDIS, name=f"S{i}", port=9100 + i) for i in range(7)]
    state, _ = plan(state, [down(s) for s in services], 1.0)
    _, (note,) = resume(state)
    assert note.title == "While paused: 7 changes"
    assert note.message.startswith("Mac mini — Backend Server: S2 down;")
    assert "(+2 earlier)" in note.message


def test_a_pause_that_runs_out_is_summarised_at_the_next_plan() -> None:
    state = pause_until(initial_policy(), 100.0)
    state, _ = plan(state, [down(REDIS)], 50.0)
    state, notes = plan(state, [down(MINIO)], 100.0)
    assert titles(notes) == ["While paused: 1 change", "Mac mini — Backend Server: MinIO API down"]
    assert state.paused_until is None and state.dropped == 0


def test_extending_a_pause_keeps_the_count() -> None:
    state = pause_until(initial_policy(), 100.0)
    state, _ = plan(state, [down(REDIS)], 50.0)
    state = pause_until(state, 500.0)
    state, notes = plan(state, [down(MINIO)], 200.0)
    assert notes == () and state.dropped == 2


# ==== folded services ==========================================================


def test_back_online_with_services_still_down_is_news_and_their_recovery_passes() -> None:
    state, _ = plan(initial_policy(), [peer_offline_event(LAPTOP, 0.0)], 0.0)  # not shown
    online = peer_online_event(LAPTOP, 100.0, offline_for_s=100.0, announce=False,
                               still_down=(VITE,))  # fmt: skip
    state, notes = plan(state, [online], 100.0)
    assert titles(notes) == ["Laptop — Frontend Dev online — Vite still down"]
    assert ("service", "laptop", "Vite") in state.shown_bad
    state, notes = plan(state, [up(VITE, 200.0, node=LAPTOP)], 200.0)
    assert titles(notes) == ["Laptop — Frontend Dev: Vite up"]


def test_peer_online_with_a_critical_service_still_down_passes_a_pause() -> None:
    state, _ = plan(initial_policy(), [peer_offline_event(MACMINI, 0.0)], 0.0)
    state = pause_until(state, 1e9)
    online = peer_online_event(MACMINI, 50.0, offline_for_s=50.0, announce=True,
                               still_down=(FASTAPI,))  # fmt: skip
    state, notes = plan(state, [online], 50.0)
    assert [n.critical for n in notes] == [True]


# ==== what stays on screen =====================================================


def keys(notes: tuple[Notification, ...]) -> list[tuple[str, tuple[str, ...]]]:
    return [(n.key, n.replaces) for n in notes]


def test_a_recovery_replaces_the_critical_alarm() -> None:
    state, notes = plan(initial_policy(), [down(FASTAPI)], 0.0)
    assert keys(notes) == [("n1", ())]
    assert state.on_screen == {"n1": {("service", "macmini", "FastAPI")}}
    state, notes = plan(state, [up(FASTAPI, 60.0)], 60.0)
    assert titles(notes) == ["Mac mini — Backend Server: FastAPI up"]
    assert keys(notes) == [("n2", ("n1",))]
    assert state.on_screen == {}


def test_each_critical_alarm_is_replaced_or_closed_by_a_coalesced_recovery() -> None:
    state, notes = plan(initial_policy(), [peer_offline_event(MACMINI, 0.0)], 0.0)
    stopped = tailscale_stopped_event(TailnetView(backend_state=BackendState.STOPPED), 0.0)
    state, notes = plan(state, [down(FASTAPI), stopped], 5.0)
    assert keys(notes) == [("n2", ()), ("n3", ())]
    state, notes = plan(state, [up(FASTAPI, 60.0), up(REDIS, 60.0)], 60.0)  # Redis: never shown
    assert titles(notes) == ["Mac mini — Backend Server: FastAPI up"]
    assert keys(notes) == [("n4", ("n2",))]
    running = tailscale_running_event(70.0, stopped_for_s=65.0, announce=True)
    state, notes = plan(state, [running], 70.0)
    assert keys(notes) == [("n5", ("n3",))]
    assert list(state.on_screen) == ["n1"]  # the peer is still offline


def test_a_coalesced_recovery_replaces_the_first_and_lists_the_rest() -> None:
    state, _ = plan(initial_policy(), [down(FASTAPI)], 0.0)
    state, _ = plan(state, [down(REDIS)], 10.0)
    state, notes = plan(state, [up(REDIS, 60.0), up(FASTAPI, 60.0)], 60.0)
    assert titles(notes) == ["Mac mini — Backend Server: 2 services up"]
    assert keys(notes) == [("n3", ("n1", "n2"))]  # oldest first: n1 replaced, n2 closed


def test_a_grouped_alarm_stays_until_all_of_it_has_recovered() -> None:
    state, notes = plan(initial_policy(), [down(REDIS), down(MINIO)], 0.0)
    assert titles(notes) == ["Mac mini — Backend Server: 2 services down"]
    state, notes = plan(state, [up(REDIS, 60.0)], 60.0)
    assert keys(notes) == [("n2", ())]  # MinIO API is still down: keep saying so
    assert state.on_screen == {"n1": {("service", "macmini", "MinIO API")}}
    state, notes = plan(state, [up(MINIO, 90.0)], 90.0)
    assert keys(notes) == [("n3", ("n1",))]


def test_back_online_with_a_service_still_down_replaces_the_offline_alarm() -> None:
    state, _ = plan(initial_policy(), [peer_offline_event(MACMINI, 0.0)], 0.0)
    online = peer_online_event(MACMINI, 50.0, offline_for_s=50.0, announce=True,
                               still_down=(FASTAPI,))  # fmt: skip
    state, notes = plan(state, [online], 50.0)
    assert keys(notes) == [("n2", ("n1",))]
    assert notes[0].critical  # "FastAPI still down" is the new alarm, kept on screen
    assert state.on_screen == {"n2": {("service", "macmini", "FastAPI")}}
    state, notes = plan(state, [up(FASTAPI, 80.0)], 80.0)
    assert keys(notes) == [("n3", ("n2",))]


def test_newer_bad_news_replaces_older_news_of_the_same_subject() -> None:
    state, _ = plan(initial_policy(), [topology_error_event("line 3: bad port", 0.0)], 0.0)
    later = RATE_LIMIT_S + 1
    state, notes = plan(state, [topology_error_event("line 9: bad ip", later)], later)
    assert keys(notes) == [("n2", ("n1",))]
    state, notes = plan(state, [topology_fixed_event("t.toml", 3, later + 1)], later + 1)
    assert keys(notes) == [("n3", ("n2",))]


def test_the_pause_summary_and_dropped_recoveries_leave_the_screen_alone() -> None:
    state, _ = plan(initial_policy(), [down(FASTAPI)], 0.0)
    state = pause_until(state, 1e9)
    state, notes = plan(state, [down(REDIS), up(REDIS, 5.0)], 5.0)
    assert notes == () and list(state.on_screen) == ["n1"]
    state, (summary,) = resume(state)
    assert (summary.key, summary.replaces) == ("n2", ())
    assert list(state.on_screen) == ["n1"]


def test_what_stays_on_screen_is_bounded() -> None:
    services = [replace(REDIS, name=f"S{i}", port=9100 + i, impact=FASTAPI.impact)
                for i in range(ON_SCREEN_MAX + 5)]  # fmt: skip
    state, notes = plan(initial_policy(), [down(s) for s in services], 0.0)
    assert len(notes) == ON_SCREEN_MAX + 5
    assert len(state.on_screen) == ON_SCREEN_MAX
    assert next(iter(state.on_screen)) == "n6"  # the oldest are forgotten


_POOL = [
    lambda t: down(FASTAPI, t),
    lambda t: up(FASTAPI, t),
    lambda t: down(REDIS, t),
    lambda t: up(REDIS, t),
    lambda t: down(MINIO, t),
    lambda t: up(MINIO, t),
    lambda t: peer_offline_event(MACMINI, t),
    lambda t: peer_online_event(MACMINI, t, offline_for_s=1.0, announce=True,
                                still_down=(FASTAPI,)),
    lambda t: peer_online_event(MACMINI, t, offline_for_s=1.0, announce=True),
]  # fmt: skip


@given(
    st.lists(
        st.tuples(st.lists(st.sampled_from(range(len(_POOL))), max_size=4), st.booleans()),
        max_size=25,
    )
)
def test_replaces_only_ever_names_a_shown_alarm_once(steps: list[tuple[list[int], bool]]) -> None:
    state = initial_policy()
    emitted: list[str] = []
    replaced: set[str] = set()
    for i, (picks, toggle_pause) in enumerate(steps):
        now = i * 100.0
        if toggle_pause:
            state = pause_until(state, now + 150.0) if state.paused_until is None else state
        standing = set(state.on_screen)
        state, notes = plan(state, [_POOL[p](now) for p in picks], now)
        for note in notes:
            assert note.key not in emitted
            for key in note.replaces:
                assert key in standing and key not in replaced
                replaced.add(key)
                standing.discard(key)
            emitted.append(note.key)
            standing.add(note.key)
        assert set(state.on_screen) <= set(emitted) - replaced
        assert all(state.on_screen.values())  # nothing listed with no bad news left


def test_plan_does_not_mutate_its_input() -> None:
    before = initial_policy()
    after, _ = plan(before, [down(REDIS)], 0.0)
    assert before == PolicyState() and after != before


# ==== pause presets ============================================================

SEOUL = 9 * 3600.0


def _ts(y: int, m: int, d: int, hh: int, mm: int, offset_s: float) -> float:
    tz = timezone(timedelta(seconds=offset_s))
    return datetime(y, m, d, hh, mm, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("local", "offset", "label", "until"),
    [
        ((2026, 3, 5, 21, 30), SEOUL, "Until tomorrow 08:00", (2026, 3, 6, 8, 0)),
        ((2026, 3, 5, 2, 15), SEOUL, "Until 08:00", (2026, 3, 5, 8, 0)),
        ((2026, 3, 5, 8, 0), SEOUL, "Until tomorrow 08:00", (2026, 3, 6, 8, 0)),
        ((2026, 12, 31, 23, 59), -5 * 3600.0, "Until tomorrow 08:00", (2027, 1, 1, 8, 0)),
        ((2026, 3, 5, 7, 59), 0.0, "Until 08:00", (2026, 3, 5, 8, 0)),
        ((2026, 3, 5, 12, 0), 5.5 * 3600.0, "Until tomorrow 08:00", (2026, 3, 6, 8, 0)),
    ],
    ids=["seoul-evening", "seoul-night", "at-eight", "new-york-new-year", "utc", "india"],
)
def test_pause_presets(
    local: tuple[int, int, int, int, int],
    offset: float,
    label: str,
    until: tuple[int, int, int, int, int],
) -> None:
    now = _ts(*local, offset)
    hour, morning = pause_presets(now, offset)
    assert hour.label == "For 1 hour" and hour.until_wall == now + 3600.0
    assert morning.label == label
    assert morning.until_wall == _ts(*until, offset)


def test_pause_presets_other_morning_hour() -> None:
    now = _ts(2026, 3, 5, 21, 0, 0.0)
    _, morning = pause_presets(now, 0.0, morning_hour=7)
    assert morning.label == "Until tomorrow 07:00"
    assert morning.until_wall == _ts(2026, 3, 6, 7, 0, 0.0)


# ==== the topology file: the user's own edits =================================


def test_topology_refusals_and_fixes_are_always_told_even_while_paused() -> None:
    state = pause_until(initial_policy(), 10_000.0)
    shown: list[str] = []
    for i, at in enumerate([0.0, 20.0, 40.0, 60.0, 500.0, 520.0]):  # all within 10 min
        event = (
            topology_error_event(f"topology.toml line {i}: bad TOML", at)
            if i % 2 == 0
            else topology_fixed_event("topology.toml", 3, at)
        )
        decision = decide(state, [event], at)
        state = decision.state
        assert decision.held_back == ()
        shown += titles(decision.notifications)
    assert shown == ["Topology file refused", "Topology file accepted"] * 3
    assert state.dropped == 0  # nothing of it waits for the pause's summary


def test_an_identical_topology_notice_is_limited_and_says_why() -> None:
    error = topology_error_event("topology.toml line 3: bad TOML", 0.0)
    state, notes = plan(initial_policy(), [error], 0.0)
    assert titles(notes) == ["Topology file refused"]
    again = decide(state, [replace(error, at=30.0)], 30.0)  # the same words, nothing between
    assert again.notifications == ()
    assert [(h.event.title, h.why) for h in again.held_back] == [
        ("Topology file refused", "the same topology notice was shown 30 s ago")
    ]
    later = decide(again.state, [replace(error, at=RATE_LIMIT_S)], RATE_LIMIT_S)
    assert titles(later.notifications) == ["Topology file refused"]


def test_every_announced_event_held_back_says_why() -> None:
    state, notes = plan(initial_policy(), [down(REDIS, 0.0)], 0.0)
    assert titles(notes) == ["Mac mini — Backend Server: Redis down"]
    state, _ = plan(state, [up(REDIS, 10.0)], 10.0)
    limited = decide(state, [down(REDIS, 70.0)], 70.0)
    assert [h.why for h in limited.held_back] == [
        "the same change was shown 70 s ago; at most one per 10 min"
    ]
    unshown = decide(limited.state, [up(REDIS, 80.0)], 80.0)
    assert [h.why for h in unshown.held_back] == ["the change it recovers from was not shown"]
    paused = decide(pause_until(unshown.state, 10_000.0), [down(OLLAMA, 90.0, DESKTOP)], 90.0)
    assert [(h.event.title, h.why) for h in paused.held_back] == [
        ("Desktop — GPU Worker: Ollama down", "notifications are paused")
    ]
    quiet = decide(initial_policy(), [service_down_event(LAPTOP, NEXT, REFUSED, 0.0)], 0.0)
    assert quiet.held_back == ()  # never meant to be announced: nothing was held back


def test_a_recovery_after_a_restart_passes_when_its_down_was_told_before() -> None:
    subject = ("service", "macmini", "FastAPI")
    _, notes = plan(initial_policy([subject]), [up(FASTAPI, 10.0)], 10.0)
    assert titles(notes) == ["Mac mini — Backend Server: FastAPI up"]
    _, notes = plan(initial_policy(), [up(FASTAPI, 10.0)], 10.0)
    assert notes == ()  # not told before: its recovery is no news either


def test_a_retired_subject_is_forgotten() -> None:
    subject = ("service", "macmini", "FastAPI")
    gone = retired_event(EventKind.SERVICE_RETIRED, "macmini", "FastAPI", 5.0)
    state, notes = plan(initial_policy([subject]), [gone], 5.0)
    assert notes == () and subject not in state.shown_bad
