"""A D-Bus notification server that answers after the notifier stopped waiting (a busy shell):
the notification was shown, so nothing may say "not delivered" or "NOT shown", and its late
answer still names the notification a recovery replaces. The real capture server
(tests/helpers/notification_server.py) on a second session bus of the suite's private
desktop, told to answer each Notify 1.5 s after recording it; the notifier waits 0.5 s."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from agent.core.notify_policy import Notification
from agent.desktop.notify import DbusNotifier
from agent.edges.notify_outbox import NotifierOutbox
from tests.helpers.desktop import DesktopEnv, NotificationLog, wait_for

pytestmark = pytest.mark.linux_desktop

ANSWER_AFTER_S, PATIENCE_S = 1.5, 0.5


@pytest.fixture(scope="module")
def slow_bus(desktop_env: DesktopEnv) -> str:
    return desktop_env.start_session_bus(name="dbus-daemon-slow-answers")


@pytest.fixture(scope="module")
def slow_server(desktop_env: DesktopEnv, slow_bus: str) -> NotificationLog:
    return desktop_env.start_notification_server(
        bus_address=slow_bus, answer_after_s=ANSWER_AFTER_S, name="notification-server-slow"
    )


@pytest.fixture
def notifier(slow_bus: str, slow_server: NotificationLog) -> Iterator[DbusNotifier]:
    slow_server.mark()
    made = DbusNotifier(bus_address=slow_bus, timeout_s=PATIENCE_S)
    yield made
    made.close()


def test_a_late_answer_is_no_failure_and_the_recovery_replaces_the_alarm(
    notifier: DbusNotifier, slow_server: NotificationLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.desktop.notify")
    assert notifier.notify("FastAPI down", "refused", critical=True, key="alarm")
    assert "no answer yet from the notification server (dbus) after 0.5 s" in caplog.text
    down = slow_server.wait_for(lambda r: r["summary"] == "FastAPI down")  # it was shown
    wait_for(lambda: "shown late" in caplog.text, timeout=30, message=caplog.text)
    assert f"notification {down['id']} shown late (dbus)" in caplog.text
    assert notifier.notify("FastAPI up", "back", key="recovery", replaces=("alarm",))
    up = slow_server.wait_for(lambda r: r["summary"] == "FastAPI up")
    assert up["replaces_id"] == down["id"] != 0  # replaced on screen, not a second one
    wait_for(lambda: caplog.text.count("shown late") == 2, timeout=30, message=caplog.text)
    assert "not delivered" not in caplog.text


def test_a_recovery_sent_before_the_alarms_late_answer_still_replaces_the_alarm(
    notifier: DbusNotifier, slow_server: NotificationLog, caplog: pytest.LogCaptureFixture
) -> None:
    """The alarm's id is not known yet when the recovery goes out: the recovery waits for it
    on the notifier's loop, then replaces the alarm in place (no second notification)."""
    caplog.set_level(logging.DEBUG, logger="agent.desktop.notify")
    assert notifier.notify("FastAPI down", "refused", critical=True, key="alarm")
    assert "shown late" not in caplog.text  # its answer is 1.5 s away: the id is unknown
    assert notifier.notify("FastAPI up", "back", key="recovery", replaces=("alarm",))
    down = slow_server.wait_for(lambda r: r["summary"] == "FastAPI down")
    up = slow_server.wait_for(lambda r: r["summary"] == "FastAPI up")
    assert up["replaces_id"] == down["id"] != 0
    wait_for(lambda: caplog.text.count("shown late") == 2, timeout=30, message=caplog.text)
    assert "not delivered" not in caplog.text
    # the alarm's id went to the recovery: a later `replaces` of it has nothing left to close
    assert notifier.notify("FastAPI up again", "", key="third", replaces=("alarm",))
    third = slow_server.wait_for(lambda r: r["summary"] == "FastAPI up again")
    assert third["replaces_id"] == 0


def test_the_monitor_does_not_log_a_late_one_as_not_shown(
    notifier: DbusNotifier, slow_server: NotificationLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the monitor's own outbox (agent.edges.notify_outbox), as the agent runs it."""
    caplog.set_level(logging.INFO)
    outbox = NotifierOutbox(notifier)
    note = Notification("Backend offline", "FastAPI: refused", True, (), key="k1")
    asyncio.run(outbox.deliver([note]))
    slow_server.wait_for(lambda r: r["summary"] == "Backend offline")
    wait_for(lambda: "shown late" in caplog.text, timeout=30, message=caplog.text)
    outbox.close()
    assert "NOT shown" not in caplog.text and "not delivered" not in caplog.text


def test_an_answer_in_time_is_no_late_one(
    desktop_env: DesktopEnv, notification_log: NotificationLog, caplog: pytest.LogCaptureFixture
) -> None:
    """The control: the suite's ordinary capture server answers at once."""
    caplog.set_level(logging.DEBUG, logger="agent.desktop.notify")
    quick = DbusNotifier(bus_address=desktop_env.bus_address, timeout_s=PATIENCE_S)
    try:
        assert quick.notify("FastAPI down", "refused", key="alarm")
        notification_log.wait_for(lambda r: r["summary"] == "FastAPI down")
    finally:
        quick.close()
    assert "no answer yet" not in caplog.text and "shown late" not in caplog.text
