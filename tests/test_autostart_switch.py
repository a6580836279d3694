"""The tray's "Start at login" checkbox (agent.app.AutostartSwitch) over a real autostart file.

The switch reads the real XDG backend in a temp config folder: a toggle writes or removes the
.desktop file with the tray's own options, the checkbox follows, and a failure becomes a
notification instead of an exception. The real pystray menu (dummy backend) shows the item
checked, unchecked or greyed, and a click on it reaches the switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.app import AUTOSTART_REFRESH_S, AgentOptions, AutostartSwitch
from agent.core.menu import ActionKind, MenuAction, MonitorStatus, TrayView, build_menu
from agent.desktop.autostart import AutostartState, Unsupported, XdgAutostart, parse_desktop_exec
from agent.desktop.tray import to_pystray_menu
from agent.errors import AutostartError
from tests.conftest import installed_agent
from tests.test_tray_dummy import pystray_dummy  # noqa: F401  (the fixture)


class Notes:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        self.sent.append((title, message))
        return True


class Counting:
    """Wraps a backend and counts status reads (the disk/registry hits)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.reads = 0

    def status(self) -> AutostartState:
        self.reads += 1
        state: AutostartState = self.inner.status()
        return state

    def enable(self, command: Sequence[str]) -> AutostartState:
        state: AutostartState = self.inner.enable(command)
        return state

    def disable(self) -> AutostartState:
        state: AutostartState = self.inner.disable()
        return state


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_toggle_writes_and_removes_the_entry_and_the_checkbox_follows(tmp_path: Path) -> None:
    topology = tmp_path / "net.toml"
    xdg = XdgAutostart(tmp_path / "config")
    notes = Notes()
    switch = AutostartSwitch(AgentOptions(topology=str(topology), node="laptop"), notes, xdg)
    assert switch.checked() is False
    assert switch.toggle() is True
    exec_line = next(line for line in xdg.path.read_text().splitlines() if line.startswith("Exec="))
    assert parse_desktop_exec(exec_line.removeprefix("Exec=")) == [
        installed_agent(),
        "--topology",
        str(topology),
        "--node",
        "laptop",
    ]
    assert switch.checked() is True
    assert switch.toggle() is False
    assert not xdg.path.exists()
    assert switch.checked() is False
    assert notes.sent == []


def test_checkbox_reads_the_os_rarely(tmp_path: Path) -> None:
    clock = Clock()
    backend = Counting(XdgAutostart(tmp_path))
    switch = AutostartSwitch(AgentOptions(), Notes(), backend, clock=clock)
    for _ in range(100):  # every monitor update asks
        assert switch.checked() is False
    assert backend.reads == 1
    backend.inner.enable([installed_agent()])  # `tailnet-agent autostart enable` elsewhere
    clock.now += AUTOSTART_REFRESH_S - 1
    assert switch.checked() is False
    clock.now += 1
    assert switch.checked() is True  # seen within a minute
    assert backend.reads == 2


def test_a_failing_toggle_is_told_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the config folder should be")
    notes = Notes()
    switch = AutostartSwitch(AgentOptions(), notes, XdgAutostart(blocker))
    assert switch.toggle() is False
    assert len(notes.sent) == 1
    title, message = notes.sent[0]
    assert title == "Start at login failed"
    assert str(blocker) in message


def test_unsupported_is_greyed_and_a_click_is_told(tmp_path: Path) -> None:
    notes = Notes()
    switch = AutostartSwitch(AgentOptions(), notes, Unsupported("not on this system"))
    assert switch.checked() is None
    assert switch.toggle() is None
    assert notes.sent == [("Start at login failed", "not on this system")]


def _item(pystray: Any, menu: Any) -> Any:
    return next(item for item in menu if item.text.startswith("Start at login"))


def test_pystray_menu_shows_and_toggles_the_real_state(
    pystray_dummy: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    xdg = XdgAutostart(tmp_path)
    switch = AutostartSwitch(AgentOptions(node="desktop"), Notes(), xdg)
    views: list[TrayView] = []

    def on_action(action: MenuAction) -> None:  # what the tray's on_action does for this item
        assert action == MenuAction(ActionKind.TOGGLE_AUTOSTART)
        views.append(TrayView(MonitorStatus(None, 0.0), autostart=switch.toggle()))

    def menu_for(autostart: bool | None) -> Any:
        entries = build_menu(
            TrayView(MonitorStatus(None, 0.0), autostart=autostart), local_time=str
        )
        return to_pystray_menu(entries, on_action)

    menu = menu_for(switch.checked())
    item = _item(pystray_dummy, menu)
    assert (item.enabled, item.checked) == (True, False)
    item(pystray_dummy.Icon("test", menu=menu))  # a click, as a backend makes it
    assert xdg.path.exists()
    assert views[-1].autostart is True
    item = _item(pystray_dummy, menu_for(views[-1].autostart))
    assert item.checked is True
    item(pystray_dummy.Icon("test", menu=menu))
    assert not xdg.path.exists()
    assert _item(pystray_dummy, menu_for(views[-1].autostart)).checked is False
    assert _item(pystray_dummy, menu_for(None)).enabled is False  # unsupported: greyed


def test_the_switch_says_why_start_at_login_is_unavailable() -> None:
    """The menu greys the item: `note()` is the word it shows with it."""
    unsupported = AutostartSwitch(AgentOptions(), Notes(), Unsupported("not on this system"))
    assert (unsupported.checked(), unsupported.note()) == (None, "not on this system")

    class Broken(Unsupported):
        def status(self) -> AutostartState:
            raise AutostartError("the registry cannot be read")

    broken = AutostartSwitch(AgentOptions(), Notes(), Broken(""))
    assert (broken.checked(), broken.note()) == (None, "could not be read (see the log)")
    xdg_ok = AutostartSwitch(AgentOptions(), Notes(), Unsupported(""))
    assert xdg_ok.note() == "not available here"
