"""desktop.notify without a desktop: the choice per platform, osascript's argv, the log backend.

The D-Bus backends are tested over a real bus in tests/desktop/test_notifications.py.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from agent.core.ports import Notifier
from agent.desktop import notify
from agent.desktop.icons import write_app_icon
from agent.desktop.notify import (
    LogNotifier,
    NotifierUnavailable,
    NotifySendNotifier,
    OsascriptNotifier,
    PlyerNotifier,
    applescript_string,
    choose_notifier,
    notifier_order,
)
from agent.edges import paths

# ==== choosing =================================================================


class Made:
    """What an injected factory built: only its name matters to choose_notifier."""

    def __init__(self, name: str) -> None:
        self.name = name

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        return True


def _factories(broken: set[str], tried: list[str]) -> dict[str, Callable[[], Notifier]]:
    def factory(name: str) -> Callable[[], Notifier]:
        def make() -> Notifier:
            tried.append(name)
            if name in broken:
                raise NotifierUnavailable(f"{name} cannot init here")
            return Made(name)

        return make

    names = ("desktop-notifier", "osascript", "plyer", "dbus", "notify-send", "log")
    return {name: factory(name) for name in names}


CHOICES = [
    # platform, frozen, broken backends, chosen, tried in order
    ("darwin", True, set(), "desktop-notifier", ["desktop-notifier"]),
    ("darwin", True, {"desktop-notifier"}, "osascript", ["desktop-notifier", "osascript"]),
    ("darwin", True, {"desktop-notifier", "osascript"}, "log",
        ["desktop-notifier", "osascript", "log"]),
    ("darwin", False, set(), "osascript", ["osascript"]),
    ("darwin", False, {"osascript"}, "log", ["osascript", "log"]),
    ("win32", True, set(), "plyer", ["plyer"]),
    ("win32", False, set(), "plyer", ["plyer"]),
    ("win32", False, {"plyer"}, "log", ["plyer", "log"]),
    ("linux", False, set(), "dbus", ["dbus"]),
    ("linux", False, {"dbus"}, "notify-send", ["dbus", "notify-send"]),
    ("linux", False, {"dbus", "notify-send"}, "plyer", ["dbus", "notify-send", "plyer"]),
    ("linux", False, {"dbus", "notify-send", "plyer"}, "log",
        ["dbus", "notify-send", "plyer", "log"]),
    ("freebsd14", False, set(), "dbus", ["dbus"]),
    ("sunos5", False, set(), "log", ["log"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("platform", "frozen", "broken", "chosen", "tried"),
    CHOICES,
    ids=[
        f"{p}-{'frozen' if f else 'source'}-{'+'.join(sorted(b)) or 'ok'}"
        for p, f, b, *_ in CHOICES
    ],
)
def test_choose_notifier_per_platform(
    platform: str, frozen: bool, broken: set[str], chosen: str, tried: list[str]
) -> None:
    calls: list[str] = []
    notifier = choose_notifier(platform, frozen, factories=_factories(broken, calls))
    assert notifier.name == chosen
    assert calls == tried


def test_every_factory_failing_still_gives_the_log() -> None:
    calls: list[str] = []
    every = {"desktop-notifier", "osascript", "plyer", "dbus", "notify-send", "log"}
    notifier = choose_notifier("linux", False, factories=_factories(every, calls))
    assert isinstance(notifier, LogNotifier)


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen", "source"])
def test_the_frozen_app_is_told_by_paths(
    frozen: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The wiring passes paths.is_frozen() (a PyInstaller build: sys.frozen and _MEIPASS)."""
    if frozen:
        monkeypatch.setattr(sys, "frozen", True, raising=False)
        monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    else:
        monkeypatch.delattr(sys, "frozen", raising=False)
    calls: list[str] = []
    notifier = choose_notifier("darwin", paths.is_frozen(), factories=_factories(set(), calls))
    assert notifier.name == ("desktop-notifier" if frozen else "osascript")


def test_a_factory_raising_anything_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    def explode() -> Notifier:
        raise OSError("no such device")

    with caplog.at_level(logging.INFO, logger="agent.desktop.notify"):
        notifier = choose_notifier("linux", False, factories={"dbus": explode, "plyer": explode})
    assert isinstance(notifier, LogNotifier)
    assert "notifier dbus unavailable: no such device" in caplog.text


def test_windows_plyer_cannot_init_off_windows() -> None:
    # The real default factory: plyer's win32 module needs Windows' ctypes APIs.
    if sys.platform == "win32":
        pytest.fail("this test describes a non-Windows machine")
    with pytest.raises(NotifierUnavailable):
        PlyerNotifier(platform="win32")
    assert isinstance(choose_notifier("win32", False), LogNotifier)


def test_plyer_is_not_used_on_macos() -> None:
    with pytest.raises(NotifierUnavailable, match="not used on darwin"):
        PlyerNotifier(platform="darwin")


def test_plyer_on_linux_needs_dbus_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus")
    monkeypatch.setitem(sys.modules, "dbus", None)  # `import dbus` raises ImportError
    with pytest.raises(NotifierUnavailable, match="plyer needs dbus-python on Linux"):
        PlyerNotifier(platform="linux")


def _no_session_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no "bus" socket there


@pytest.mark.parametrize(
    "make",
    [
        lambda: PlyerNotifier(platform="linux"),
        lambda: NotifySendNotifier(executable="/usr/bin/notify-send"),
        lambda: notify.DbusNotifier(),
    ],
    ids=["plyer", "notify-send", "dbus"],
)
def test_linux_backends_need_a_session_bus(
    make: Callable[[], Notifier], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_session_bus(monkeypatch, tmp_path)
    with pytest.raises(NotifierUnavailable, match="no D-Bus session bus"):
        make()


def test_the_systemd_user_bus_counts_as_a_session_bus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    _no_session_bus(monkeypatch, tmp_path)
    assert notify.session_bus_address() is None
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "bus"))
        assert notify.session_bus_address() == f"unix:path={tmp_path / 'bus'}"
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:abstract=/tmp/dbus-x")
    assert notify.session_bus_address() == "unix:abstract=/tmp/dbus-x"


def _notify_send(tmp_path: Path, help_text: str) -> str:
    """A stand-in notify-send whose --help lists `help_text` (libnotify 0.7.9 has no ids)."""
    path = tmp_path / "notify-send"
    path.write_text(f"#!/bin/sh\necho '{help_text}'\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def test_notify_send_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus")
    icon = tmp_path / "tailnet-agent.png"
    old = _notify_send(tmp_path, "-u, --urgency=LEVEL")
    notifier = NotifySendNotifier(executable=old, app_icon=icon)
    assert not notifier.knows_ids
    assert notifier.argv("-Backend down", "C:\\tmp\\new", critical=True, replace_id=7) == [
        old,
        "--app-name=tailnet-agent",
        "--urgency=critical",
        "--expire-time=0",
        f"--icon={icon}",
        "--",
        "-Backend down",
        "C:\\\\tmp\\\\new",  # notify-send unescapes the body once
    ]
    assert "--urgency=normal" in notifier.argv("t", "m")
    assert "--expire-time=10000" in notifier.argv("t", "m")

    new = _notify_send(tmp_path, "-p, --print-id  -r, --replace-id=REPLACE_ID")
    notifier = NotifySendNotifier(executable=new)
    assert notifier.knows_ids
    assert notifier.argv("t", "m", replace_id=7)[-5:] == [
        "--print-id",
        "--replace-id=7",
        "--",
        "t",
        "m",
    ]
    assert "--replace-id=0" not in " ".join(notifier.argv("t", "m"))


def test_notify_send_needs_notify_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotifierUnavailable, match="libnotify-bin"):
        NotifySendNotifier()


def test_only_the_log_left_is_said_once_with_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _no_session_bus(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="agent.desktop.notify"):
        notifier = choose_notifier("linux", False)
    assert isinstance(notifier, LogNotifier)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "no desktop notifications here (no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset, "
        "no $XDG_RUNTIME_DIR/bus)): notifications go to the log only"
    ]


@pytest.mark.parametrize("ico_exists", [True, False], ids=["ico-beside", "no-ico"])
def test_plyer_on_windows_uses_the_ico_beside_a_png(tmp_path: Path, ico_exists: bool) -> None:
    png = write_app_icon(tmp_path / "tailnet-agent.png")
    if ico_exists:
        write_app_icon(tmp_path / "tailnet-agent.ico")
    # `implementation` stands for plyer's Windows object, which cannot load off Windows;
    # only the icon choice is checked here, nothing is sent.
    notifier = PlyerNotifier(platform="win32", app_icon=png, implementation=object())
    assert notifier.app_icon == (str(tmp_path / "tailnet-agent.ico") if ico_exists else "")


def test_plyer_on_linux_keeps_the_png(tmp_path: Path) -> None:
    png = tmp_path / "tailnet-agent.png"
    notifier = PlyerNotifier(platform="linux", app_icon=png, implementation=object())
    assert notifier.app_icon == str(png)


def test_desktop_notifier_order_matches_the_brief() -> None:
    assert notifier_order("darwin", True) == ["desktop-notifier", "osascript", "log"]
    assert notifier_order("darwin", False) == ["osascript", "log"]
    assert notifier_order("win32", True) == ["plyer", "log"]
    assert notifier_order("linux", False) == ["dbus", "notify-send", "plyer", "log"]


# ==== log ======================================================================


@pytest.mark.parametrize(
    ("critical", "level"),
    [(False, logging.INFO), (True, logging.WARNING)],
    ids=["normal", "critical"],
)
def test_log_notifier_logs_every_notification(
    critical: bool, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="agent.desktop.notify"):
        # False: nothing reached a desktop (the log is not a notification service)
        assert not LogNotifier().notify("Redis down", "macmini:6379 refused", critical=critical)
    [record] = [r for r in caplog.records if r.name == "agent.desktop.notify"]
    assert record.levelno == level
    assert "Redis down" in record.getMessage() and "macmini:6379 refused" in record.getMessage()
    assert ("critical" in record.getMessage()) is critical


def test_log_notifier_can_use_another_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="agent.headless"):
        LogNotifier(logging.getLogger("agent.headless")).notify("t", "m")
    assert [r.name for r in caplog.records] == ["agent.headless"]


# ==== osascript ================================================================

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys, time
    mode = os.environ.get("STAND_IN_MODE", "ok")
    with open(os.environ["STAND_IN_RECORD"], "a", encoding="utf-8") as f:
        f.write(json.dumps(sys.argv) + "\\n")
    if mode == "fail":
        sys.stderr.write("execution error: Not authorised to send Apple events (-1743)\\n")
        sys.exit(1)
    if mode == "hang":
        time.sleep(30)
    """
)


@pytest.fixture
def osascript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `osascript` first on PATH that records its argv (one JSON list a line)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "osascript"
    exe.write_text(STAND_IN.format(python=sys.executable), encoding="utf-8")
    exe.chmod(0o755)
    record = tmp_path / "argv.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("STAND_IN_RECORD", str(record))
    return record


def _argvs(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]


def _parse_applescript_string(script: str, start: int) -> tuple[str, int]:
    """Read the string literal at script[start] the way AppleScript does; (value, end)."""
    assert script[start] == '"', script[start:]
    escapes = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
    out: list[str] = []
    i = start + 1
    while script[i] != '"':
        if script[i] == "\\":
            out.append(escapes[script[i + 1]])
            i += 2
        else:
            assert script[i] not in "\n\r", "raw line break inside a string literal"
            out.append(script[i])
            i += 1
    return "".join(out), i + 1


def _parse_script(script: str) -> tuple[str, str]:
    """(message, title) from `display notification "<m>" with title "<t>"`, strictly."""
    head = "display notification "
    assert script.startswith(head)
    message, end = _parse_applescript_string(script, len(head))
    middle = " with title "
    assert script[end : end + len(middle)] == middle, script[end:]
    title, end = _parse_applescript_string(script, end + len(middle))
    assert end == len(script), f"trailing code after the title: {script[end:]!r}"
    return message, title


TEXTS = [
    pytest.param("Backend offline", "FastAPI: connection refused", id="plain"),
    pytest.param('He said "down"', 'status "503"', id="quotes"),
    pytest.param("C:\\Users\\me", "path \\\\server\\share \\n stays literal", id="backslashes"),
    pytest.param("two\nlines", "one\ntwo\r\nthree\rfour", id="newlines"),
    pytest.param("백엔드 오프라인", "맥 미니의 FastAPI가 응답하지 않습니다 ✓", id="korean"),
    pytest.param(
        'x" & (do shell script "touch /tmp/pwned") & "',
        '" with title "spoofed',
        id="injection",
    ),
    pytest.param("tab\there", "bell\x07 and nul\x00 dropped", id="control-chars"),
]


def _expected(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or (ord(c) >= 0x20 and ord(c) != 0x7F))


@pytest.mark.parametrize(("title", "message"), TEXTS)
def test_osascript_gets_one_escaped_argument(title: str, message: str, osascript: Path) -> None:
    notifier = OsascriptNotifier()
    assert notifier.notify(title, message) is True

    [argv] = _argvs(osascript)
    assert len(argv) == 3 and argv[1] == "-e", argv
    assert Path(argv[0]).name == "osascript"
    parsed_message, parsed_title = _parse_script(argv[2])
    assert parsed_message == _expected(message)
    assert parsed_title == _expected(title)


def test_osascript_exact_script_for_quotes_and_backslashes(osascript: Path) -> None:
    OsascriptNotifier().notify('a "b" \\c', 'line1\nsay "hi" \\ bye')
    [argv] = _argvs(osascript)
    assert argv[2] == (
        'display notification "line1\\nsay \\"hi\\" \\\\ bye" with title "a \\"b\\" \\\\c"'
    )


def test_osascript_failure_is_false_and_logged(
    osascript: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "fail")
    with caplog.at_level(logging.WARNING, logger="agent.desktop.notify"):
        assert OsascriptNotifier().notify("Backend offline", "x") is False
    assert "exit 1" in caplog.text and "Not authorised" in caplog.text
    assert "Backend offline" in caplog.text


def test_osascript_hang_is_cut_off(
    osascript: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "hang")
    with caplog.at_level(logging.WARNING, logger="agent.desktop.notify"):
        assert OsascriptNotifier(timeout_s=0.5).notify("slow", "x") is False
    assert "timed out" in caplog.text


def test_osascript_missing_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotifierUnavailable, match="osascript not found"):
        OsascriptNotifier()


def test_osascript_vanishing_executable_is_false(tmp_path: Path) -> None:
    notifier = OsascriptNotifier(executable=str(tmp_path / "gone" / "osascript"))
    assert notifier.notify("t", "m") is False


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", '"plain"'),
        ('"', '"\\""'),
        ("\\", '"\\\\"'),
        ("a\nb", '"a\\nb"'),
        ("a\r\nb", '"a\\nb"'),
        ("a\tb", '"a\\tb"'),
        ("a\x1bb", '"ab"'),
        ("한국어", '"한국어"'),
    ],
    ids=["plain", "quote", "backslash", "lf", "crlf", "tab", "escape-char", "korean"],
)
def test_applescript_string(text: str, literal: str) -> None:
    assert applescript_string(text) == literal


def test_all_backends_satisfy_the_protocol() -> None:
    for cls in (
        notify.DbusNotifier,
        notify.DesktopNotifierBackend,
        notify.PlyerNotifier,
        notify.OsascriptNotifier,
        notify.LogNotifier,
    ):
        assert isinstance(cls.name, str) and cls.name
        assert callable(cls.notify)
    assert isinstance(LogNotifier(), Notifier)
