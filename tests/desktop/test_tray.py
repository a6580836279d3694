"""A real pystray icon (gtk and appindicator backends) docks in a real tray and changes colour.

The icon runs in a subprocess (tests/helpers/pystray_child.py) with the private desktop's
environment, as the agent will; the test reads the X screen's pixels in trayer's strip.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.model import Health
from tests.helpers.desktop import (
    DesktopEnv,
    DesktopError,
    NotificationLog,
    Region,
    find_named_colour,
    read_line,
    require_pystray_backend,
    wait_for,
)

pytestmark = pytest.mark.linux_desktop

MIN_PIXELS = 200  # the host rescales the 64 px icon to about 30 px: ~300-375 disc pixels
# "Gone" is zero pixels, except for grey: the anti-aliased rim of any icon, blended with the
# tray's background, reads as grey for a few dozen pixels.
_GONE = {Health.GREEN: 0, Health.AMBER: 0, Health.RED: 0, Health.GREY: MIN_PIXELS // 4}


class TrayChild:
    """The pystray child process and its stdin/stdout protocol."""

    def __init__(self, desk: DesktopEnv, backend: str) -> None:
        self.desk = desk
        self.name = f"pystray-{backend}"
        self.proc = desk.spawn(
            [sys.executable, "-m", "tests.helpers.pystray_child"],
            name=self.name,
            extra_env={"PYSTRAY_BACKEND": backend},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def read(self, timeout: float = 15.0) -> str:
        assert self.proc.stdout is not None
        try:
            return read_line(self.proc.stdout, timeout, self.name)
        except Exception as exc:
            raise AssertionError(f"{exc}\n{self.desk.log_tail(self.name)}") from exc

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()


@pytest.fixture(params=["gtk", "appindicator"])
def tray_child(
    request: pytest.FixtureRequest, desktop_env: DesktopEnv, tray_host: Region
) -> Iterator[TrayChild]:
    try:
        require_pystray_backend(request.param)
    except DesktopError as exc:
        pytest.fail(str(exc), pytrace=False)
    child = TrayChild(desktop_env, request.param)
    try:
        yield child
    finally:
        desktop_env.stop(child.proc)
        # The next test must not see this icon: wait until the strip is empty again.
        wait_for(
            lambda: all(_count(desktop_env, tray_host, h) <= _GONE[h] for h in Health),
            timeout=15,
            message="an icon stayed in the tray after its process ended",
        )


def _count(desk: DesktopEnv, region: Region, health: Health) -> int:
    return find_named_colour(desk.screenshot(), health.value, region)[0]


def _shows(desk: DesktopEnv, region: Region, health: Health, gone: Health) -> bool:
    shot = desk.screenshot()
    now = find_named_colour(shot, health.value, region)[0]
    old = find_named_colour(shot, gone.value, region)[0]
    return now >= MIN_PIXELS and old <= _GONE[gone]


def test_icon_docks_and_switches_green_to_red(
    tray_child: TrayChild, desktop_env: DesktopEnv, tray_host: Region, screenshots: Path
) -> None:
    desk = desktop_env
    assert tray_child.read().startswith("visible ")

    wait_for(
        lambda: _count(desk, tray_host, Health.GREEN) >= MIN_PIXELS,
        timeout=15,
        message=f"green icon never appeared in the tray strip {tray_host}",
    )
    green_shot = desk.save_screenshot(screenshots / "tray-green.png", tray_host)
    count, bbox = find_named_colour(desk.screenshot(), Health.GREEN.value, tray_host)
    assert bbox is not None and bbox[2] - bbox[0] <= 40 and bbox[3] - bbox[1] <= 40, bbox
    assert _count(desk, tray_host, Health.RED) == 0

    tray_child.send("red")
    assert tray_child.read() == "icon red"
    wait_for(
        lambda: _shows(desk, tray_host, Health.RED, gone=Health.GREEN),
        timeout=15,
        message="the icon did not turn red (or green stayed)",
    )
    red_shot = desk.save_screenshot(screenshots / "tray-red.png", tray_host)
    print(f"screenshots: {green_shot} {red_shot} (green {count} px)")

    tray_child.send("quit")
    assert tray_child.read() == "bye"
    assert tray_child.proc.wait(15) == 0


def test_every_state_shows_its_own_colour(
    tray_child: TrayChild, desktop_env: DesktopEnv, tray_host: Region, screenshots: Path
) -> None:
    desk = desktop_env
    assert tray_child.read().startswith("visible ")
    previous = Health.GREEN
    wait_for(lambda: _count(desk, tray_host, previous) >= MIN_PIXELS, timeout=15)
    for health in (Health.AMBER, Health.RED, Health.GREY, Health.GREEN):
        tray_child.send(health.value)
        assert tray_child.read() == f"icon {health.value}"
        wait_for(
            lambda h=health, p=previous: _shows(desk, tray_host, h, gone=p),  # type: ignore[misc]
            timeout=15,
            message=f"{previous.value} -> {health.value} not shown",
        )
        desk.save_screenshot(screenshots / f"tray-{health.value}.png", tray_host)
        previous = health
    tray_child.send("quit")
    assert tray_child.proc.wait(15) == 0


def test_pystray_notify_reaches_the_notification_server(
    tray_child: TrayChild, notification_log: NotificationLog
) -> None:
    assert tray_child.read().startswith("visible ")
    tray_child.send("notify Backend offline|FastAPI: connection refused")
    assert tray_child.read() == "notified"
    record = notification_log.wait_for(lambda r: r["summary"] == "Backend offline")
    assert record["body"] == "FastAPI: connection refused"
    tray_child.send("quit")
    assert tray_child.proc.wait(15) == 0
