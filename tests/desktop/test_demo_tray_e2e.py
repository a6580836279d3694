"""End to end: the installed `tailnet-agent demo` in a real tray, the whole walk.

On the private desktop (Xvfb, trayer, a private session bus with the notification capture
server) the demo's agent docks its icon; the test follows the walk by what a person sees: the
icon's colour read from the strip's pixels, the tooltip (the docked icon window's title) naming
the step, and the notifications the capture server received. At the red step it opens the menu
with a real right click, keeps a screenshot and — on appindicator, whose menu is exported over
D-Bus (com.canonical.dbusmenu) — reads the menu's first line. Quit from the menu ends it.

The demo takes a loopback block of its own (agent.demo.network: 127.84.N.0/24), so no other
program on this machine (another suite's demo or servers on 127.0.0.x) can take a stopped
stand-in's port and answer for it; the netguard records any address it tried.
With $TAILNET_AGENT_TEST_SHOTS set, the red step's screenshots are also copied there.
Every wait is on a state (a colour and a step's name together), never on time; speed 2 keeps
each step on screen for several seconds, longer than a right click takes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.core.menu import MARKS
from agent.core.model import Health
from agent.demo.walk import FINISHED_NAME
from tests.conftest import installed_agent
from tests.desktop.test_tray_real import MIN_PIXELS, _count, _open_menu
from tests.helpers.dbusmenu import read_menu
from tests.helpers.desktop import (
    DesktopEnv,
    NotificationLog,
    Region,
    find_named_colour,
    wait_for,
)

pytestmark = pytest.mark.linux_desktop

SPEED = "2"  # the red step stays about 10 s; the agent's confirmation comes out of that
STATE_TIMEOUT_S = 90  # a hang guard: the walk itself gives an expectation up after 60 s
WALK_COLOURS = (Health.GREEN, Health.AMBER, Health.RED)  # grey is near trayer's background
DESKTOP, MACMINI = "Desktop — GPU Worker", "Mac mini — Backend Server"
DERP = f"{DESKTOP}: relayed via DERP 'tok'"


def _tooltips(desk: DesktopEnv) -> list[str]:
    return [t for t in desk.window_titles() if t.startswith("tailnet-agent (")]


def _shows(desk: DesktopEnv, strip: Region, health: Health, step: str, log: str) -> tuple[int, int]:
    """Wait until the icon is `health`'s colour only and its tooltip names `step` (the demo
    topology's name, "Sparklio demo 4/7: FastAPI stops"); return the icon's centre."""

    def shown() -> tuple[int, int] | None:
        shot = desk.screenshot()
        count, box = find_named_colour(shot, health.value, strip)  # hue bands, not our palette
        others = [h for h in WALK_COLOURS if h is not health]
        alone = all(find_named_colour(shot, h.value, strip)[0] == 0 for h in others)
        named = any(f"tailnet-agent ({step}" in t for t in _tooltips(desk))
        if box is None or count < MIN_PIXELS or not alone or not named:
            return None
        return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2

    try:
        centre = wait_for(shown, STATE_TIMEOUT_S, interval=0.1)
    except TimeoutError:
        raise AssertionError(
            f"never {health.value} with the tooltip on {step!r}: {_tooltips(desk)}\n"
            f"{desk.log_tail(log)}"
        ) from None
    assert centre is not None
    return centre


def _announced(
    desk: DesktopEnv, log: NotificationLog, summary: str, *, critical: bool, name: str
) -> None:
    """Wait for the notification; if it never comes, say what did come and what the agent
    logged about its notifications (shown, NOT shown, held back), the evidence of why."""
    try:
        record = log.wait_for(lambda r: r["summary"] == summary, STATE_TIMEOUT_S)
    except TimeoutError:
        said = [line for line in desk.log_tail(name, 1_000_000).splitlines() if "notif" in line]
        raise AssertionError(
            f"no notification {summary!r}; received: {[r['summary'] for r in log.records()]}\n"
            + "\n".join(said[-30:])
        ) from None
    assert record["app_name"] == "tailnet-agent"
    assert record["hints"]["urgency"] == (2 if critical else 1), record


# Each step as it should show: the colour, the topology's name in the tooltip, and the
# notification it raises (summary, critical) — the order tests/demo/test_demo_e2e.py asserts.
RED_STEP = "Sparklio demo 4/7: FastAPI stops"
WALK: tuple[tuple[Health, str, tuple[str, bool] | None], ...] = (
    (Health.GREEN, "Sparklio demo 1/7: all green", None),
    (Health.AMBER, "Sparklio demo 2/7: desktop relayed", (DERP, False)),
    (Health.GREEN, "Sparklio demo 3/7: direct again", (f"{DESKTOP}: direct again", False)),
    (Health.RED, RED_STEP, (f"{MACMINI}: FastAPI down", True)),
    (Health.GREEN, "Sparklio demo 5/7: FastAPI returns", (f"{MACMINI}: FastAPI up", False)),
    (Health.RED, "Sparklio demo 6/7: Mac mini offline", (f"{MACMINI} offline", True)),
    (Health.GREEN, "Sparklio demo 7/7: Mac mini returns", (f"{MACMINI} online", False)),
    (Health.GREEN, FINISHED_NAME, None),
)  # fmt: skip


def _look_at_the_red_menu(
    desk: DesktopEnv, strip: Region, at: tuple[int, int], backend: str, pid: int, folder: Path
) -> None:
    """Open the menu with a real right click, keep screenshots, read what can be read."""
    shots = [desk.save_screenshot(folder / f"demo-red-step-icon-{backend}.png")]
    _open_menu(desk, strip, at)
    shots.append(desk.save_screenshot(folder / f"demo-red-step-menu-{backend}.png"))
    print(f"the red step's icon and menu ({backend}): {shots}")
    keep = os.environ.get("TAILNET_AGENT_TEST_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)
    tooltip = _tooltips(desk)
    print(f"tooltip: {tooltip}")
    assert [t for t in tooltip if f"tailnet-agent ({RED_STEP}): Mac mini: FastAPI down" in t]
    if backend == "appindicator":  # gtk's menu is pixels only
        lines = read_menu(desk.bus_address, pid).lines()
        print("menu:\n  " + "\n  ".join(lines))
        assert lines[0].startswith(f"{MARKS[Health.RED]} {RED_STEP}: Mac mini: FastAPI down"), lines
        assert f"{MARKS[Health.RED]} {MACMINI} · FastAPI down" in lines, lines
        assert lines[-1] == "Quit", lines
    desk.xdotool("key", "Escape")


@pytest.mark.parametrize("backend", ["gtk", "appindicator"])
def test_the_demo_walks_through_the_real_tray(
    backend: str,
    desktop_env: DesktopEnv,
    tray_host: Region,
    notification_log: NotificationLog,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    desk = desktop_env
    name = f"demo-tray-{backend}"
    agent = desk.spawn(
        [installed_agent(), "demo", "--speed", SPEED],
        name=name,
        extra_env={"PYSTRAY_BACKEND": backend, "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    try:
        at = (0, 0)
        for health, step, notification in WALK:
            at = _shows(desk, tray_host, health, step, name)
            if notification is not None:
                summary, critical = notification
                _announced(desk, notification_log, summary, critical=critical, name=name)
            if step == RED_STEP:
                _look_at_the_red_menu(desk, tray_host, at, backend, agent.pid, screenshots)
        summaries = [(r["summary"], r["body"]) for r in notification_log.records()]
        assert len(summaries) == 6, f"{summaries}\n{desk.log_tail(name, 20_000)}"

        _open_menu(desk, tray_host, at)  # the tray stays after the walk until Quit
        desk.xdotool("key", "Up", "Return")  # Quit, the last item
        assert agent.wait(15) == 0, desk.log_tail(name)
    finally:
        if agent.poll() is None:
            desk.stop(agent)
    wait_for(
        lambda: all(_count(desk, tray_host, h) == 0 for h in WALK_COLOURS),
        15,
        message="the icon stayed docked",
    )
    assert "WARNING agent.demo.walk" not in desk.log_tail(name, 1_000_000)
    assert desk.outside_connections() == []
