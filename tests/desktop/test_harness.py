"""The desktop harness itself: pixels, waits, missing tools, and that it leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.helpers.desktop import (
    DesktopEnv,
    DesktopError,
    Region,
    find_colour,
    require_tool,
    start_desktop,
    wait_for,
)

pytestmark = pytest.mark.linux_desktop


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def test_find_colour_counts_and_locates_within_a_region() -> None:
    image = Image.new("RGB", (200, 100), (220, 218, 213))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 20, 19, 29), fill=(46, 157, 74))  # 10x10 green at (10, 20)
    draw.rectangle((150, 50, 154, 54), fill=(50, 160, 70))  # 5x5 near-green outside the region

    assert find_colour(image, (46, 157, 74), 10) == (125, (10, 20, 155, 55))
    assert find_colour(image, (46, 157, 74), 10, region=(0, 0, 100, 100)) == (
        100,
        (10, 20, 20, 30),
    )
    assert find_colour(image, (46, 157, 74), 2, region=(100, 0, 200, 100)) == (0, None)
    assert find_colour(image, (217, 59, 59), 40) == (0, None)


def test_wait_for_returns_the_value_or_times_out() -> None:
    start = time.monotonic()
    assert wait_for(lambda: time.monotonic() - start > 0.05 and "done", timeout=5) == "done"
    with pytest.raises(TimeoutError, match="never"):
        wait_for(lambda: False, timeout=0.1, message="never")


def test_missing_tool_names_the_apt_package() -> None:
    with pytest.raises(DesktopError, match="apt-get install -y --no-install-recommends"):
        require_tool("surely-not-a-tool-tailnet-agent")
    assert require_tool("Xvfb").endswith("Xvfb")


def test_the_private_desktop_has_its_own_display_bus_and_home(desktop_env: DesktopEnv) -> None:
    env = desktop_env.env
    assert env["DISPLAY"] == desktop_env.display and desktop_env.display.startswith(":")
    assert env["DBUS_SESSION_BUS_ADDRESS"] == desktop_env.bus_address
    assert env["HOME"].startswith(str(desktop_env.root))
    assert env["XDG_RUNTIME_DIR"].startswith(str(desktop_env.root))
    assert env["NO_AT_BRIDGE"] == "1" and env["GDK_BACKEND"] == "x11"
    assert desktop_env.bus_address != os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    # The bus answers (dbus-send is part of the dbus package).
    subprocess.run(
        ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/",
         "org.freedesktop.DBus.GetId"],
        env=env, check=True, capture_output=True, timeout=10,
    )  # fmt: skip
    shot = desktop_env.screenshot()
    assert shot.size == (1024, 768)


def test_tray_host_owns_the_tray_selection(desktop_env: DesktopEnv, tray_host: Region) -> None:
    assert tray_host == (0, 0, 300, 32)
    assert desktop_env.tray_owner() != 0


def test_close_stops_every_child_by_pid_and_removes_the_root() -> None:
    desk = start_desktop()
    try:
        assert desk.tray_owner() == 0  # no tray host yet: python-xlib's int 0 is handled
        desk.start_tray_host()
        desk.start_notification_server()
        sleeper = desk.spawn(["sleep", "60"], name="sleeper")
        pids = [p.pid for _, p in desk._procs]
        assert len(pids) == 5  # Xvfb, dbus-daemon, trayer, capture server, sleeper
        assert all(_alive(pid) for pid in pids)
    finally:
        desk.close()
    assert sleeper.returncode is not None
    assert not any(_alive(pid) for pid in pids)
    assert not desk.root.exists()
