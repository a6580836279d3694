"""desktop.actions: opening links, files and folders, and copying, each saying honestly how it went.

The openers and clipboard tools are real processes: stand-in executables on a PATH made for the
test (tests/helpers/fake_opener/xdg-open, small shell scripts), so exit statuses, stderr and
argv are the real thing; no browser or file manager is ever started. The tray's menu runs the
same code on a real desktop in tests/desktop/test_tray_feedback_e2e.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.desktop.actions import (
    DesktopActions,
    Outcome,
    clipboard_commands,
    copy_text,
    open_path,
    open_url,
    openers,
)

REPO = Path(__file__).resolve().parents[1]
FAKE_XDG_OPEN = REPO / "tests" / "helpers" / "fake_opener" / "xdg-open"


# ==== open_url ==================================================================


def _recording_browser(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "browser.log"
    script = tmp_path / "record-browser"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{log}"\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


URLS = [
    ("http://100.123.51.5:8000/health", True),
    ("https://127.0.0.1:9001/", True),
    ("file:///etc/passwd", False),
    ("javascript:alert(1)", False),
    ("ftp://127.0.0.1/", False),
    ("http:///nohost", False),
    ("http://127.0.0.1/a b", False),
    ("http://127.0.0.1/\nX-Injected: 1", False),
    ("HTTP://127.0.0.1:8188/", True),
    ("", False),
]


def test_open_url_opens_only_http_and_https(tmp_path: Path) -> None:
    """Through the real webbrowser module, with $BROWSER set to a recording script."""
    script, log = _recording_browser(tmp_path)
    code = (
        "import json, sys; from agent.desktop.actions import open_url; "
        "print(json.dumps([open_url(u).ok for u in json.loads(sys.argv[1])]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.update(BROWSER=str(script), PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps([u for u, _ in URLS])],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [ok for _, ok in URLS]
    opened = log.read_text(encoding="utf-8").splitlines()
    assert opened == [u for u, ok in URLS if ok]


def test_open_url_logs_a_refusal(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.desktop.actions"):
        assert open_url("file:///etc/passwd") == Outcome(
            False, "only http and https links are opened"
        )
    assert "refused to open 'file:///etc/passwd': only http and https URLs" in caplog.text


# ==== copy_text =================================================================


def _fake_xclip(folder: Path, clipboard: Path, *, args: Path | None = None) -> Path:
    """A stand-in xclip that keeps stdin in `clipboard` (`-in`, its argv in `args`) and
    prints it back (`-out`: how copy_text reads what the clipboard holds)."""
    keep_args = "" if args is None else f'; echo "$@" > "{args}"'
    return _tool(
        folder,
        "xclip",
        f'case "$*" in *-out*) /bin/cat "{clipboard}";;\n'
        f'  *) /bin/cat > "{clipboard}"{keep_args};;\nesac',
    )


def _tool(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_copy_text_without_any_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert clipboard_commands() == []
    assert copy_text("100.64.0.1") == Outcome(
        False, "no clipboard tool here (install xclip or xsel; wl-clipboard on Wayland)"
    )


def test_copy_text_without_a_display(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    _tool(tmp_path / "bin", "xclip", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not copy_text("x")


def test_copy_text_tries_the_next_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for wl-copy (fails) and xclip (stores stdin): order and fallback."""
    monkeypatch.setattr(sys, "platform", "linux")
    out = tmp_path / "clipboard"
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "wl-copy", "exit 1")
    _fake_xclip(bin_dir, out, args=tmp_path / "clipboard.args")
    _tool(bin_dir, "xsel", "exit 3")
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))  # for cat
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    names = [Path(argv[0]).name for argv, _ in clipboard_commands()]
    assert names == ["wl-copy", "xclip", "xsel"]
    assert copy_text("100.123.51.5 — ü") == Outcome(True)
    assert out.read_text(encoding="utf-8") == "100.123.51.5 — ü"
    assert (tmp_path / "clipboard.args").read_text().split() == ["-selection", "clipboard", "-in"]


def test_copy_text_all_tools_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "xclip", "exit 1")
    _tool(bin_dir, "xsel", "exit 1")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert copy_text("x") == Outcome(False, "the clipboard tools failed (xclip, xsel)")


# ==== openers: exit status, stderr, still running ==============================


class Notes:
    """A notifier that records what it was asked to show."""

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


@pytest.fixture
def linux_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH folder on a Linux desktop without $BROWSER; tests add the tools they want."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("BROWSER", raising=False)
    return folder


def _fake_xdg_open(folder: Path, monkeypatch: pytest.MonkeyPatch, exit: int = 0) -> Path:
    (folder / "xdg-open").symlink_to(FAKE_XDG_OPEN)
    calls = folder.parent / "xdg-open.log"
    monkeypatch.setenv("FAKE_XDG_OPEN_LOG", str(calls))
    monkeypatch.setenv("FAKE_XDG_OPEN_EXIT", str(exit))
    return calls


def test_a_working_opener_is_asked_with_the_target(
    linux_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = _fake_xdg_open(linux_path, monkeypatch)
    assert openers() == [[str(linux_path / "xdg-open")]]
    assert open_path(tmp_path / "topology.toml") == Outcome(True)
    assert open_url("http://127.0.0.1:8000/health") == Outcome(True)
    assert calls.read_text(encoding="utf-8").splitlines() == [
        str(tmp_path / "topology.toml"),
        "http://127.0.0.1:8000/health",
    ]


def test_a_failing_opener_is_a_failure_with_its_complaint_logged(
    linux_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _fake_xdg_open(linux_path, monkeypatch, exit=4)
    folder = tmp_path / "logs"
    with caplog.at_level(logging.WARNING, logger="agent.desktop.actions"):
        outcome = open_path(folder)
    assert outcome == Outcome(
        False,
        "the opener (xdg-open) failed with exit status 4: "
        "No application is registered as handling this file",
    )
    assert (
        f"xdg-open {folder}: exit status 4: gio: {folder}: No application is registered"
        in caplog.text
    )


def test_without_an_opener_paths_fail_and_links_ask_webbrowser(
    linux_path: Path, tmp_path: Path
) -> None:
    assert openers() == []
    assert open_path(tmp_path) == Outcome(
        False, "nothing here opens files: xdg-open and gio are missing (install xdg-utils)"
    )
    # Python's webbrowser, in a fresh process (it caches what it found): nothing on PATH.
    code = "import sys; from agent.desktop.actions import open_url; print(open_url(sys.argv[1]))"
    env = {k: v for k, v in os.environ.items() if k != "BROWSER"}
    env.update(PATH=str(linux_path), DISPLAY=":0", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", code, "http://127.0.0.1:8000/"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.strip() == repr(
        Outcome(
            False,
            "no browser found (xdg-open and gio are missing (install xdg-utils), or set $BROWSER)",
        )
    ), done.stderr


def test_gio_opens_where_xdg_utils_is_missing(linux_path: Path, tmp_path: Path) -> None:
    calls = tmp_path / "gio.log"
    _tool(linux_path, "gio", f'printf "%s\\n" "$*" >> "{calls}"')
    assert openers() == [[str(linux_path / "gio"), "open"]]
    assert open_url("https://127.0.0.1:9001/") == Outcome(True)
    assert calls.read_text(encoding="utf-8").splitlines() == ["open https://127.0.0.1:9001/"]


def test_an_opener_still_running_has_handed_the_target_over(
    linux_path: Path, tmp_path: Path
) -> None:
    """xdg-open on a desktop it does not know runs the browser in the foreground: it stays."""
    flag = tmp_path / "done"
    sleep = shutil.which("sleep", path=os.defpath)
    assert sleep is not None
    _tool(linux_path, "xdg-open", f'while [ ! -e "{flag}" ]; do {sleep} 0.02; done')
    try:
        assert open_url("http://127.0.0.1:3000/", wait_s=0.3) == Outcome(True)
    finally:
        flag.touch()  # the stand-in ends; the reaper thread collects it


# ==== what the menu calls ======================================================


def test_a_failed_open_is_told_with_the_target_put_on_the_clipboard(
    linux_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clipboard = tmp_path / "clipboard"
    _fake_xclip(linux_path, clipboard)
    _fake_xdg_open(linux_path, monkeypatch, exit=3)
    notes = Notes()
    actions = DesktopActions(notes, background=False)
    topology = tmp_path / "topology.toml"

    actions.open_path(topology, "the topology file")

    assert notes.sent == [
        (
            "Could not open the topology file",
            "The opener (xdg-open) failed with exit status 3: No application is registered as "
            f"handling this file. It is on the clipboard: {topology}",
        )
    ]
    assert clipboard.read_text(encoding="utf-8") == str(topology)


def test_a_failed_open_without_a_clipboard_shows_the_link_scrubbed(linux_path: Path) -> None:
    notes = Notes()
    DesktopActions(notes, background=False).open_url("http://me:s3cret@127.0.0.1:9001/x?k=v")
    ((title, body),) = notes.sent
    assert title == "Could not open the link"
    assert body.endswith("Open it yourself: http://127.0.0.1:9001/x")
    assert "s3cret" not in body and "k=v" not in body


def test_a_working_open_says_nothing(linux_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_xdg_open(linux_path, monkeypatch)
    notes = Notes()
    DesktopActions(notes, background=False).open_url("http://127.0.0.1:8000/")
    assert notes.sent == []


def test_copy_is_confirmed(linux_path: Path, tmp_path: Path) -> None:
    clipboard = tmp_path / "clipboard"
    _fake_xclip(linux_path, clipboard)
    notes = Notes()
    DesktopActions(notes, background=False).copy("100.123.51.5")
    assert notes.sent == [("Copied 100.123.51.5", "It is on the clipboard, ready to paste.")]
    assert clipboard.read_text(encoding="utf-8") == "100.123.51.5"


def test_copy_without_a_clipboard_tool_says_so(linux_path: Path) -> None:
    notes = Notes()
    DesktopActions(notes, background=False).copy("100.123.51.5")
    assert notes.sent == [
        (
            "Could not copy 100.123.51.5",
            "No clipboard tool here (install xclip or xsel; wl-clipboard on Wayland).",
        )
    ]


def test_actions_run_off_the_calling_thread(linux_path: Path) -> None:
    import threading

    seen: list[str] = []
    done = threading.Event()

    class Threaded(Notes):
        def notify(self, title: str, message: str, **_: object) -> bool:
            seen.append(threading.current_thread().name)
            done.set()
            return True

    DesktopActions(Threaded()).copy("100.64.0.1")
    assert done.wait(10)
    assert seen == ["menu-action"]
