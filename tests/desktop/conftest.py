"""Fixtures for the real-desktop tests: a private X server, session bus, tray host, notifications.

Session-scoped (started once, in about half a second, stopped by PID at the end):
    desktop_env    DesktopEnv: Xvfb (-displayfd) + a private `dbus-daemon --session`
    notifications  NotificationLog of the capture server owning org.freedesktop.Notifications
    tray_host      the trayer strip's Region (XEmbed tray, _NET_SYSTEM_TRAY_S0 owned)
Per test:
    notification_log  the same log, marked: records() shows only this test's calls
    session_bus       the process env points DBUS_SESSION_BUS_ADDRESS at the private bus
    screenshots       a folder kept by pytest (tmp_path) for the test's screenshots

Linux only (the modules are not even collected elsewhere). On Linux a missing tool FAILS the
test with the apt line; nothing skips.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.helpers.desktop import (
    DesktopEnv,
    DesktopError,
    NotificationLog,
    Region,
    start_desktop,
    unix_sockets_allowed,
)

T = TypeVar("T")

if not sys.platform.startswith("linux"):
    collect_ignore_glob = ["test_*.py"]


def _started(what: str, start: Callable[[], T]) -> T:
    try:
        return start()
    except DesktopError as exc:
        pytest.fail(f"{what}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def desktop_env() -> Iterator[DesktopEnv]:
    desk = _started("private desktop", start_desktop)
    try:
        yield desk
    finally:
        desk.close()


@pytest.fixture(scope="session")
def notifications(desktop_env: DesktopEnv) -> NotificationLog:
    return _started("notification capture server", desktop_env.start_notification_server)


@pytest.fixture(scope="session")
def tray_host(desktop_env: DesktopEnv, notifications: NotificationLog) -> Region:
    # pystray's gtk/appindicator backends call the notification server on stop(): run it first.
    return _started("tray host (trayer)", desktop_env.start_tray_host)


@pytest.fixture(autouse=True)
def _unix_sockets() -> Iterator[None]:
    """D-Bus and X11 are Unix sockets; pytest-socket still guards every internet address."""
    with unix_sockets_allowed():
        yield


@pytest.fixture
def notification_log(notifications: NotificationLog) -> NotificationLog:
    notifications.mark()
    return notifications


@pytest.fixture
def session_bus(desktop_env: DesktopEnv, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop_env.bus_address)
    return desktop_env.bus_address


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder
