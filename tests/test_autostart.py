"""desktop.autostart: each OS's login item through its thin boundary, and the login command.

Windows: the exact Run value through a stand-in registry. macOS: the exact plist (read back with
plistlib from a temp HOME) and the exact launchctl argv through a recording runner. Linux: the
.desktop file, its Exec line parsed back by our parser and by GLib's (the one desktop sessions
launch autostart entries with). The login command: fake frozen and pip layouts in temp folders.
"""

from __future__ import annotations

import json
import os
import plistlib
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent import cli
from agent.desktop import autostart
from agent.desktop.autostart import (
    LAUNCHCTL,
    RUN_KEY,
    RUN_VALUE_NAME,
    STARTUP_APPROVED_KEY,
    AutostartState,
    LaunchAgent,
    RunKey,
    Unsupported,
    XdgAutostart,
    desktop_exec,
    login_command,
    parse_desktop_exec,
    split_windows_command_line,
    windows_command_line,
)
from agent.errors import AutostartError
from tests.helpers.desktop import require_tool

LABEL = "io.github.tailnet-agent"


# ==== Windows: the Run key through a stand-in registry =========================


class StandInRegistry:
    """HKCU as a dict: (key, value name) -> (data, kind). Records every write and delete."""

    def __init__(self, fail: type[OSError] | None = None) -> None:
        self.values: dict[tuple[str, str], tuple[str | bytes, str]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.fail = fail

    def get(self, key: str, name: str) -> str | bytes | None:
        if self.fail:
            raise self.fail("Access is denied")
        found = self.values.get((key, name))
        return None if found is None else found[0]

    def set_string(self, key: str, name: str, value: str) -> None:
        if self.fail:
            raise self.fail("Access is denied")
        self.calls.append(("set", key, name))
        self.values[(key, name)] = (value, "REG_SZ")

    def delete(self, key: str, name: str) -> None:
        if self.fail:
            raise self.fail("Access is denied")
        self.calls.append(("delete", key, name))
        self.values.pop((key, name), None)


WIN_EXE = r"C:\Users\Woo Sun\AppData\Local\Programs\tailnet-agent\tailnet-agent.exe"


def test_run_key_value_name_and_data() -> None:
    registry = StandInRegistry()
    command = [WIN_EXE, "--topology", r"C:\Users\Woo Sun\net.toml", "--node", "desktop"]
    state = RunKey(registry).enable(command)
    assert registry.values == {
        (r"Software\Microsoft\Windows\CurrentVersion\Run", "tailnet-agent"): (
            r'"C:\Users\Woo Sun\AppData\Local\Programs\tailnet-agent\tailnet-agent.exe"'
            r' --topology "C:\Users\Woo Sun\net.toml" --node desktop',
            "REG_SZ",
        )
    }
    assert state.supported and state.enabled
    assert state.command == tuple(command)
    assert state.location == r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\tailnet-agent"
    assert state.backend == "run-key"


def test_run_key_without_arguments_is_what_the_installer_writes() -> None:
    """Inno Setup's task: ValueName "tailnet-agent", ValueData `"{app}\\tailnet-agent.exe"`."""
    ours = StandInRegistry()
    RunKey(ours).enable([WIN_EXE])
    installer = StandInRegistry()
    installer.values[(RUN_KEY, "tailnet-agent")] = (f'"{WIN_EXE}"', "REG_SZ")
    assert ours.values == installer.values
    state = RunKey(installer).status()  # the tray's checkbox reads the installer's value
    assert (state.enabled, state.command) == (True, (WIN_EXE,))


def test_run_key_disable_removes_the_value_and_status_reads_it() -> None:
    registry = StandInRegistry()
    run_key = RunKey(registry)
    assert run_key.status() == AutostartState(
        True, False, "run-key", run_key.location, None, "no such value"
    )
    run_key.enable([WIN_EXE])
    state = run_key.disable()
    assert registry.values == {}
    assert (state.enabled, state.command) == (False, None)
    run_key.disable()  # nothing registered: fine


@pytest.mark.parametrize("first", [0x03, 0x07], ids=["off-03", "off-07"])
def test_startup_apps_switch_off_reads_disabled_and_enable_clears_it(first: int) -> None:
    registry = StandInRegistry()
    registry.values[(RUN_KEY, RUN_VALUE_NAME)] = (f'"{WIN_EXE}"', "REG_SZ")
    registry.values[(STARTUP_APPROVED_KEY, RUN_VALUE_NAME)] = (bytes([first]) + bytes(11), "BIN")
    run_key = RunKey(registry)
    state = run_key.status()
    assert not state.enabled and "Startup apps" in state.detail
    assert state.command == (WIN_EXE,)
    assert run_key.enable([WIN_EXE]).enabled
    assert (STARTUP_APPROVED_KEY, RUN_VALUE_NAME) not in registry.values


def test_startup_apps_switch_on_reads_enabled() -> None:
    registry = StandInRegistry()
    registry.values[(RUN_KEY, RUN_VALUE_NAME)] = (f'"{WIN_EXE}"', "REG_SZ")
    registry.values[(STARTUP_APPROVED_KEY, RUN_VALUE_NAME)] = (b"\x02" + bytes(11), "BIN")
    assert RunKey(registry).status().enabled


def test_run_key_registry_failure_is_an_autostart_error() -> None:
    run_key = RunKey(StandInRegistry(fail=PermissionError))
    for call in (run_key.status, run_key.disable, lambda: run_key.enable([WIN_EXE])):
        with pytest.raises(AutostartError, match="Access is denied"):
            call()


def test_run_key_refuses_a_relative_program() -> None:
    with pytest.raises(AutostartError, match="absolute"):
        RunKey(StandInRegistry()).enable(["tailnet-agent.exe"])


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        # The documented CommandLineToArgvW / C runtime examples, after a quoted program.
        (r'"a b c" d e', ["a b c", "d", "e"]),
        (r'"ab\"c" "\\" d', ['ab"c', "\\", "d"]),
        (r"a\\\b d" + '"e f"g h', [r"a\\\b", "de fg", "h"]),
        (r"a\\\"b c d", [r"a\"b", "c", "d"]),
        (r'a\\\\"b c" d e', [r"a\\b c", "d", "e"]),
        (r'a"b"" c d', ['ab" c d']),
        ('""', [""]),
    ],
)
def test_split_windows_command_line_documented_cases(line: str, argv: list[str]) -> None:
    assert split_windows_command_line(rf'"C:\Program Files\x.exe" {line}') == [
        r"C:\Program Files\x.exe",
        *argv,
    ]


@given(st.lists(st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12)))
def test_windows_command_line_round_trips(args: list[str]) -> None:
    command = [WIN_EXE, *args]
    assert split_windows_command_line(windows_command_line(command)) == command


# ==== macOS: the LaunchAgent plist and launchctl ===============================


class Launchctl:
    """A stand-in runner: records argv, answers with the return codes given per subcommand."""

    def __init__(self, **codes: int) -> None:
        self.calls: list[list[str]] = []
        self.codes = codes

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        code = self.codes.get(argv[1], 0)
        stderr = f"{argv[1].capitalize()} failed: 5: Input/output error\n" if code else ""
        return subprocess.CompletedProcess(list(argv), code, "", stderr)


MAC_EXE = "/Applications/tailnet-agent.app/Contents/MacOS/tailnet-agent"
MAC_COMMAND = [MAC_EXE, "--topology", "/Users/woosun/Sparklio topology.toml", "--node", "macmini"]


def mac_agent(tmp_path: Path, runner: Launchctl, env: dict[str, str] | None = None) -> LaunchAgent:
    return LaunchAgent(tmp_path / "home", uid=501, runner=runner, env=env or {})


def test_launch_agent_plist_and_bootstrap(tmp_path: Path) -> None:
    runner = Launchctl()
    agent = mac_agent(tmp_path, runner)
    state = agent.enable(MAC_COMMAND)
    path = tmp_path / "home" / "Library" / "LaunchAgents" / "io.github.tailnet-agent.plist"
    with path.open("rb") as handle:
        assert plistlib.load(handle) == {
            "Label": "io.github.tailnet-agent",
            "ProgramArguments": MAC_COMMAND,
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "ProcessType": "Interactive",
        }
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    assert runner.calls == [["/bin/launchctl", "bootstrap", "gui/501", str(path)]]
    assert state == AutostartState(
        True,
        True,
        "launch-agent",
        str(path),
        tuple(MAC_COMMAND),
        f"the registered program {MAC_EXE} does not exist (any more)",  # not a Mac, this one
    )


def test_launch_agent_already_loaded_is_fine(tmp_path: Path) -> None:
    runner = Launchctl(bootstrap=5)  # `print` answers 0: the job is loaded
    agent = mac_agent(tmp_path, runner)
    state = agent.enable(MAC_COMMAND)
    assert runner.calls == [
        [LAUNCHCTL, "bootstrap", "gui/501", agent.location],
        [LAUNCHCTL, "print", f"gui/501/{LABEL}"],
    ]
    assert state.enabled
    assert state.detail.endswith(
        "; already loaded in launchd; the new file applies at the next login"
    )


def test_launch_agent_failing_bootstrap_still_registers(tmp_path: Path) -> None:
    runner = Launchctl(bootstrap=5, print=113)
    state = mac_agent(tmp_path, runner).enable(MAC_COMMAND)
    assert state.enabled  # the file is what launchd reads at the next login
    assert state.detail.endswith(
        "; launchctl bootstrap failed (Bootstrap failed: 5: Input/output error); "
        "launchd loads it at the next login"
    )


def test_launch_agent_disable_boots_out_and_removes(tmp_path: Path) -> None:
    runner = Launchctl()
    agent = mac_agent(tmp_path, runner)
    agent.enable(MAC_COMMAND)
    runner.calls.clear()
    state = agent.disable()
    assert runner.calls == [[LAUNCHCTL, "bootout", f"gui/501/{LABEL}"]]
    assert not agent.path.exists()
    assert state == AutostartState(
        True, False, "launch-agent", agent.location, None, "no such file"
    )


def test_launch_agent_disable_when_not_loaded(tmp_path: Path) -> None:
    runner = Launchctl(bootout=3, print=113)
    state = mac_agent(tmp_path, runner).disable()
    assert runner.calls == [
        [LAUNCHCTL, "bootout", f"gui/501/{LABEL}"],
        [LAUNCHCTL, "print", f"gui/501/{LABEL}"],
    ]
    assert (state.enabled, state.detail) == (False, "no such file")


def test_launch_agent_disable_from_the_job_itself_does_not_stop_it(tmp_path: Path) -> None:
    """The tray launchd started at login unticks its checkbox: no bootout (it would SIGTERM
    that very tray); the plist goes, so the next login does not start it."""
    runner = Launchctl()
    agent = mac_agent(tmp_path, runner, env={"XPC_SERVICE_NAME": LABEL})
    agent.enable(MAC_COMMAND)
    runner.calls.clear()
    state = agent.disable()
    assert runner.calls == []
    assert not agent.path.exists()
    assert not state.enabled
    assert "keeps running" in state.detail


def test_launched_at_login() -> None:
    assert autostart.launched_at_login({"XPC_SERVICE_NAME": LABEL}, "darwin")
    assert not autostart.launched_at_login({"XPC_SERVICE_NAME": "0"}, "darwin")
    assert not autostart.launched_at_login({"XPC_SERVICE_NAME": LABEL}, "linux")


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"not a plist", "unreadable"),
        (plistlib.dumps({"Label": LABEL}), "no ProgramArguments"),
        (plistlib.dumps({"Label": LABEL, "ProgramArguments": [MAC_EXE], "Disabled": True}), ""),
    ],
    ids=["garbage", "no-arguments", "disabled-key"],
)
def test_launch_agent_status_of_odd_files(tmp_path: Path, content: bytes, detail: str) -> None:
    agent = mac_agent(tmp_path, Launchctl())
    agent.path.parent.mkdir(parents=True)
    agent.path.write_bytes(content)
    state = agent.status()
    assert not state.enabled
    assert detail in state.detail


def test_run_command_is_bounded_and_reports_a_missing_program(tmp_path: Path) -> None:
    missing = autostart.run_command([str(tmp_path / "no-launchctl"), "print"])
    assert missing.returncode == 127
    slow = autostart.run_command([sys.executable, "-c", "import time; time.sleep(30)"], 0.5)
    assert slow.returncode == 124 and "0.5 s" in slow.stderr
    done = autostart.run_command([sys.executable, "-c", "import sys; sys.exit(5)"])
    assert done.returncode == 5


# ==== Linux: the XDG autostart .desktop file ===================================

GLIB_ARGS = [
    "/opt/tailnet agent/bin/tailnet-agent",
    "--topology",
    '/home/w/My "net" $HOME `x` \\ 100% ~ #.toml',
    "--node",
    "desk'top",
    "",
    "a=b",
    "ünï",
]


def glib_argv(exec_value: str) -> list[str]:
    """What GIO does with an Exec value when a session launches the entry: string escapes
    (by the key file reader), field codes (%% -> %), then g_shell_parse_argv."""
    import gi

    gi.require_version("GLib", "2.0")
    from gi.repository import GLib

    keyfile = GLib.KeyFile()
    data = f"[Desktop Entry]\nExec={exec_value}\n"
    keyfile.load_from_data(data, len(data.encode()), GLib.KeyFileFlags.NONE)
    line = keyfile.get_string("Desktop Entry", "Exec").replace("%%", "%")
    ok, argv = GLib.shell_parse_argv(line)
    assert ok
    return list(argv)


def test_exec_line_round_trips_through_our_parser_and_glibs() -> None:
    value = desktop_exec(GLIB_ARGS)
    assert parse_desktop_exec(value) == GLIB_ARGS
    assert glib_argv(value) == GLIB_ARGS


def test_exec_line_quotes_only_what_needs_it() -> None:
    assert desktop_exec(["/usr/bin/tailnet-agent", "--node", "desktop"]) == (
        "/usr/bin/tailnet-agent --node desktop"
    )
    assert desktop_exec(["/a b/x", "$y"]) == r'"/a b/x" "\\$y"'


@given(st.lists(st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=10)))
def test_exec_line_round_trips(args: list[str]) -> None:
    command = ["/opt/x y/tailnet-agent", *args]
    value = desktop_exec(command)
    assert "\n" not in value
    assert parse_desktop_exec(value) == command


def test_exec_refuses_what_it_cannot_write() -> None:
    with pytest.raises(AutostartError, match="control characters"):
        XdgAutostart(Path("/nonexistent")).enable(["/usr/bin/x", "a\nb"])
    with pytest.raises(AutostartError, match="'='"):
        desktop_exec(["/opt/a=b/x"])


def test_desktop_file(tmp_path: Path) -> None:
    icon = tmp_path / "tailnet-agent.png"
    backend = XdgAutostart(tmp_path / "config", icon=icon)
    state = backend.enable(["/opt/tailnet agent/bin/tailnet-agent", "--node", "desktop"])
    path = tmp_path / "config" / "autostart" / "tailnet-agent.desktop"
    assert path.read_text(encoding="utf-8") == (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.4\n"
        "Name=tailnet-agent\n"
        "Comment=Watches your Tailscale network: peers, links and services\n"
        'Exec="/opt/tailnet agent/bin/tailnet-agent" --node desktop\n'
        f"Icon={icon}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert state.enabled and state.location == str(path)
    assert "does not exist" in state.detail  # /opt/tailnet agent is not installed here
    icon.write_bytes(b"")  # the validator wants an Icon it can find
    validated = subprocess.run(
        [require_tool("desktop-file-validate"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert validated.returncode == 0 and not validated.stdout.strip(), validated.stdout


@pytest.mark.parametrize(
    ("extra", "detail"),
    [("Hidden=true", "Hidden=true"), ("X-GNOME-Autostart-enabled=false", "Autostart-enabled")],
)
def test_desktop_file_switched_off_reads_disabled(tmp_path: Path, extra: str, detail: str) -> None:
    backend = XdgAutostart(tmp_path)
    backend.path.parent.mkdir(parents=True)
    backend.path.write_text(
        f"[Desktop Entry]\nType=Application\nName=x\nExec={sys.executable} -V\n{extra}\n",
        encoding="utf-8",
    )
    state = backend.status()
    assert (state.enabled, state.command) == (False, (sys.executable, "-V"))
    assert detail in state.detail
    assert backend.enable([sys.executable, "-V"]).enabled  # enabling rewrites it: on again


def test_desktop_file_status_of_odd_files(tmp_path: Path) -> None:
    backend = XdgAutostart(tmp_path)
    backend.path.parent.mkdir(parents=True)
    backend.path.write_text("[Desktop Entry]\nName=x\n", encoding="utf-8")
    assert "no Exec" in backend.status().detail
    backend.path.write_text('[Desktop Entry]\nExec="/bin/x\n', encoding="utf-8")
    assert "unterminated" in backend.status().detail
    backend.path.write_bytes(b"\xff\xfe")
    assert "unreadable" in backend.status().detail


def test_xdg_config_home(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    chosen = autostart.backend("linux", {"HOME": home, "XDG_CONFIG_HOME": "relative/ignored"})
    assert isinstance(chosen, XdgAutostart)
    assert chosen.path == Path(home) / ".config" / "autostart" / "tailnet-agent.desktop"
    chosen = autostart.backend("linux", {"HOME": home, "XDG_CONFIG_HOME": str(tmp_path / "c")})
    assert isinstance(chosen, XdgAutostart)
    assert chosen.path == tmp_path / "c" / "autostart" / "tailnet-agent.desktop"
    mac = autostart.backend("darwin", {"HOME": home})
    assert isinstance(mac, LaunchAgent)
    assert mac.path == Path(home) / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def test_unsupported_platform() -> None:
    chosen = autostart.backend("plan9", {})
    assert isinstance(chosen, Unsupported)
    assert chosen.status() == AutostartState(
        False, False, "none", None, None, "starting at login is not supported on plan9"
    )
    with pytest.raises(AutostartError, match="plan9"):
        chosen.enable(["/bin/x"])
    with pytest.raises(AutostartError, match="plan9"):
        chosen.disable()


def test_cli_status_on_an_unsupported_platform(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "plan9")
    assert cli.main(["autostart", "status", "--json"]) == 3
    assert json.loads(capsys.readouterr().out) == {
        "supported": False,
        "enabled": False,
        "backend": "none",
        "location": None,
        "command": None,
        "detail": "starting at login is not supported on plan9",
    }
    assert cli.main(["autostart", "enable"]) == 3
    assert "not supported on plan9" in capsys.readouterr().err


# ==== what gets registered =====================================================


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("platform", "folder", "suffix"),
    [
        ("win32", "tailnet-agent", ".exe"),
        ("darwin", "tailnet-agent.app/Contents/MacOS", ""),
        ("linux", "tailnet-agent", ""),
    ],
)
def test_frozen_console_twin_registers_the_windowed_sibling(
    tmp_path: Path, platform: str, folder: str, suffix: str
) -> None:
    gui = touch(tmp_path / folder / f"tailnet-agent{suffix}")
    cli_exe = touch(tmp_path / folder / f"tailnet-agent-cli{suffix}")
    for started in (cli_exe, gui):
        argv = login_command(platform=platform, executable=str(started), frozen=True)
        assert argv == [str(gui)]


def test_frozen_console_twin_through_a_symlink(tmp_path: Path) -> None:
    macos = tmp_path / "Applications" / "tailnet-agent.app" / "Contents" / "MacOS"
    gui = touch(macos / "tailnet-agent")
    link = tmp_path / "usr-local-bin" / "tailnet-agent-cli"
    link.parent.mkdir()
    link.symlink_to(touch(macos / "tailnet-agent-cli"))
    assert login_command(platform="darwin", executable=str(link), frozen=True) == [str(gui)]


def test_frozen_console_twin_without_its_sibling_is_refused(tmp_path: Path) -> None:
    lonely = touch(tmp_path / "tailnet-agent-cli.exe")
    with pytest.raises(AutostartError, match=r"no tailnet-agent\.exe beside"):
        login_command(platform="win32", executable=str(lonely), frozen=True)


def test_frozen_detection_comes_from_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sys.frozen / sys._MEIPASS as PyInstaller sets them, sys.executable the console twin."""
    gui = touch(tmp_path / "dist" / "tailnet-agent")
    cli_exe = touch(tmp_path / "dist" / "tailnet-agent-cli")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "dist" / "_internal"), raising=False)
    monkeypatch.setattr(sys, "executable", str(cli_exe))
    assert login_command(platform="linux", node="laptop") == [str(gui), "--node", "laptop"]


def test_pip_install_on_windows_prefers_pythonw(tmp_path: Path) -> None:
    scripts = tmp_path / "venv" / "Scripts"
    python = touch(scripts / "python.exe")
    pythonw = touch(scripts / "pythonw.exe")
    script = touch(scripts / "tailnet-agent.exe")
    assert login_command(platform="win32", executable=str(python), frozen=False) == [
        str(pythonw),
        "-P",
        "-m",
        "agent",
    ]
    pythonw.unlink()
    assert login_command(platform="win32", executable=str(python), frozen=False) == [str(script)]
    script.unlink()
    assert login_command(platform="win32", executable=str(python), frozen=False) == [
        str(python),
        "-P",
        "-m",
        "agent",
    ]


def test_pip_install_registers_the_console_script(tmp_path: Path) -> None:
    python = touch(tmp_path / "venv" / "bin" / "python")
    script = touch(tmp_path / "venv" / "bin" / "tailnet-agent")
    assert login_command(platform="linux", executable=str(python), frozen=False) == [str(script)]
    script.unlink()  # `pip install --user`: the script is elsewhere; this interpreter runs it
    assert login_command(platform="linux", executable=str(python), frozen=False) == [
        str(python),
        "-P",
        "-m",
        "agent",
    ]


def test_this_install_registers_its_console_script() -> None:
    argv = login_command()
    assert argv == [str(Path(sys.executable).parent / "tailnet-agent")]
    assert os.access(argv[0], os.X_OK)


def test_options_are_appended_and_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = touch(tmp_path / "bin" / "python")
    script = touch(tmp_path / "bin" / "tailnet-agent")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def cmd(**options: str) -> list[str]:
        return login_command(platform="linux", executable=str(python), frozen=False, **options)

    assert cmd(topology="net.toml", node="desktop", tailscale="bin/ts") == [
        str(script),
        "--topology",
        str(tmp_path / "net.toml"),
        "--node",
        "desktop",
        "--tailscale",
        str(tmp_path / "bin" / "ts"),
    ]
    assert cmd(topology="~/t.toml")[2] == str(tmp_path / "home" / "t.toml")
    assert cmd(topology="https://example.invalid/t.toml")[2] == "https://example.invalid/t.toml"
    assert cmd(tailscale="tailscale")[1:] == ["--tailscale", "tailscale"]  # looked up on PATH
    assert cmd() == [str(script)]  # no command word: options alone start the tray


# ==== a second agent that launchd started ======================================


@pytest.mark.parametrize(
    ("platform", "service", "args", "code"),
    [
        ("darwin", LABEL, [], 0),  # launchd's RunAtLoad copy while the user's tray runs
        ("darwin", LABEL, ["tray"], 0),
        ("darwin", "0", [], 3),  # started from a terminal or Finder: the usual refusal
        ("darwin", LABEL, ["run", "--headless"], 3),
        ("linux", LABEL, [], 3),
    ],
)
def test_already_running_exits_0_only_for_the_launch_agent(
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    service: str,
    args: list[str],
    code: int,
) -> None:
    """KeepAlive {SuccessfulExit: false} restarts a job that exits non-zero every 10 s: the
    copy launchd starts on `autostart enable` while an agent runs must exit 0."""
    import agent.app
    from agent.edges.single_instance import AlreadyRunning

    def already(*_args: object, **_kwargs: object) -> int:
        raise AlreadyRunning("tailnet-agent is already running (pid 42)")

    monkeypatch.setattr(agent.app, "run_tray", already)
    monkeypatch.setattr(agent.app, "run_headless", already)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("XPC_SERVICE_NAME", service)
    monkeypatch.setattr("agent.edges.logs.setup_logging", lambda *_a, **_k: None)
    assert cli.main(args) == code
