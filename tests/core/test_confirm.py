"""The monitor's confirmation/threshold/grace state machine, step by step on plain data."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.confirm import (
    RECHECK_S,
    GraceReason,
    Recorded,
    Settling,
    StepResult,
    Track,
    Verdict,
    announced_subjects,
    carried_state,
    confirmed_health,
    initial_state,
    step,
)
from agent.core.events import Event, EventKind
from agent.core.health import judge
from agent.core.model import (
    FleetView,
    Health,
    Link,
    Locus,
    ProbeState,
    Sighting,
    Snapshot,
    TailscaleProblem,
    Topology,
)
from tests.core.snapshots import (
    MACMINI,
    REDIS,
    TOPOLOGY,
    Driver,
    result,
    sweep,
    with_defaults,
)

UP = sweep()
FASTAPI_DOWN = sweep(services={"FastAPI": "down"})
MACMINI_OFFLINE = sweep(links={"macmini": Link.OFFLINE})
TS_STOPPED = sweep(running=False)


def kinds(events: tuple[Event, ...] | list[Event]) -> list[tuple[str, str | None, str | None]]:
    return [(e.kind.value, e.node_id, e.service) for e in events]


def settled(d: Driver) -> None:
    """Start the driver with everything confirmed good (silently)."""
    r = d.step(UP)
    assert r.events == ()
    assert d.state.services[("macmini", "FastAPI")].confirmed is Verdict.GOOD


# ==== thresholds ===============================================================


def test_blip_one_bad_reading_no_event_but_a_quick_recheck() -> None:
    d = Driver()
    settled(d)
    r = d.step(FASTAPI_DOWN)
    assert r.events == ()
    assert r.recheck_after_s == RECHECK_S
    track = d.state.services[("macmini", "FastAPI")]
    assert (track.confirmed, track.pending, track.streak) == (Verdict.GOOD, Verdict.BAD, 1)
    r = d.step(UP, after=1.0)
    assert r.events == ()
    assert r.recheck_after_s is None
    assert d.state.services[("macmini", "FastAPI")] == replace(track, pending=None, streak=0,
                                                               streak_since=None)  # fmt: skip
    assert d.log == []


@pytest.mark.parametrize(
    ("failure", "success", "start"),
    [(2, 1, "up"), (3, 1, "up"), (2, 2, "down"), (3, 3, "down")],
    ids=["f2-from-up", "f3-from-up", "s2-from-down", "s3-from-down"],
)
def test_flapping_never_confirms(failure: int, success: int, start: str) -> None:
    topo = with_defaults(failure_threshold=failure, success_threshold=success)
    d = Driver()
    for _ in range(max(failure, success)):
        d.step(sweep(topology=topo, services={"FastAPI": start}))
    confirmed = Verdict.GOOD if start == "up" else Verdict.BAD
    assert d.state.services[("macmini", "FastAPI")].confirmed is confirmed
    d.log.clear()
    other = "down" if start == "up" else "up"
    for i in range(20):
        word = other if i % 2 == 0 else start
        r = d.step(sweep(topology=topo, services={"FastAPI": word}), after=1.0)
        assert r.events == (), f"step {i}"
        assert r.recheck_after_s == (RECHECK_S if word == other else None)
    assert d.state.services[("macmini", "FastAPI")].confirmed is confirmed
    assert d.log == []


def test_real_outage_confirmed_on_the_second_reading_one_second_later() -> None:
    d = Driver()
    settled(d)
    first = d.step(FASTAPI_DOWN)
    assert first.events == () and first.recheck_after_s == RECHECK_S
    second = d.step(FASTAPI_DOWN, after=first.recheck_after_s)
    assert kinds(second.events) == [("service_down", "macmini", "FastAPI")]
    (event,) = second.events
    assert event.critical and event.announce and not event.folded
    assert event.title == "Mac mini — Backend Server: FastAPI down"
    assert event.message == (
        "FastAPI on woosuns-mac-mini refused the connection (service not running?)"
    )
    assert event.at == d.wall
    assert second.recheck_after_s is None
    for _ in range(5):  # staying down says nothing more
        r = d.step(FASTAPI_DOWN)
        assert r.events == () and r.recheck_after_s is None
    assert d.state.services[("macmini", "FastAPI")].announced


def test_recovery_needs_success_threshold_and_says_how_long() -> None:
    topo = with_defaults(success_threshold=2)
    d = Driver()
    d.step(sweep(topology=topo))
    d.step(sweep(topology=topo, services={"FastAPI": "down"}))
    d.step(sweep(topology=topo, services={"FastAPI": "down"}), after=1.0)
    assert kinds(d.log) == [("service_down", "macmini", "FastAPI")]
    assert d.hold(sweep(topology=topo, services={"FastAPI": "down"}), 240.0) == []
    r = d.step(sweep(topology=topo))  # first good reading, 251 s after the first bad one
    assert r.events == () and r.recheck_after_s == RECHECK_S
    r = d.step(sweep(topology=topo), after=1.0)
    assert kinds(r.events) == [("service_up", "macmini", "FastAPI")]
    (event,) = r.events
    assert event.announce and not event.critical
    assert event.title == "Mac mini — Backend Server: FastAPI up"
    assert event.message == "FastAPI is back (up after 4 min)"
    assert event.duration_s == pytest.approx(251.0)


def test_contrary_reading_resets_the_streak() -> None:
    topo = with_defaults(failure_threshold=3)
    d = Driver()
    d.step(sweep(topology=topo))
    for word in ("down", "down", "up", "down", "down"):
        assert d.step(sweep(topology=topo, services={"FastAPI": word}), after=1.0).events == ()
    r = d.step(sweep(topology=topo, services={"FastAPI": "down"}), after=1.0)
    assert kinds(r.events) == [("service_down", "macmini", "FastAPI")]


@pytest.mark.parametrize("word", ["unknown", "skipped"])
def test_unknown_and_skipped_readings_leave_the_streak_alone(word: str) -> None:
    d = Driver()
    settled(d)
    d.step(FASTAPI_DOWN)
    r = d.step(sweep(services={"FastAPI": word}), after=1.0)
    assert r.events == ()
    assert r.recheck_after_s is None  # nothing new was learnt
    assert d.state.services[("macmini", "FastAPI")].streak == 1
    r = d.step(FASTAPI_DOWN, after=1.0)
    assert kinds(r.events) == [("service_down", "macmini", "FastAPI")]


# ==== start-up =================================================================


def test_start_up_down_is_announced_after_the_threshold() -> None:
    d = Driver()
    r = d.step(FASTAPI_DOWN)
    assert r.events == () and r.recheck_after_s == RECHECK_S
    assert d.state.services[("macmini", "FastAPI")].confirmed is Verdict.UNKNOWN
    r = d.step(FASTAPI_DOWN, after=1.0)
    assert kinds(r.events) == [("service_down", "macmini", "FastAPI")]
    assert r.events[0].announce and r.events[0].critical
    r = d.step(UP)  # its recovery is news too
    assert kinds(r.events) == [("service_up", "macmini", "FastAPI")]
    assert r.events[0].announce


def test_start_up_good_is_silent() -> None:
    d = Driver()
    r = d.step(UP)
    assert r.events == ()
    assert r.recheck_after_s is None  # success_threshold 1: confirmed at once
    tracks = [*d.state.services.values(), *d.state.peers.values(), *d.state.links.values()]
    assert all(t.confirmed is Verdict.GOOD for t in tracks)
    assert d.state.tailscale.confirmed is Verdict.GOOD


def test_start_up_good_with_a_success_threshold_asks_for_a_recheck_and_stays_silent() -> None:
    topo = with_defaults(success_threshold=2)
    d = Driver()
    r = d.step(sweep(topology=topo))
    assert r.events == () and r.recheck_after_s == RECHECK_S
    r = d.step(sweep(topology=topo), after=1.0)
    assert r.events == () and r.recheck_after_s is None
    assert d.state.services[("macmini", "FastAPI")].confirmed is Verdict.GOOD


def test_self_node_is_never_a_peer_or_link_subject() -> None:
    d = Driver()
    d.step(UP)
    assert set(d.state.peers) == {"laptop", "macmini"}
    assert set(d.state.links) == {"laptop", "macmini"}
    assert ("desktop", "Ollama") in d.state.services


def test_own_service_down_is_announced() -> None:
    d = Driver()
    settled(d)
    d.step(sweep(services={"Ollama": "down"}))
    r = d.step(sweep(services={"Ollama": "down"}), after=1.0)
    assert kinds(r.events) == [("service_down", "desktop", "Ollama")]
    assert r.events[0].announce and not r.events[0].critical  # degraded


# ==== grace: sleep/wake, clock jumps, network changes ==========================


def test_sleep_with_a_monotonic_gap_grace_then_a_persisting_outage_announced_once() -> None:
    d = Driver()
    settled(d)
    d.step(UP)
    r = d.step(FASTAPI_DOWN, after=600.0)  # Windows: the monotonic clock counts the sleep
    assert r.in_grace and r.events == ()
    assert d.state.services[("macmini", "FastAPI")].streak == 0
    for _ in range(2):  # failures during grace: silent, nothing counted
        r = d.step(FASTAPI_DOWN)
        assert r.in_grace and r.events == ()
        assert d.state.services[("macmini", "FastAPI")].confirmed is Verdict.GOOD
        assert d.state.services[("macmini", "FastAPI")].streak == 0
    r = d.step(FASTAPI_DOWN)  # 30 s after the wake: grace over, this reading counts
    assert not r.in_grace and r.events == ()
    assert r.recheck_after_s == RECHECK_S
    r = d.step(FASTAPI_DOWN, after=1.0)
    assert kinds(r.events) == [("service_down", "macmini", "FastAPI")]
    for _ in range(3):
        assert d.step(FASTAPI_DOWN).events == ()
    assert kinds(d.log) == [("service_down", "macmini", "FastAPI")]


def test_sleep_on_a_clock_that_stops_in_suspend_is_seen_by_the_wall_gap() -> None:
    d = Driver()
    settled(d)
    r = d.step(FASTAPI_DOWN, after=10.0, wall_after=610.0)  # Linux/macOS monotonic
    assert r.in_grace and r.events == ()


def test_wake_blip_during_grace_is_never_announced() -> None:
    d = Driver()
    settled(d)
    snapshots = [
        sweep(links={"macmini": Link.OFFLINE}, services={"FastAPI": "timeout"}),
        sweep(links={"macmini": Link.RELAY}, services={"FastAPI": "timeout"}),
        sweep(links={"macmini": Link.RELAY}),
        UP,
        UP,
    ]
    r = d.step(snapshots[0], after=900.0)
    assert r.in_grace
    for snap in snapshots[1:]:
        r = d.step(snap)
    assert not r.in_grace
    assert d.log == []


def test_clock_jump_starts_grace() -> None:
    d = Driver()
    settled(d)
    r = d.step(UP, after=10.0, wall_after=3600.0 + 10.0)
    assert r.in_grace
    r = d.step(UP, after=10.0, wall_after=-7200.0)  # and back
    assert r.in_grace


def test_small_clock_drift_does_not_start_grace() -> None:
    d = Driver()
    settled(d)
    r = d.step(UP, after=10.0, wall_after=14.0)
    assert not r.in_grace
    r = d.step(UP, after=25.0)  # 2 × interval + 5 s: still on schedule
    assert not r.in_grace
    r = d.step(UP, after=25.5)
    assert r.in_grace


def test_network_change_starts_grace_and_freezes_confirmed_states() -> None:
    d = Driver()
    settled(d)
    d.step(FASTAPI_DOWN)  # streak 1
    r = d.step(FASTAPI_DOWN, after=1.0, network_changed=True)
    assert r.in_grace and r.events == ()
    track = d.state.services[("macmini", "FastAPI")]
    assert (track.confirmed, track.pending, track.streak) == (Verdict.GOOD, None, 0)


def test_grace_ends_only_after_grace_s_without_a_new_trigger() -> None:
    d = Driver()
    settled(d)
    assert d.step(UP, after=100.0).in_grace  # t=0 of grace
    assert d.step(UP, after=20.0).in_grace  # t=20
    assert d.step(UP, after=9.0, network_changed=True).in_grace  # t=29: restarts
    assert d.step(UP, after=10.0).in_grace  # 10 s into the new grace
    assert d.step(UP, after=10.0).in_grace
    assert not d.step(UP, after=10.0).in_grace  # 30 s: over


def test_grace_asks_for_a_sweep_when_it_ends_before_the_next_interval() -> None:
    d = Driver()
    settled(d)
    r = d.step(UP, after=100.0)
    assert r.in_grace and r.recheck_after_s is None  # 30 s left > 10 s interval
    r = d.step(UP, after=10.0)
    assert r.recheck_after_s is None  # 20 s left
    r = d.step(UP, after=13.0)
    assert r.recheck_after_s == pytest.approx(7.0)
    r = d.step(UP, after=6.5)
    assert r.in_grace and r.recheck_after_s == RECHECK_S  # 0.5 s left: at least a second
    r = d.step(UP, after=1.0)
    assert not r.in_grace and r.recheck_after_s is None


def test_custom_grace_length() -> None:
    d = Driver(grace_s=60.0)
    settled(d)
    assert d.step(UP, after=100.0).in_grace
    for _ in range(5):
        assert d.step(UP).in_grace
    assert not d.step(UP).in_grace


def test_first_step_never_starts_grace() -> None:
    r = step(initial_state(), UP, 1e9, 12.0)
    assert not r.in_grace


# ==== Tailscale here ===========================================================


def test_tailscale_stopped_one_critical_event_no_cascade() -> None:
    d = Driver()
    settled(d)
    r = d.step(TS_STOPPED)
    assert r.events == () and r.recheck_after_s == RECHECK_S
    r = d.step(TS_STOPPED, after=1.0)
    assert kinds(r.events) == [("tailscale_stopped", None, None)]
    (event,) = r.events
    assert event.critical and event.announce
    assert event.title == "Tailscale is not running here"
    assert "run `tailscale up`" in event.message
    for _ in range(10):  # minutes of Tailscale down: nothing about peers
        r = d.step(TS_STOPPED)
        assert r.events == () and r.recheck_after_s is None
    assert kinds(d.log) == [("tailscale_stopped", None, None)]
    assert d.state.peers["macmini"].confirmed is Verdict.GOOD  # unchanged, not "offline"


def test_own_services_are_still_watched_while_tailscale_is_stopped() -> None:
    d = Driver()
    settled(d)
    d.step(sweep(running=False, services={"Ollama": "down"}))
    r = d.step(sweep(running=False, services={"Ollama": "down"}), after=1.0)
    assert kinds(r.events) == [
        ("tailscale_stopped", None, None),
        ("service_down", "desktop", "Ollama"),
    ]


def test_tailscale_stopping_resets_peer_streaks() -> None:
    d = Driver()
    settled(d)
    d.step(sweep(services={"FastAPI": "timeout"}))  # the probe raced the stop
    assert d.state.services[("macmini", "FastAPI")].streak == 1
    r = d.step(TS_STOPPED, after=1.0)
    assert d.state.services[("macmini", "FastAPI")].streak == 0
    assert r.events == ()


def test_tailscale_running_again_is_announced_and_starts_grace() -> None:
    d = Driver()
    settled(d)
    d.step(TS_STOPPED)
    d.step(TS_STOPPED, after=1.0)
    d.step(TS_STOPPED, after=119.0)
    # Peers come back one by one: offline and relayed readings right after the start.
    r = d.step(sweep(links={"macmini": Link.OFFLINE}))
    assert kinds(r.events) == [("tailscale_running", None, None)]
    (event,) = r.events
    assert event.announce and not event.critical
    assert event.message.startswith("Tailscale is running again (up after 2 min)")
    assert r.in_grace
    r = d.step(sweep(links={"macmini": Link.OFFLINE}))
    assert r.in_grace and r.events == ()
    r = d.step(sweep(links={"macmini": Link.RELAY}))
    assert r.in_grace and r.events == ()
    r = d.step(UP)
    assert not r.in_grace and r.events == ()
    assert kinds(d.log) == [("tailscale_stopped", None, None), ("tailscale_running", None, None)]


def test_tailscale_stopped_at_start_up() -> None:
    d = Driver()
    assert d.step(TS_STOPPED).events == ()
    r = d.step(TS_STOPPED, after=1.0)
    assert kinds(r.events) == [("tailscale_stopped", None, None)]
    assert d.state.peers["macmini"].confirmed is Verdict.UNKNOWN
    r = d.step(UP)
    assert kinds(r.events) == [("tailscale_running", None, None)]
    assert r.in_grace


def test_tailscale_blip_is_not_announced() -> None:
    d = Driver()
    settled(d)
    d.step(TS_STOPPED)
    r = d.step(UP, after=1.0)
    assert r.events == ()
    assert r.in_grace  # it did go from not running to running


# ==== grace: what it says, and the colour it keeps =============================


def reason(r: StepResult) -> GraceReason | None:
    assert (r.settling is not None) == r.in_grace
    return r.settling.reason if r.settling is not None else None


@pytest.mark.parametrize(
    ("boot", "move", "expected"),
    [
        pytest.param(None, {"after": 600.0}, GraceReason.WAKE, id="monotonic-gap-windows"),
        pytest.param(
            None, {"wall_after": 610.0}, GraceReason.WAKE_OR_CLOCK, id="wall-ahead-no-boot-clock"
        ),
        pytest.param(None, {"wall_after": -600.0}, GraceReason.CLOCK_JUMP, id="wall-back"),
        pytest.param(
            0.0, {"boot_after": 610.0, "wall_after": 610.0}, GraceReason.WAKE, id="linux-suspend"
        ),
        pytest.param(0.0, {"wall_after": 3610.0}, GraceReason.CLOCK_JUMP, id="clock-set-ahead"),
        pytest.param(
            0.0, {"after": 600.0, "wall_after": 600.0}, GraceReason.WAKE, id="process-stalled"
        ),
    ],
)
def test_grace_names_what_the_clocks_saw(
    boot: float | None, move: dict[str, float], expected: GraceReason
) -> None:
    d = Driver(boot=boot)
    settled(d)
    r = d.step(UP, **move)  # type: ignore[arg-type]
    assert reason(r) is expected
    assert r.settling is not None and r.settling.health is Health.GREEN


def test_a_slow_sweep_is_no_sleep() -> None:
    d = Driver()
    settled(d)
    # 10 s interval + a 5 s `tailscale status` time-out + a 15 s recheck sweep: 30 s apart.
    assert not d.step(UP, after=30.0, busy_s=10.0).in_grace
    assert d.step(UP, after=30.0).in_grace  # the same gap with nothing to explain it


@pytest.mark.parametrize("problem", [TailscaleProblem.TIMED_OUT, TailscaleProblem.BAD_OUTPUT])
def test_one_odd_answer_of_the_tailscale_cli_starts_no_grace(problem: TailscaleProblem) -> None:
    d = Driver()
    settled(d)
    d.step(sweep(running=False, problem=problem))
    r = d.step(UP, after=1.0)
    assert not r.in_grace and r.events == ()


@pytest.mark.parametrize("problem", [TailscaleProblem.TIMED_OUT, TailscaleProblem.BAD_OUTPUT])
def test_a_confirmed_cli_outage_settles_as_tailscale_answered_again(
    problem: TailscaleProblem,
) -> None:
    d = Driver()
    settled(d)
    d.step(sweep(running=False, problem=problem))
    d.step(sweep(running=False, problem=problem), after=1.0)
    r = d.step(UP)
    assert kinds(r.events) == [("tailscale_running", None, None)]
    assert reason(r) is GraceReason.TAILSCALE_ANSWERS
    assert r.settling is not None and r.settling.health is Health.GREEN  # all confirmed good


@pytest.mark.parametrize(
    "problem",
    [TailscaleProblem.NOT_RUNNING, TailscaleProblem.CLI_FAILED, TailscaleProblem.NOT_INSTALLED],
)
def test_tailscale_starting_again_settles_as_started(problem: TailscaleProblem) -> None:
    d = Driver()
    settled(d)
    d.step(sweep(running=False, problem=problem))
    assert reason(d.step(UP, after=1.0)) is GraceReason.TAILSCALE_STARTED


def test_network_change_is_named_and_the_latest_trigger_wins() -> None:
    d = Driver()
    settled(d)
    assert reason(d.step(UP, network_changed=True)) is GraceReason.NETWORK_CHANGE
    assert reason(d.step(UP)) is GraceReason.NETWORK_CHANGE
    assert reason(d.step(UP, wall_after=-600.0)) is GraceReason.CLOCK_JUMP
    d.hold(UP, 30.0)
    assert reason(d.step(UP)) is None


def test_settling_keeps_the_confirmed_red_not_the_readings() -> None:
    d = Driver()
    settled(d)
    d.step(FASTAPI_DOWN)
    d.step(FASTAPI_DOWN, after=1.0)  # confirmed down: red, notified
    r = d.step(UP, after=600.0)  # after a wake it answers, but that is not confirmed yet
    assert r.settling == Settling(GraceReason.WAKE, Health.RED, ("Mac mini: FastAPI down",))


def test_confirmed_health_follows_the_colour_rules() -> None:
    d = Driver()
    assert confirmed_health(d.state, TOPOLOGY, "desktop") == (Health.GREY, ())  # nothing known
    settled(d)
    assert confirmed_health(d.state, TOPOLOGY, "desktop") == (Health.GREEN, ())
    picture = sweep(
        links={"macmini": Link.RELAY, "laptop": Link.OFFLINE},
        services={"Redis": "down", "Next.js": "down"},
    )
    d.step(picture)
    d.step(picture, after=1.0)
    assert confirmed_health(d.state, TOPOLOGY, "desktop") == (
        Health.AMBER,
        ("Mac mini: relayed", "Mac mini: Redis down"),  # the away laptop never colours
    )
    d.step(TS_STOPPED)
    d.step(TS_STOPPED, after=1.0)
    health, problems = confirmed_health(d.state, TOPOLOGY, "desktop")
    assert health is Health.RED and problems[0] == "Tailscale is not running here"


def _settling_after_a_wake(down: Snapshot, then: Snapshot) -> Settling | None:
    """Confirm `down` (FastAPI down and the Mac mini's link relayed), then sweep `then`
    after a sleep: the settling the icon keeps."""
    d = Driver()
    settled(d)
    d.step(down)
    d.step(down, after=1.0)
    return d.step(then, after=600.0).settling


def test_settling_keeps_a_snoozed_service_and_node_uncoloured() -> None:
    down = sweep(links={"macmini": Link.RELAY}, services={"FastAPI": "down"})
    service = frozenset({("macmini", "FastAPI")})
    settling = _settling_after_a_wake(down, sweep(snoozed=service))
    assert settling == Settling(GraceReason.WAKE, Health.AMBER, ("Mac mini: relayed",))
    settling = _settling_after_a_wake(down, sweep(snoozed=frozenset({("macmini", "")})))
    assert settling == Settling(GraceReason.WAKE, Health.GREEN, ())
    # unsnoozed, the same confirmed states are red, as before
    settling = _settling_after_a_wake(down, sweep())
    assert settling is not None and settling.health is Health.RED


def test_settling_places_a_down_the_peers_reach_on_this_machines_link() -> None:
    here_only = FleetView(
        views=(("laptop", "fresh"),),
        sightings={
            ("macmini", "FastAPI"): Sighting(
                (("desktop", ProbeState.DOWN), ("laptop", ProbeState.UP)), Locus.HERE
            )
        },
    )
    down = sweep(services={"FastAPI": "down"}, fleet=here_only)
    settling = _settling_after_a_wake(down, sweep(fleet=here_only))
    assert settling == Settling(GraceReason.WAKE, Health.AMBER, ("Mac mini: FastAPI down",))


def test_the_judged_sweep_and_the_settling_agree_on_snoozes_and_placement() -> None:
    """judge (with the real rules) records the snoozes it judged by: what settling reads."""
    results = {(n.id, s.name): result("up") for n in TOPOLOGY.nodes for s in n.services}
    results[("macmini", "FastAPI")] = result("down")
    judged = judge(
        TOPOLOGY,
        sweep().tailnet,
        "desktop",
        results,
        {},
        now=0.0,
        snoozed=frozenset({("macmini", "FastAPI")}),
    )
    assert judged.snoozed == {("macmini", "FastAPI")}
    (fastapi,) = [s for n in judged.nodes for s in n.services if s.service.name == "FastAPI"]
    assert fastapi.health is Health.GREY


# ==== links ====================================================================


def test_derp_fallback_needs_consecutive_readings() -> None:
    d = Driver()
    settled(d)
    relayed = sweep(links={"macmini": Link.RELAY}, relay="tok")
    r = d.step(relayed)  # CurAddr empty for a moment while re-validating
    assert r.events == () and r.recheck_after_s == RECHECK_S
    assert d.step(UP, after=1.0).events == ()
    d.step(relayed)
    r = d.step(relayed, after=1.0)
    assert kinds(r.events) == [("link_relayed", "macmini", None)]
    (event,) = r.events
    assert event.relay == "tok" and event.announce and not event.critical
    assert event.title == "Mac mini — Backend Server: relayed via DERP 'tok'"
    assert event.message == (
        "the direct path was lost; traffic goes through a relay, which is slower "
        "(look for `direct` in `tailscale status`)"
    )
    r = d.step(UP)
    assert kinds(r.events) == [("link_direct", "macmini", None)]
    assert r.events[0].title == "Mac mini — Backend Server: direct again"
    assert r.events[0].announce


def test_idle_is_never_relayed_and_says_nothing() -> None:
    d = Driver()
    idle = sweep(links={"macmini": Link.IDLE, "laptop": Link.IDLE})
    for _ in range(10):
        r = d.step(idle)
        assert r.events == () and r.recheck_after_s is None
    assert d.state.links["macmini"].confirmed is Verdict.UNKNOWN
    assert d.state.peers["macmini"].confirmed is Verdict.GOOD  # idle is online
    relayed = sweep(links={"macmini": Link.RELAY})
    d.step(relayed)
    d.step(idle, after=1.0)  # no information: the streak stays at 1
    r = d.step(relayed, after=1.0)
    assert kinds(r.events) == [("link_relayed", "macmini", None)]
    assert r.events[0].message.startswith("there is no direct path")  # never seen direct


def test_peer_relay_counts_as_off_derp() -> None:
    d = Driver()
    settled(d)
    relayed = sweep(links={"macmini": Link.RELAY})
    d.step(relayed)
    d.step(relayed, after=1.0)
    r = d.step(sweep(links={"macmini": Link.PEER_RELAY}))
    assert kinds(r.events) == [("link_direct", "macmini", None)]
    assert r.events[0].title == "Mac mini — Backend Server: off the DERP relay"
    r = d.step(sweep(links={"macmini": Link.PEER_RELAY}))
    assert r.events == ()


# ==== peers ====================================================================


def test_always_on_peer_offline_one_critical_event_services_folded() -> None:
    d = Driver()
    settled(d)
    r = d.step(MACMINI_OFFLINE)
    assert r.events == () and r.recheck_after_s == RECHECK_S
    r = d.step(MACMINI_OFFLINE, after=1.0)
    assert kinds(r.events) == [
        ("peer_offline", "macmini", None),
        ("service_down", "macmini", "FastAPI"),
        ("service_down", "macmini", "PostgreSQL"),
        ("service_down", "macmini", "Redis"),
    ]
    peer, *downs = r.events
    assert peer.critical and peer.announce
    assert peer.title == "Mac mini — Backend Server offline"
    assert peer.message == (
        "Tailscale reports woosuns-mac-mini offline and none of its services answer "
        "(run `tailscale up` on it)"
    )
    assert all(e.folded and not e.announce for e in downs)
    assert [e for e in r.events if e.announce] == [peer]
    # Back online with everything up: one announced event, the services' ups recorded.
    assert d.hold(MACMINI_OFFLINE, 600.0) == []
    r = d.step(UP)
    assert kinds(r.events)[0] == ("peer_online", "macmini", None)
    online, *ups = r.events
    assert online.announce and not online.critical and online.still_down == ()
    assert online.title == "Mac mini — Backend Server online"
    assert online.message == "woosuns-mac-mini is back online (after 10 min offline)"
    assert online.duration_s == pytest.approx(611.0)
    assert [e.kind for e in ups] == [EventKind.SERVICE_UP] * 3
    assert not any(e.announce for e in ups)


def test_peer_back_online_names_services_still_down() -> None:
    d = Driver()
    settled(d)
    d.step(MACMINI_OFFLINE)
    d.step(MACMINI_OFFLINE, after=1.0)
    r = d.step(sweep(services={"FastAPI": "down", "Redis": "down"}))
    assert kinds(r.events) == [
        ("peer_online", "macmini", None),
        ("service_up", "macmini", "PostgreSQL"),
    ]
    online = r.events[0]
    assert online.still_down == ("FastAPI", "Redis")
    assert online.critical and online.announce
    assert online.title == "Mac mini — Backend Server online — FastAPI, Redis still down"
    assert d.state.services[("macmini", "FastAPI")].announced
    r = d.step(sweep(services={"Redis": "down"}))
    assert kinds(r.events) == [("service_up", "macmini", "FastAPI")]
    assert r.events[0].announce  # the user heard it was down: the recovery is news


def test_services_fail_before_tailscale_notices_the_peer_is_offline() -> None:
    d = Driver()
    settled(d)
    timeouts = sweep(services={"FastAPI": "timeout", "PostgreSQL": "timeout", "Redis": "timeout"})
    d.step(timeouts)
    r = d.step(timeouts, after=1.0)  # the backend's downs are heard at once
    assert [e.kind for e in r.events] == [EventKind.SERVICE_DOWN] * 3
    assert all(e.announce for e in r.events)
    assert r.events[0].message == (
        "FastAPI on woosuns-mac-mini did not answer in time (firewall or host unreachable?)"
    )
    assert d.hold(timeouts, 120.0) == []
    d.step(MACMINI_OFFLINE)
    r = d.step(MACMINI_OFFLINE, after=1.0)
    assert kinds(r.events) == [("peer_offline", "macmini", None)]
    r = d.step(UP)
    assert kinds(r.events)[0] == ("peer_online", "macmini", None)
    assert all(e.announce for e in r.events)  # the ups of announced downs are news


def test_peer_that_tailscale_calls_offline_but_answers_is_online() -> None:
    d = Driver()
    settled(d)
    lagging = sweep(links={"macmini": Link.OFFLINE},
                    services={"FastAPI": "up", "PostgreSQL": "up", "Redis": "up"})  # fmt: skip
    for _ in range(5):
        assert d.step(lagging).events == ()
    assert d.state.peers["macmini"].confirmed is Verdict.GOOD


def test_peer_unknown_to_tailscale_says_nothing_about_the_peer() -> None:
    d = Driver()
    settled(d)
    missing = sweep(links={"macmini": Link.UNKNOWN}, services={"FastAPI": "unknown",
                    "PostgreSQL": "unknown", "Redis": "unknown"})  # fmt: skip
    for _ in range(5):
        r = d.step(missing)
        assert r.events == () and r.recheck_after_s is None


def test_laptop_offline_is_recorded_not_announced() -> None:
    d = Driver()
    settled(d)
    closed = sweep(links={"laptop": Link.OFFLINE})
    d.step(closed)
    r = d.step(closed, after=1.0)
    assert kinds(r.events) == [
        ("peer_offline", "laptop", None),
        ("service_down", "laptop", "Next.js"),
        ("service_down", "laptop", "Vite"),
    ]
    assert not any(e.announce or e.critical for e in r.events)
    assert r.events[0].message == "desktop-ecmkau8 is offline (it is not an always-on node)"
    r = d.step(UP, after=3600.0 * 8)  # the lid opens in the morning (a long gap: grace)
    assert r.in_grace and r.events == ()
    for _ in range(3):
        r = d.step(UP)
    assert kinds(r.events)[0] == ("peer_online", "laptop", None)
    assert not any(e.announce for e in r.events)


def test_laptop_back_with_a_degraded_service_down_is_announced() -> None:
    d = Driver()
    settled(d)
    closed = sweep(links={"laptop": Link.OFFLINE})
    d.step(closed)
    d.step(closed, after=1.0)
    r = d.step(sweep(services={"Vite": "down", "Next.js": "down"}))
    (online,) = r.events
    assert online.still_down == ("Vite",)  # Next.js is info: never news
    assert online.announce and not online.critical


def test_info_service_is_recorded_not_announced() -> None:
    d = Driver()
    settled(d)
    d.step(sweep(services={"Next.js": "down"}))
    r = d.step(sweep(services={"Next.js": "down"}), after=1.0)
    assert kinds(r.events) == [("service_down", "laptop", "Next.js")]
    assert not r.events[0].announce and not r.events[0].critical
    r = d.step(UP)
    assert kinds(r.events) == [("service_up", "laptop", "Next.js")]
    assert not r.events[0].announce


# ==== topology =================================================================


def test_topology_error_and_fix_are_announced_at_once() -> None:
    d = Driver()
    settled(d)
    err = "topology.toml:12: nodes.services.port: 70000 is not a port (1-65535)"
    r = d.step(UP, topology_error=err)
    assert kinds(r.events) == [("topology_error", None, None)]
    (event,) = r.events
    assert event.announce and not event.critical
    assert event.title == "Topology file refused"
    assert event.message.startswith(err)
    assert d.step(UP, topology_error=err).events == ()  # the same error: once
    err2 = "topology.toml:3: nodes.id: duplicate id 'macmini'"
    r = d.step(UP, topology_error=err2)  # a new mistake is news
    assert kinds(r.events) == [("topology_error", None, None)]
    r = d.step(UP)
    assert kinds(r.events) == [("topology_fixed", None, None)]
    assert r.events[0].message == "topology.toml is valid again; watching 3 nodes"
    assert d.step(UP).events == ()


def test_topology_error_at_start_up_is_announced_even_in_grace() -> None:
    d = Driver()
    r = d.step(UP, topology_error="topology.toml: not TOML")
    assert kinds(r.events) == [("topology_error", None, None)]
    r = d.step(UP, after=1000.0, topology_error="topology.toml: still bad")
    assert r.in_grace and kinds(r.events) == [("topology_error", None, None)]


def test_subjects_added_and_removed_on_reload() -> None:
    d = Driver()
    settled(d)
    d.step(FASTAPI_DOWN)
    d.step(FASTAPI_DOWN, after=1.0)  # confirmed and announced
    # Reload: FastAPI and the laptop are gone, a new MinIO service appears (down).
    minio = replace(REDIS, name="MinIO", port=9000)
    macmini = replace(MACMINI, services=(MACMINI.services[1], REDIS, minio))
    topo = Topology("Sparklio", (TOPOLOGY.nodes[0], macmini))
    r = d.step(sweep(topology=topo, services={"MinIO": "down"}))
    # no "FastAPI up", no "laptop offline": FastAPI's down record is closed, quietly
    assert kinds(r.events) == [("service_retired", "macmini", "FastAPI")]
    assert not r.events[0].announce
    assert r.events[0].title == "macmini: FastAPI removed from the topology"
    assert ("macmini", "FastAPI") not in d.state.services
    assert "laptop" not in d.state.peers and "laptop" not in d.state.links
    assert d.state.services[("macmini", "MinIO")].confirmed is Verdict.UNKNOWN
    r = d.step(sweep(topology=topo, services={"MinIO": "down"}), after=1.0)
    assert kinds(r.events) == [("service_down", "macmini", "MinIO")]
    r = d.step(sweep(topology=topo))
    assert kinds(r.events) == [("service_up", "macmini", "MinIO")]
    # The old topology again: FastAPI starts UNKNOWN, so its up is silent; MinIO is dropped.
    r = d.step(UP)
    assert r.events == ()
    assert d.state.services[("macmini", "FastAPI")] == Track(Verdict.GOOD, since=d.wall)
    assert ("macmini", "MinIO") not in d.state.services


def test_changed_thresholds_apply_from_the_next_sweep() -> None:
    d = Driver()
    settled(d)
    topo = with_defaults(failure_threshold=4)
    for _ in range(3):
        assert d.step(sweep(topology=topo, services={"FastAPI": "down"}), after=1.0).events == ()
    r = d.step(sweep(topology=topo, services={"FastAPI": "down"}), after=1.0)
    assert kinds(r.events) == [("service_down", "macmini", "FastAPI")]


def test_state_is_not_mutated() -> None:
    state = initial_state()
    first = step(state, FASTAPI_DOWN, 100.0, 10.0)
    assert state == initial_state()
    again = step(first.state, FASTAPI_DOWN, 101.0, 11.0)
    replay = step(first.state, FASTAPI_DOWN, 101.0, 11.0)
    assert again == replay
    assert first.state.services[("macmini", "FastAPI")].streak == 1


# ==== properties ===============================================================

_WORDS = ["up", "up", "down", "down", "timeout", "unknown", "skipped"]
_LINKS = [Link.DIRECT, Link.RELAY, Link.PEER_RELAY, Link.IDLE, Link.OFFLINE, Link.UNKNOWN]

_step_spec = st.tuples(
    st.sampled_from(_LINKS),
    st.sampled_from(_WORDS),  # FastAPI
    st.sampled_from(_WORDS),  # Redis
    st.sampled_from([1.0] * 4 + [10.0] * 7 + [300.0]),  # a recheck, the interval, a sleep
    st.booleans(),  # network changed (drawn rarely below)
)


def _reading(family: str, link: Link, words: dict[str, str]) -> Verdict | None:
    """The rules of the brief, restated independently of the implementation."""
    up = any(w == "up" for w in words.values())
    if family == "peer":
        if link is Link.OFFLINE and not up:
            return Verdict.BAD
        if up or link not in (Link.OFFLINE, Link.UNKNOWN):
            return Verdict.GOOD
        return None
    if family == "link":
        return {Link.RELAY: Verdict.BAD, Link.DIRECT: Verdict.GOOD,
                Link.PEER_RELAY: Verdict.GOOD}.get(link)  # fmt: skip
    word = words[family]
    return {"up": Verdict.GOOD, "down": Verdict.BAD, "timeout": Verdict.BAD}.get(word)


@settings(deadline=None)
@given(
    steps=st.lists(_step_spec, min_size=1, max_size=40),
    failure=st.integers(1, 4),
    success=st.integers(1, 4),
    network_odds=st.integers(0, 10),
)
def test_events_alternate_and_each_follows_its_threshold_of_readings(
    steps: list[tuple[Link, str, str, float, bool]],
    failure: int,
    success: int,
    network_odds: int,
) -> None:
    topo = with_defaults(failure_threshold=failure, success_threshold=success)
    d = Driver()
    counted: dict[tuple[str, str], list[Verdict]] = {}  # readings that counted, per subject
    last_kind: dict[tuple[str, str], EventKind] = {}
    for i, (link, fastapi, redis, after, changed) in enumerate(steps):
        network_changed = changed and network_odds > 7 and i % 3 == 0
        words = {"FastAPI": fastapi, "Redis": redis, "PostgreSQL": "unknown"}
        snap = sweep(topology=topo, links={"macmini": link}, services=words)
        r = d.step(snap, after=after, network_changed=network_changed)
        for family in ("peer", "link", "FastAPI", "Redis"):
            reading = _reading(family, link, words)
            key = (family, "macmini")
            if r.in_grace:
                counted.setdefault(key, []).append(Verdict.UNKNOWN)  # a break in any streak
            elif reading is not None:
                counted.setdefault(key, []).append(reading)
        for event in r.events:
            family = event.service or event.kind.family
            key = (family, event.node_id or "")
            assert key[1] == "macmini"
            # alternation: the first event of a subject is bad, then good, bad, ...
            previous = last_kind.get(key)
            assert event.bad == (previous is None or not previous.bad), (previous, event.kind)
            last_kind[key] = event.kind
            # threshold: the last N counted readings all point the event's way
            want = Verdict.BAD if event.bad else Verdict.GOOD
            n = failure if event.bad else success
            history = counted.get(key, [])
            assert len(history) >= n
            assert history[-n:] == [want] * n, (event.kind, history)
        assert r.recheck_after_s is None or r.recheck_after_s >= RECHECK_S


@settings(deadline=None)
@given(words=st.lists(st.sampled_from(["up", "down"]), min_size=2, max_size=30))
def test_threshold_two_never_alarms_on_isolated_failures(words: list[str]) -> None:
    d = Driver()
    d.step(UP)
    isolated = all(not (a == b == "down") for a, b in itertools.pairwise(words))
    for word in words:
        d.step(sweep(services={"FastAPI": word}), after=1.0)
    fastapi_events = [e for e in d.log if e.service == "FastAPI"]
    if isolated:
        assert fastapi_events == []
    else:
        assert fastapi_events and fastapi_events[0].kind is EventKind.SERVICE_DOWN


def test_readings_of_a_skipped_service_state_do_not_confirm() -> None:
    d = Driver()
    for _ in range(5):
        r = d.step(sweep(services={"FastAPI": "skipped"}))
        assert r.events == ()
    assert d.state.services[("macmini", "FastAPI")] == Track()


# ==== restarts: carried forward from the history ===============================


def rec(
    kind: EventKind,
    node: str | None = None,
    service: str | None = None,
    at: float = 100.0,
    announced: bool = True,
    still: tuple[str, ...] = (),
) -> Recorded:
    return Recorded(kind, node, service, at, announced, still)  # fmt: skip


def test_a_problem_recorded_before_a_restart_is_not_announced_again() -> None:
    carried = carried_state(
        [
            rec(EventKind.SERVICE_DOWN, "macmini", "FastAPI", at=50.0),
            rec(EventKind.SERVICE_DOWN, "macmini", "Redis", at=60.0),
            rec(EventKind.SERVICE_UP, "macmini", "Redis", at=70.0),  # it came back
            rec(EventKind.LINK_RELAYED, "desktop", at=80.0),
        ]
    )
    assert carried.services == {("macmini", "FastAPI"): Track(Verdict.BAD, since=50.0,
                                                              announced=True)}  # fmt: skip
    assert carried.links["desktop"].confirmed is Verdict.BAD
    assert announced_subjects(carried) == {("service", "macmini", "FastAPI"),
                                           ("link", "desktop", "")}  # fmt: skip
    d = Driver(state=carried)
    picture = sweep(links={"desktop": Link.RELAY}, services={"FastAPI": "down"})
    assert d.step(picture).events == ()
    assert d.step(picture, after=1.0).events == ()  # still down, still relayed: nothing new
    r = d.step(sweep(links={"desktop": Link.RELAY}))
    assert kinds(r.events) == [("service_up", "macmini", "FastAPI")]
    assert r.events[0].announce  # the user was told it was down


def test_a_problem_that_began_while_the_agent_was_stopped_is_announced() -> None:
    d = Driver(state=carried_state([rec(EventKind.SERVICE_DOWN, "macmini", "FastAPI")]))
    redis = sweep(services={"FastAPI": "down", "Redis": "down"})
    d.step(redis)
    r = d.step(redis, after=1.0)
    assert kinds(r.events) == [("service_down", "macmini", "Redis")]
    assert r.events[0].announce


def test_carried_states_keep_their_announced_flags_and_still_down_counts_as_told() -> None:
    carried = carried_state(
        [
            rec(EventKind.SERVICE_DOWN, "laptop", "Next.js", announced=False),
            rec(EventKind.SERVICE_DOWN, "macmini", "Redis", at=10.0, announced=False),
            rec(EventKind.PEER_ONLINE, "macmini", at=20.0, still=("Redis",)),
            rec(EventKind.TAILSCALE_STOPPED),
            rec(EventKind.PEER_OFFLINE, "laptop", announced=False),
        ]
    )
    assert not carried.services[("laptop", "Next.js")].announced
    assert carried.services[("macmini", "Redis")].announced
    assert "macmini" not in carried.peers and carried.peers["laptop"].confirmed is Verdict.BAD
    assert announced_subjects(carried) == {("service", "macmini", "Redis"),
                                           ("tailscale", "", "")}  # fmt: skip


def test_a_carried_problem_that_left_the_topology_is_retired() -> None:
    gone = carried_state(
        [
            rec(EventKind.SERVICE_DOWN, "macmini", "Old"),
            rec(EventKind.PEER_OFFLINE, "nas"),
            rec(EventKind.LINK_RELAYED, "nas"),
        ]
    )
    d = Driver(state=gone)
    r = d.step(UP)
    assert kinds(r.events) == [
        ("peer_retired", "nas", None),
        ("link_retired", "nas", None),
        ("service_retired", "macmini", "Old"),
    ]
    assert not any(e.announce for e in r.events)
    assert d.step(UP).events == ()  # once
