"""copy_text returns once the clipboard holds the text, not merely once the tool ran: xclip
forks a child that serves the selection, and its claim reaches the X server after the parent
exited. A paste right after "Copy address" must give the new address, not the one before.
The real xclip on the suite's private Xvfb, read back with xclip itself."""

from __future__ import annotations

import os
import subprocess

import pytest

from agent.desktop.actions import clipboard_commands, copy_text
from tests.helpers.desktop import DesktopEnv, require_tool

pytestmark = pytest.mark.linux_desktop


def pasted(desktop_env: DesktopEnv) -> str:
    out = subprocess.run(
        [require_tool("xclip"), "-selection", "clipboard", "-o"],
        env=desktop_env.env,
        capture_output=True,
        timeout=10,
        check=True,
    )
    return out.stdout.decode("utf-8")


@pytest.fixture
def x_clipboard(desktop_env: DesktopEnv, monkeypatch: pytest.MonkeyPatch) -> DesktopEnv:
    monkeypatch.setenv("DISPLAY", desktop_env.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("PATH", os.environ["PATH"])
    assert clipboard_commands()[0][0][0] == require_tool("xclip")
    return desktop_env


def test_each_copy_is_what_the_next_paste_gives(x_clipboard: DesktopEnv) -> None:
    addresses = [f"100.64.0.{n}" for n in range(1, 51)]
    for address in addresses:  # no pause between a copy and the paste after it
        assert copy_text(address)
        assert pasted(x_clipboard) == address


def test_the_same_text_twice_is_copied_without_waiting_for_a_change(
    x_clipboard: DesktopEnv,
) -> None:
    assert copy_text("100.123.51.5 ünïcode") and copy_text("100.123.51.5 ünïcode")
    assert pasted(x_clipboard) == "100.123.51.5 ünïcode"
