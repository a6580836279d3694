"""The icon's colour outside grace (core.shown, core.menu.status_health): confirmed for the
subjects the monitor confirms, the latest reading for what it does not confirm."""

from __future__ import annotations

from agent.core.menu import MonitorStatus, TrayView, overall_health, status_words
from agent.core.model import Health, ProbeResult, ProbeState, Snapshot
from agent.core.shown import shown_health
from tests.core.sample_network import ALL_DIRECT, MACMINI, REFUSED, judged, peer, running
from tests.core.snapshots import Driver

SLOW = ProbeResult(ProbeState.UP, None, "HTTP 200", 900.0)  # far over latency_warn_ms


def _shown(driver: Driver, snapshot: Snapshot) -> MonitorStatus:
    """Step `snapshot` through the confirmation (a 1 s re-check) and publish it as the
    monitor does."""
    driver.step(snapshot, after=1.0)
    health = shown_health(snapshot, driver.state)
    return MonitorStatus(snapshot, now=snapshot.at, health=health)


def _icon(status: MonitorStatus) -> Health:
    return overall_health(TrayView(status))


def _settled() -> Driver:
    driver = Driver()
    _shown(driver, judged(ALL_DIRECT))
    return driver


def test_a_single_failed_reading_of_a_critical_service_leaves_the_icon_green() -> None:
    driver = _settled()
    failed_once = judged(ALL_DIRECT, FastAPI=REFUSED)
    assert failed_once.overall is Health.RED  # the reading itself is red
    status = _shown(driver, failed_once)
    assert _icon(status) is Health.GREEN
    assert status_words(status).endswith("(re-checking)"), status_words(status)


def test_a_confirmed_failure_of_a_critical_service_turns_the_icon_red() -> None:
    driver = _settled()
    _shown(driver, judged(ALL_DIRECT, FastAPI=REFUSED))
    status = _shown(driver, judged(ALL_DIRECT, FastAPI=REFUSED))
    assert _icon(status) is Health.RED
    assert "re-checking" not in status_words(status)
    assert "FastAPI down" in status_words(status)


def test_a_blip_never_colours_and_a_degraded_service_confirms_amber() -> None:
    driver = _settled()
    seen = [
        _icon(_shown(driver, judged(ALL_DIRECT, FastAPI=REFUSED))),
        _icon(_shown(driver, judged(ALL_DIRECT))),
        _icon(_shown(driver, judged(ALL_DIRECT, Redis=REFUSED))),
        _icon(_shown(driver, judged(ALL_DIRECT, Redis=REFUSED))),
    ]
    assert seen == [Health.GREEN, Health.GREEN, Health.GREEN, Health.AMBER]


def test_a_first_failed_reading_after_a_confirmed_outage_keeps_the_red() -> None:
    driver = _settled()
    _shown(driver, judged(ALL_DIRECT, FastAPI=REFUSED))
    _shown(driver, judged(ALL_DIRECT, FastAPI=REFUSED))
    # one good reading confirms the recovery (success_threshold 1): green at once
    assert _icon(_shown(driver, judged(ALL_DIRECT))) is Health.GREEN


def test_what_the_monitor_does_not_confirm_colours_at_once() -> None:
    driver = _settled()
    slow = _shown(driver, judged(ALL_DIRECT, FastAPI=SLOW, Redis=SLOW))
    assert _icon(slow) is Health.AMBER  # latency over latency_warn_ms
    assert "re-checking" not in status_words(slow)
    driver = _settled()
    missing = _shown(driver, judged(running(peer(MACMINI))))  # the laptop is not in it
    assert _icon(missing) is Health.AMBER


def test_a_status_without_a_monitor_state_shows_the_reading() -> None:
    red = judged(ALL_DIRECT, FastAPI=REFUSED)
    assert _icon(MonitorStatus(red, now=red.at)) is Health.RED
