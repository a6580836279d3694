"""The wall clock jumping forward and back under a running Monitor (real sweeps, a real
backend), and the repeat limit across a clock set back.

The monitor schedules on the monotonic clock and reads the wall clock only for what it
shows and records, so a jump must not stall the sweeps (a wait computed on the wall clock
would last an hour after the clock went back) nor burst them; it is told as "Settling after
a clock change" with the icon keeping its confirmed colour and nothing announced, and an
outage after it is announced as usual.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.core.events import service_down_event, service_up_event
from agent.core.menu import TrayView, tooltip
from agent.core.model import Health, ProbeResult, ProbeState, Reason
from agent.core.notify_policy import RATE_LIMIT_S, decide, initial_policy
from tests.core.snapshots import MACMINI, REDIS
from tests.faults.running_monitor import monitor_over_loopback
from tests.faults.test_faults_notifier import icon, wait_sweeps

HOUR = 3600.0


@pytest.mark.parametrize("jump", [HOUR, -HOUR], ids=["forward", "back"])
def test_a_clock_jump_settles_keeps_sweeping_and_a_later_outage_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jump: float
) -> None:
    offset = [0.0]
    with monitor_over_loopback(tmp_path, monkeypatch, wall=lambda: time.time() + offset[0]) as (
        _,
        rec,
        backend,
    ):
        rec.wait(lambda u: u.snapshot is not None and icon(u) is Health.GREEN)
        offset[0] = jump  # NTP, or a person, sets the clock
        settling = rec.wait(lambda u: u.in_grace, timeout=10)
        assert "Settling after a clock change" in tooltip(TrayView(settling))
        wait_sweeps(rec, 3)  # on schedule through the jump
        with rec.lock:
            during = [u for u in rec.updates if u.in_grace]
        assert all(icon(u) is Health.GREEN for u in during)  # the confirmed colour
        assert rec.shown == []  # a clock change is no outage

        backend.stop()  # a real outage after the jump: told once the network has settled
        rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events), timeout=60)
        assert rec.shown == [("desktop: Ollama down", rec.shown[0][1], True)]
        down = rec.wait(lambda u: icon(u) is Health.RED, timeout=10)
        assert down.snapshot is not None
        # what is shown and recorded carries the wall clock in force
        assert abs(down.now - (time.time() + jump)) < 60


def test_a_clock_set_back_does_not_silence_a_flapping_service_for_an_hour() -> None:
    """The repeat limit counts on the monotonic clock: ten minutes of real time pass even
    when the wall clock was set back an hour in between."""
    refused = ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused")
    wall, mono = 1_800_000_000.0, 5_000.0
    state = initial_policy()
    decision = decide(
        state, [service_down_event(MACMINI, REDIS, refused, wall)], wall, now_mono=mono
    )
    assert [n.title for n in decision.notifications] == ["Mac mini — Backend Server: Redis down"]
    state = decision.state
    up = service_up_event(MACMINI, REDIS, wall + 60, down_for_s=60.0, announce=True)
    state = decide(state, [up], wall + 60, now_mono=mono + 60).state

    later_wall, later_mono = wall - HOUR + RATE_LIMIT_S + 1, mono + RATE_LIMIT_S + 1
    again = service_down_event(MACMINI, REDIS, refused, later_wall)
    decision = decide(state, [again], later_wall, now_mono=later_mono)
    assert [n.title for n in decision.notifications] == ["Mac mini — Backend Server: Redis down"]
    assert decision.held_back == ()
    # within the ten minutes, on the monotonic clock, it is held back whatever the wall says
    soon = decide(state, [again], wall + HOUR, now_mono=mono + 120)
    assert soon.notifications == () and "at most one per 10 min" in soon.held_back[0].why
