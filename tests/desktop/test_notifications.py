"""Each Linux notifier backend over a real private session bus, seen by a real capture server."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.core.ports import Notifier
from agent.desktop.icons import write_app_icon
from agent.desktop.notify import (
    DbusNotifier,
    DesktopNotifierBackend,
    LogNotifier,
    NotifierUnavailable,
    NotifySendNotifier,
    choose_notifier,
)
from tests.helpers.desktop import DesktopEnv, NotificationLog

pytestmark = pytest.mark.linux_desktop

MESSAGE = 'FastAPI on macmini: "connection refused" at C:\\tmp — 백엔드가 꺼졌습니다'


@pytest.fixture(scope="session")
def app_icon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_app_icon(tmp_path_factory.mktemp("icon") / "tailnet-agent.png")


@pytest.fixture(scope="session")
def empty_bus(desktop_env: DesktopEnv) -> str:
    """A second session bus on which no notification server runs."""
    return desktop_env.start_session_bus(name="dbus-daemon-empty")


def _close(notifier: object) -> None:
    close = getattr(notifier, "close", None)
    if close is not None:
        close()


Factory = Callable[[str, Path], Notifier]

FACTORIES: dict[str, Factory] = {
    "dbus": lambda bus, icon: DbusNotifier(app_icon=icon, bus_address=bus),
    "desktop-notifier": lambda _bus, icon: DesktopNotifierBackend(app_icon=icon),
    "notify-send": lambda _bus, icon: NotifySendNotifier(app_icon=icon),
}


@pytest.fixture
def make_notifier(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str, str, Path], Notifier]]:
    """Build a backend talking to `bus` (the env points there too, for libraries that read it)."""
    made: list[Notifier] = []

    def make(backend: str, bus: str, icon: Path) -> Notifier:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
        notifier = FACTORIES[backend](bus, icon)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        _close(notifier)


@pytest.mark.parametrize("critical", [False, True], ids=["normal", "critical"])
@pytest.mark.parametrize("backend", list(FACTORIES))
def test_backend_delivers_over_the_session_bus(
    backend: str,
    critical: bool,
    desktop_env: DesktopEnv,
    notification_log: NotificationLog,
    make_notifier: Callable[[str, str, Path], Notifier],
    app_icon: Path,
) -> None:
    notifier = make_notifier(backend, desktop_env.bus_address, app_icon)
    title = f"Backend \\offline\\n ({backend}, critical={critical})"

    assert notifier.notify(title, MESSAGE, critical=critical) is True

    record = notification_log.wait_for(lambda r: r["summary"] == title)
    assert record["body"] == MESSAGE
    assert record["app_name"] == "tailnet-agent"
    assert record["hints"]["urgency"] == (2 if critical else 1)
    # Critical stays until dismissed (0: never expire); an ordinary one expires (-1 is the
    # server's default timeout, > 0 ours).
    if critical:
        assert record["expire_timeout"] == 0
    else:
        assert record["expire_timeout"] == -1 or record["expire_timeout"] > 0
    icon_refs = {str(app_icon), app_icon.as_uri()}
    assert record["app_icon"] in icon_refs or record["hints"].get("image-path") in icon_refs


@pytest.mark.parametrize("backend", ["dbus", "desktop-notifier", "notify-send"])
def test_no_notification_server_is_false_and_logged(
    backend: str,
    empty_bus: str,
    make_notifier: Callable[[str, str, Path], Notifier],
    app_icon: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = make_notifier(backend, empty_bus, app_icon)
    with caplog.at_level(logging.WARNING, logger="agent.desktop.notify"):
        assert notifier.notify("Nobody listens", "no server on this bus") is False
    assert any(
        "not delivered" in r.getMessage() and "Nobody listens" in r.getMessage()
        for r in caplog.records
        if r.name == "agent.desktop.notify"
    )


def test_dbus_without_a_bus_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(NotifierUnavailable, match="no D-Bus session bus"):
        DbusNotifier(bus_address=f"unix:path={tmp_path / 'no-bus-here'}", timeout_s=3)


@pytest.mark.parametrize("backend", ["dbus", "desktop-notifier"])
def test_notify_works_from_inside_a_running_event_loop(
    backend: str,
    desktop_env: DesktopEnv,
    notification_log: NotificationLog,
    make_notifier: Callable[[str, str, Path], Notifier],
    app_icon: Path,
) -> None:
    # The monitor calls notify() from its asyncio thread: a blocking call must not need the
    # caller's loop (asyncio.run / run_until_complete would raise there).
    notifier = make_notifier(backend, desktop_env.bus_address, app_icon)
    title = f"from a loop ({backend})"

    async def monitor() -> bool:
        return notifier.notify(title, "sent while a loop runs")

    assert asyncio.run(monitor()) is True
    assert notification_log.wait_for(lambda r: r["summary"] == title)["body"] == (
        "sent while a loop runs"
    )


def test_choose_notifier_on_linux_is_dbus_and_delivers(
    session_bus: str, notification_log: NotificationLog, app_icon: Path
) -> None:
    notifier = choose_notifier("linux", frozen=False, app_icon=app_icon)
    try:
        assert notifier.name == "dbus"
        assert notifier.notify("chosen", "by choose_notifier", critical=True)
    finally:
        _close(notifier)
    record = notification_log.wait_for(lambda r: r["summary"] == "chosen")
    assert record["hints"]["urgency"] == 2
    assert record["app_icon"] == app_icon.as_uri()


def test_choose_notifier_without_a_bus_is_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No session bus (a server): every Linux backend needs one, notify-send and plyer too
    (notify-send would only fail, "Cannot autolaunch D-Bus without X11 $DISPLAY")."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="agent.desktop.notify"):
        notifier = choose_notifier("linux", frozen=False)
    assert isinstance(notifier, LogNotifier)
    assert "notifications go to the log only" in caplog.text

    # A bus address that leads nowhere: D-Bus cannot connect, notify-send is tried next.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'gone'}")
    assert choose_notifier("linux", frozen=False).name == "notify-send"

    # Nor notify-send nor dbus-python: only the log is left.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "dbus", None)  # `import dbus` raises ImportError
    last = choose_notifier("linux", frozen=False)
    assert isinstance(last, LogNotifier)


# ==== replacing what stays on screen ===========================================


@pytest.mark.parametrize("backend", ["dbus", "notify-send"])
def test_a_recovery_replaces_the_alarm_in_place(
    backend: str,
    desktop_env: DesktopEnv,
    notification_log: NotificationLog,
    make_notifier: Callable[[str, str, Path], Notifier],
    app_icon: Path,
) -> None:
    notifier = make_notifier(backend, desktop_env.bus_address, app_icon)
    down_title, up_title = f"FastAPI down ({backend})", f"FastAPI up ({backend})"
    assert notifier.notify(down_title, "refused", critical=True, key="n1")
    down = notification_log.wait_for(lambda r: r["summary"] == down_title)
    assert notifier.notify(up_title, "back", key="n2", replaces=("n1",))
    up = notification_log.wait_for(lambda r: r["summary"] == up_title)
    assert up["replaces_id"] == down["id"] != 0
    assert down["expire_timeout"] == 0  # the alarm stays until dismissed ...
    assert up["hints"]["urgency"] == 1  # ... the replacement is an ordinary one: it expires
    assert up["expire_timeout"] == -1 or up["expire_timeout"] > 0


def test_dbus_replaces_the_first_and_closes_the_other_alarms(
    desktop_env: DesktopEnv,
    notification_log: NotificationLog,
    make_notifier: Callable[[str, str, Path], Notifier],
    app_icon: Path,
) -> None:
    notifier = make_notifier("dbus", desktop_env.bus_address, app_icon)
    assert notifier.notify("FastAPI down", "refused", critical=True, key="a")
    assert notifier.notify("Tailscale stopped", "here", critical=True, key="b")
    first = notification_log.wait_for(lambda r: r["summary"] == "FastAPI down")
    second = notification_log.wait_for(lambda r: r["summary"] == "Tailscale stopped")
    # "c" was never shown by this notifier (e.g. before a restart): nothing to replace there.
    assert notifier.notify("2 recoveries", "all back", key="d", replaces=("c", "a", "b"))
    both = notification_log.wait_for(lambda r: r["summary"] == "2 recoveries")
    assert both["replaces_id"] == first["id"]
    closed = notification_log.wait_for(lambda r: r["id"] == second["id"], call="CloseNotification")
    assert closed["id"] != first["id"]
    # Once replaced, a key is gone: replacing it again makes a new notification.
    assert notifier.notify("again", "x", replaces=("a",))
    assert notification_log.wait_for(lambda r: r["summary"] == "again")["replaces_id"] == 0


def test_desktop_notifier_clears_the_alarm_it_replaces(
    desktop_env: DesktopEnv,
    notification_log: NotificationLog,
    make_notifier: Callable[[str, str, Path], Notifier],
    app_icon: Path,
) -> None:
    """desktop-notifier has no replaces_id: the old one is cleared (CloseNotification on Linux,
    removeDeliveredNotifications on macOS), then the recovery is shown."""
    notifier = make_notifier("desktop-notifier", desktop_env.bus_address, app_icon)
    assert notifier.notify("Mac mini offline", "tailscale up", critical=True, key="n1")
    alarm = notification_log.wait_for(lambda r: r["summary"] == "Mac mini offline")
    assert notifier.notify("Mac mini online", "back", key="n2", replaces=("n1",))
    notification_log.wait_for(lambda r: r["id"] == alarm["id"], call="CloseNotification")
    notification_log.wait_for(lambda r: r["summary"] == "Mac mini online")
