"""Start at login: which command starts the tray when the user logs in, and registering it.

This edge owns the one place per OS where "start at login" lives, and reads it back:

    Windows  HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run, value "tailnet-agent"
             (the installer's "Start at login" task writes the same value)
    macOS    ~/Library/LaunchAgents/io.github.tailnet-agent.plist, loaded with launchctl
    Linux    $XDG_CONFIG_HOME/autostart/tailnet-agent.desktop (XDG autostart)
    other    nothing: status() says why, enable() and disable() refuse

    command = login_command(topology="~/net.toml", node="laptop")   # absolute argv
    state = enable(command)      # AutostartState, read back after writing
    state = status()             # .supported, .enabled, .command, .location, .detail
    state = disable()

Each backend talks to its OS through one thin boundary that tests replace: a Registry object
(winreg), a runner for /bin/launchctl (argv lists, no shell, a timeout), and plain files under
a home or config folder given to it. status() only reads (a file or a registry value, never a
subprocess), so the tray can ask it often. Operational failures raise AutostartError (an
AgentError: a message a person can act on). Imports: paths and errors only, never the tray.
"""

from __future__ import annotations

import contextlib
import ntpath
import os
import posixpath
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from agent import APP_ID, APP_NAME, CLI_EXECUTABLE, GUI_EXECUTABLE
from agent.edges import paths
from agent.errors import AutostartError

__all__ = [
    "DESKTOP_FILE_NAME",
    "LAUNCHCTL",
    "LAUNCH_AGENT_LABEL",
    "RUN_KEY",
    "RUN_VALUE_NAME",
    "STARTUP_APPROVED_KEY",
    "Autostart",
    "AutostartState",
    "LaunchAgent",
    "Registry",
    "RunKey",
    "Runner",
    "Unsupported",
    "XdgAutostart",
    "backend",
    "desktop_exec",
    "disable",
    "enable",
    "format_command",
    "launched_at_login",
    "login_command",
    "parse_desktop_exec",
    "run_command",
    "split_windows_command_line",
    "status",
    "windows_command_line",
]

RUN_KEY: Final = r"Software\Microsoft\Windows\CurrentVersion\Run"
# Task Manager's / Settings' "Startup apps" switch: a REG_BINARY per Run value, first byte even
# (02, 06) = on, odd (03, ...) = off; no value = on. Windows keeps running the Run value's
# command only while this says on.
STARTUP_APPROVED_KEY: Final = (
    r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
)
RUN_VALUE_NAME: Final = APP_NAME  # the installer's [Registry] ValueName: the same value
LAUNCH_AGENT_LABEL: Final = APP_ID
LAUNCHCTL: Final = "/bin/launchctl"
LAUNCHCTL_TIMEOUT_S: Final = 15.0
DESKTOP_FILE_NAME: Final = f"{APP_NAME}.desktop"
COMMENT: Final = "Watches your Tailscale network: peers, links and services"


# ==== the state ================================================================


@dataclass(frozen=True, slots=True)
class AutostartState:
    """What is registered to start at login here, read back from where the OS keeps it."""

    supported: bool
    enabled: bool  # the OS will run `command` at the next login
    backend: str  # "run-key" | "launch-agent" | "xdg-autostart" | "none"
    location: str | None  # the registry value, plist or .desktop path (None: unsupported)
    command: tuple[str, ...] | None = None  # the registered argv (None: nothing registered)
    detail: str = ""  # why unsupported or disabled, or what else a person should know

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `tailnet-agent autostart ... --json`."""
        return {
            "supported": self.supported,
            "enabled": self.enabled,
            "backend": self.backend,
            "location": self.location,
            "command": list(self.command) if self.command is not None else None,
            "detail": self.detail,
        }


class Autostart(Protocol):
    """One OS's start-at-login place. enable/disable return the state read back afterwards."""

    name: str

    def status(self) -> AutostartState: ...

    def enable(self, command: Sequence[str]) -> AutostartState: ...

    def disable(self) -> AutostartState: ...


def _missing_program(command: Sequence[str], isabs: Callable[[str], bool]) -> str:
    """A note when the registered program is gone (a removed venv, a moved install)."""
    if command and isabs(command[0]) and not Path(command[0]).exists():
        return f"the registered program {command[0]} does not exist (any more)"
    return ""


def _check_command(command: Sequence[str], isabs: Callable[[str], bool]) -> list[str]:
    argv = [str(part) for part in command]
    if not argv or not isabs(argv[0]):
        raise AutostartError(f"start at login needs an absolute program path, not {argv!r}")
    for part in argv:
        if any(ord(c) < 0x20 or c == "\x7f" for c in part):
            raise AutostartError(f"start at login: control characters in argument {part!r}")
    return argv


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes 0600; launchd and desktops read it as the user
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise AutostartError(f"cannot remove {path}: {error.strerror or error}") from None


# ==== Windows: the Run key =====================================================


class Registry(Protocol):
    """The few HKEY_CURRENT_USER operations the Run key needs (winreg on Windows)."""

    def get(self, key: str, name: str) -> str | bytes | None:
        """The value's data (str for REG_SZ/REG_EXPAND_SZ, bytes for REG_BINARY), None if none."""
        ...

    def set_string(self, key: str, name: str, value: str) -> None:
        """Create the key if needed and set the value as REG_SZ."""
        ...

    def delete(self, key: str, name: str) -> None:
        """Delete the value; a missing key or value is fine."""
        ...


if sys.platform == "win32":
    import winreg

    class WinRegistry:
        """Registry through winreg, under HKEY_CURRENT_USER."""

        def get(self, key: str, name: str) -> str | bytes | None:
            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
                    value, kind = winreg.QueryValueEx(handle, name)
            except FileNotFoundError:
                return None
            if kind in (winreg.REG_SZ, winreg.REG_EXPAND_SZ) and isinstance(value, str):
                return value
            if kind == winreg.REG_BINARY and isinstance(value, bytes):
                return value
            return None

        def set_string(self, key: str, name: str, value: str) -> None:
            with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as h:
                winreg.SetValueEx(h, name, 0, winreg.REG_SZ, value)

        def delete(self, key: str, name: str) -> None:
            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as h:
                    winreg.DeleteValue(h, name)
            except FileNotFoundError:
                pass


def _windows_registry() -> Registry:
    if sys.platform == "win32":
        return WinRegistry()
    raise AutostartError("the Windows registry exists only on Windows")


def windows_command_line(command: Sequence[str]) -> str:
    """The Run value's data: the program always in quotes (as the installer writes it:
    `"C:\\...\\tailnet-agent.exe"`), then the arguments with the C runtime's quoting."""
    program, *rest = command
    if '"' in program:
        raise AutostartError(f'a Windows program path cannot contain ": {program!r}')
    line = f'"{program}"'
    return f"{line} {subprocess.list2cmdline(rest)}" if rest else line


def split_windows_command_line(line: str) -> list[str]:
    """Split a command line as CommandLineToArgvW and the C runtime do (the Run value's reader).

    The program name ends at the next quote when quoted, else at white space; in arguments,
    2n backslashes before a quote are n backslashes and the quote toggles quoting, 2n+1 are n
    and a literal quote; other backslashes are literal; "" inside quotes is a literal quote.
    """
    args: list[str] = []
    i, n = 0, len(line)
    while i < n and line[i] in " \t":
        i += 1
    if i < n and line[i] == '"':
        end = line.find('"', i + 1)
        end = n if end < 0 else end
        args.append(line[i + 1 : end])
        i = end + 1
    else:
        start = i
        while i < n and line[i] not in " \t":
            i += 1
        args.append(line[start:i])
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return args
        arg: list[str] = []
        quoted = False
        while i < n:
            c = line[i]
            if c == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                count = j - i
                if j < n and line[j] == '"':
                    arg.append("\\" * (count // 2))
                    if count % 2:
                        arg.append('"')
                        j += 1
                else:
                    arg.append("\\" * count)
                i = j
            elif c == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':
                    arg.append('"')
                    i += 2
                else:
                    quoted = not quoted
                    i += 1
            elif c in " \t" and not quoted:
                break
            else:
                arg.append(c)
                i += 1
        args.append("".join(arg))


class RunKey:
    """HKCU\\...\\Run value "tailnet-agent" = the quoted program and its arguments."""

    name = "run-key"

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.location = f"HKCU\\{RUN_KEY}\\{RUN_VALUE_NAME}"

    def status(self) -> AutostartState:
        try:
            data = self._registry.get(RUN_KEY, RUN_VALUE_NAME)
            approved = self._registry.get(STARTUP_APPROVED_KEY, RUN_VALUE_NAME)
        except OSError as error:
            raise AutostartError(f"cannot read {self.location}: {error}") from None
        if not isinstance(data, str) or not data.strip():
            return AutostartState(True, False, self.name, self.location, None, "no such value")
        command = tuple(split_windows_command_line(data))
        if isinstance(approved, bytes) and approved and approved[0] & 1:
            why = "turned off in Windows' Startup apps (Task Manager or Settings)"
            return AutostartState(True, False, self.name, self.location, command, why)
        note = _missing_program(command, ntpath.isabs)
        return AutostartState(True, True, self.name, self.location, command, note)

    def enable(self, command: Sequence[str]) -> AutostartState:
        data = windows_command_line(_check_command(command, ntpath.isabs))
        try:
            self._registry.set_string(RUN_KEY, RUN_VALUE_NAME, data)
            # Asked for explicitly, so it must really run: clear a Startup apps "off" switch.
            self._registry.delete(STARTUP_APPROVED_KEY, RUN_VALUE_NAME)
        except OSError as error:
            raise AutostartError(f"cannot write {self.location}: {error}") from None
        return self.status()

    def disable(self) -> AutostartState:
        try:
            self._registry.delete(RUN_KEY, RUN_VALUE_NAME)
            self._registry.delete(STARTUP_APPROVED_KEY, RUN_VALUE_NAME)
        except OSError as error:
            raise AutostartError(f"cannot remove {self.location}: {error}") from None
        return self.status()


# ==== macOS: a LaunchAgent =====================================================

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def run_command(
    argv: Sequence[str], timeout: float = LAUNCHCTL_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run argv (a list, no shell) with a timeout; a missing program or a hang is a failure."""
    try:
        return subprocess.run(  # noqa: S603 — reg/launchctl argv built here, no shell
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"no answer within {timeout:g} s")
    except OSError as error:
        return subprocess.CompletedProcess(list(argv), 127, "", str(error))


def launched_at_login(env: Mapping[str, str] = os.environ, platform: str | None = None) -> bool:
    """True in the process launchd started from our LaunchAgent (launchd sets XPC_SERVICE_NAME
    to the job's label in the job's environment; a Terminal or Finder start has another)."""
    platform = sys.platform if platform is None else platform
    return platform == "darwin" and env.get("XPC_SERVICE_NAME") == LAUNCH_AGENT_LABEL


def _first_line(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return text.splitlines()[0] if text else f"exit status {result.returncode}"


class LaunchAgent:
    """~/Library/LaunchAgents/<APP_ID>.plist, loaded into the user's GUI launchd domain.

    RunAtLoad starts the agent at login; KeepAlive {SuccessfulExit: false} restarts it after a
    crash but not after Quit (exit 0). When an agent already runs, the one launchd starts on
    bootstrap finds the instance lock taken and exits 0 (see launched_at_login and agent.cli),
    so launchd leaves it be instead of restarting it every 10 s.
    """

    name = "launch-agent"

    def __init__(
        self,
        home: Path,
        *,
        uid: int,
        runner: Runner = run_command,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.path = home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
        self.location = str(self.path)
        self._domain = f"gui/{uid}"
        self._runner = runner
        self._env = env

    @staticmethod
    def plist(command: Sequence[str]) -> dict[str, Any]:
        """The LaunchAgent for `command`. No StandardOut/ErrorPath: the agent logs to its own
        rotating file, and launchd would grow those files forever."""
        return {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "ProcessType": "Interactive",  # a UI the user waits for: no background throttling
        }

    def _launchctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._runner([LAUNCHCTL, *args])

    def _loaded(self) -> bool:
        return self._launchctl("print", f"{self._domain}/{LAUNCH_AGENT_LABEL}").returncode == 0

    def status(self) -> AutostartState:
        import plistlib  # here: xml.parsers.expat, which only macOS's backend needs

        try:
            with self.path.open("rb") as handle:
                data = plistlib.load(handle)
        except FileNotFoundError:
            return AutostartState(True, False, self.name, self.location, None, "no such file")
        except (OSError, plistlib.InvalidFileException, ValueError) as error:
            why = f"unreadable ({error}); `tailnet-agent autostart enable` rewrites it"
            return AutostartState(True, False, self.name, self.location, None, why)
        args = data.get("ProgramArguments") if isinstance(data, dict) else None
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args) or not args:
            why = "it has no ProgramArguments; `tailnet-agent autostart enable` rewrites it"
            return AutostartState(True, False, self.name, self.location, None, why)
        command = tuple(args)
        if data.get("Disabled") is True:
            return AutostartState(True, False, self.name, self.location, command, "Disabled=true")
        note = _missing_program(command, posixpath.isabs)
        return AutostartState(True, True, self.name, self.location, command, note)

    def enable(self, command: Sequence[str]) -> AutostartState:
        import plistlib

        argv = _check_command(command, posixpath.isabs)
        try:
            _write_atomically(self.path, plistlib.dumps(self.plist(argv)))
        except OSError as error:
            raise AutostartError(f"cannot write {self.path}: {error.strerror or error}") from None
        # Load it now too. A failing bootstrap is not an error: the file is what launchd reads
        # at the next login. When it failed because the job is already loaded (launchctl says
        # "5: Input/output error" then), that is fine: it is the agent launchd started at this
        # login, maybe this very process; booting it out first would kill it.
        notes: list[str] = []
        loaded = self._launchctl("bootstrap", self._domain, str(self.path))
        if loaded.returncode != 0:
            if self._loaded():
                notes.append("already loaded in launchd; the new file applies at the next login")
            else:
                notes.append(
                    f"launchctl bootstrap failed ({_first_line(loaded)}); "
                    "launchd loads it at the next login"
                )
        state = self.status()
        return _with_note(state, *notes)

    def disable(self) -> AutostartState:
        _remove(self.path)
        notes: list[str] = []
        if launched_at_login(self._env, "darwin"):
            # This process is the job: bootout would stop the very tray that was asked. Without
            # the file launchd does not load it at the next login; until then Quit ends it.
            notes.append("this agent keeps running; it does not start at the next login")
        else:
            result = self._launchctl("bootout", f"{self._domain}/{LAUNCH_AGENT_LABEL}")
            if result.returncode != 0 and self._loaded():
                notes.append(
                    f"launchctl bootout failed ({_first_line(result)}); "
                    "the job stays loaded until logout"
                )
        return _with_note(self.status(), *notes)


def _with_note(state: AutostartState, *notes: str) -> AutostartState:
    text = "; ".join(n for n in (state.detail, *notes) if n)
    return AutostartState(
        state.supported, state.enabled, state.backend, state.location, state.command, text
    )


# ==== Linux and other XDG desktops: an autostart .desktop file =================

# Desktop Entry spec, "The Exec key": an argument containing one of these must be quoted.
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
_EXEC_ESCAPED = re.compile(r'(["`$\\])')  # escaped with a backslash inside quotes


def _exec_quote(arg: str) -> str:
    quoted = arg
    if not arg or any(c in _EXEC_RESERVED for c in arg):
        quoted = '"' + _EXEC_ESCAPED.sub(r"\\\1", arg) + '"'
    return quoted.replace("%", "%%")  # a literal % is %% (field codes), inside quotes too


def _string_escape(value: str) -> str:
    """The spec's escapes for string values, applied after the Exec quoting."""
    return value.replace("\\", "\\\\")


def desktop_exec(command: Sequence[str]) -> str:
    """The Exec= value (as written in the file) that runs exactly `command`."""
    if "=" in command[0]:
        raise AutostartError(f"an Exec program path cannot contain '=': {command[0]!r}")
    return _string_escape(" ".join(_exec_quote(arg) for arg in command))


def _string_unescape(value: str) -> str:
    out: list[str] = []
    escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and value[i + 1] in escapes:
            out.append(escapes[value[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_desktop_exec(value: str) -> list[str]:
    """The argv of an Exec= value as written in the file (string escapes, quoting, %%).

    Field codes (%f, %u, ...) expand to nothing here: an autostart entry gets no files.
    Raises ValueError on an unterminated quote.
    """
    line = _string_unescape(value)
    args: list[str] = []
    current: list[str] = []
    started = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == '"':
            started = True
            i += 1
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n and line[i + 1] in '"`$\\':
                    current.append(line[i + 1])
                    i += 2
                elif line[i] == "%" and i + 1 < n and line[i + 1] == "%":
                    current.append("%")
                    i += 2
                else:
                    current.append(line[i])
                    i += 1
            if i >= n:
                raise ValueError(f"unterminated quote in Exec={value}")
            i += 1
        elif c in " \t\n":
            if started:
                args.append("".join(current))
                current, started = [], False
            i += 1
        elif c == "%" and i + 1 < n:
            if line[i + 1] == "%":
                current.append("%")
                started = True
            i += 2
        else:
            current.append(c)
            started = True
            i += 1
    if started:
        args.append("".join(current))
    return args


def _read_desktop_entry(text: str) -> dict[str, str]:
    """The [Desktop Entry] group's keys (localised keys such as Name[de] are skipped)."""
    entry: dict[str, str] = {}
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
            continue
        if group == "Desktop Entry" and "=" in line:
            key, _, value = line.partition("=")
            entry.setdefault(key.strip(), value.strip())
    return entry


class XdgAutostart:
    """$XDG_CONFIG_HOME/autostart/tailnet-agent.desktop (freedesktop autostart spec)."""

    name = "xdg-autostart"

    def __init__(self, config_home: Path, *, icon: Path | None = None) -> None:
        self.path = config_home / "autostart" / DESKTOP_FILE_NAME
        self.location = str(self.path)
        self._icon = icon

    def desktop_file(self, command: Sequence[str]) -> str:
        lines = [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.4",  # 1.5 is refused by Debian 12's desktop-file-validate 0.26
            f"Name={APP_NAME}",
            f"Comment={COMMENT}",
            f"Exec={desktop_exec(command)}",
        ]
        if self._icon is not None:
            lines.append(f"Icon={_string_escape(str(self._icon))}")
        lines += ["Terminal=false", "X-GNOME-Autostart-enabled=true", ""]
        return "\n".join(lines)

    def status(self) -> AutostartState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return AutostartState(True, False, self.name, self.location, None, "no such file")
        except (OSError, UnicodeDecodeError) as error:
            why = f"unreadable ({error}); `tailnet-agent autostart enable` rewrites it"
            return AutostartState(True, False, self.name, self.location, None, why)
        entry = _read_desktop_entry(text)
        try:
            command = tuple(parse_desktop_exec(entry.get("Exec", "")))
        except ValueError as error:
            return AutostartState(True, False, self.name, self.location, None, str(error))
        if not command:
            why = "it has no Exec line; `tailnet-agent autostart enable` rewrites it"
            return AutostartState(True, False, self.name, self.location, None, why)
        # The autostart spec: Hidden=true means "as if the file did not exist"; GNOME's
        # Startup Applications switch writes X-GNOME-Autostart-enabled=false.
        if entry.get("Hidden", "").lower() == "true":
            return AutostartState(True, False, self.name, self.location, command, "Hidden=true")
        if entry.get("X-GNOME-Autostart-enabled", "").lower() == "false":
            why = "X-GNOME-Autostart-enabled=false (turned off in the desktop's startup apps)"
            return AutostartState(True, False, self.name, self.location, command, why)
        note = _missing_program(command, posixpath.isabs)
        return AutostartState(True, True, self.name, self.location, command, note)

    def enable(self, command: Sequence[str]) -> AutostartState:
        text = self.desktop_file(_check_command(command, posixpath.isabs))
        try:
            _write_atomically(self.path, text.encode("utf-8"))
        except OSError as error:
            raise AutostartError(f"cannot write {self.path}: {error.strerror or error}") from None
        return self.status()

    def disable(self) -> AutostartState:
        _remove(self.path)
        return self.status()


# ==== nowhere ==================================================================


class Unsupported:
    """No start-at-login place on this system: status says why; enable/disable refuse."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def status(self) -> AutostartState:
        return AutostartState(False, False, self.name, None, None, self.reason)

    def enable(self, command: Sequence[str]) -> AutostartState:
        raise AutostartError(self.reason)

    def disable(self) -> AutostartState:
        raise AutostartError(self.reason)


# ==== choosing one, and the module-level interface =============================


def _xdg_config_home(env: Mapping[str, str]) -> Path:
    value = env.get("XDG_CONFIG_HOME", "")
    if value and os.path.isabs(value):  # the basedir spec: relative values are ignored
        return Path(value)
    return Path(env.get("HOME") or Path.home()) / ".config"


def _uid() -> int:
    if sys.platform != "win32":
        return os.getuid()
    raise AutostartError("launchd domains exist only on macOS")


def backend(platform: str | None = None, env: Mapping[str, str] = os.environ) -> Autostart:
    """The start-at-login backend for `platform` (sys.platform spelling; default: this one)."""
    platform = sys.platform if platform is None else platform
    if platform == "win32":
        return RunKey(_windows_registry())
    if platform == "darwin":
        return LaunchAgent(Path(env.get("HOME") or Path.home()), uid=_uid(), env=env)
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd", "dragonfly", "sunos")):
        return XdgAutostart(_xdg_config_home(env), icon=paths.app_icon_path())
    return Unsupported(f"starting at login is not supported on {platform}")


def status() -> AutostartState:
    """What is registered here (reads a file or one registry value; no subprocess)."""
    return backend().status()


def enable(command: Sequence[str]) -> AutostartState:
    """Register `command` (absolute argv, e.g. login_command()) to start at login."""
    return backend().enable(command)


def disable() -> AutostartState:
    """Remove the registration (nothing registered is fine)."""
    return backend().disable()


def format_command(state: AutostartState) -> str:
    """The registered command as one line, quoted the way its OS reads it."""
    if state.command is None:
        return ""
    if state.backend == RunKey.name:
        return windows_command_line(state.command)
    return shlex.join(state.command)


# ==== what to register =========================================================


def _program(platform: str, executable: str, frozen: bool) -> list[str]:
    """The start of the login command: the windowed program of this install."""
    exe_suffix = ".exe" if platform == "win32" else ""
    if frozen:
        # A PyInstaller build: the windowed tray and its console twin share one folder (on
        # macOS tailnet-agent.app/Contents/MacOS). Never register the console twin: on Windows
        # it would open a console window at every login.
        exe = Path(os.path.realpath(executable))
        if exe.name.lower() == f"{CLI_EXECUTABLE}{exe_suffix}".lower():
            gui = exe.with_name(f"{GUI_EXECUTABLE}{exe_suffix}")
            if not gui.is_file():
                raise AutostartError(
                    f"no {gui.name} beside {exe}: start at login registers the windowed "
                    "program, not the console one"
                )
            return [str(gui)]
        return [str(exe)]
    python = Path(os.path.abspath(executable))  # not resolved: a venv's python is a symlink
    if platform == "win32":
        # pythonw.exe has no console, so no window flashes up at login, and -m agent runs this
        # environment's agent (the tailnet-agent.exe launcher is a console program). -P keeps
        # the login folder out of sys.path.
        pythonw = python.with_name("pythonw.exe")
        if pythonw.is_file():
            return [str(pythonw), "-P", "-m", "agent"]
    script = python.parent / f"{GUI_EXECUTABLE}{exe_suffix}"  # the console script
    if script.is_file():
        return [str(script)]
    return [str(python), "-P", "-m", "agent"]  # e.g. `pip install --user`: script elsewhere


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def login_command(
    *,
    topology: str | None = None,
    node: str | None = None,
    tailscale: str | None = None,
    platform: str | None = None,
    executable: str | None = None,
    frozen: bool | None = None,
) -> list[str]:
    """The argv that starts this install's tray at login, with the user's options.

    No command word: `tailnet-agent --topology P --node ID` starts the tray. Paths become
    absolute (a login starts in another folder); a topology URL and a bare `tailscale` name
    (looked up on PATH) stay as given.
    """
    argv = _program(
        sys.platform if platform is None else platform,
        sys.executable if executable is None else executable,
        paths.is_frozen() if frozen is None else frozen,
    )
    if topology:
        argv += ["--topology", topology if "://" in topology else _absolute(topology)]
    if node:
        argv += ["--node", node]
    if tailscale:
        has_dir = any(sep in tailscale for sep in ("/", "\\")) or tailscale.startswith("~")
        argv += ["--tailscale", _absolute(tailscale) if has_dir else tailscale]
    return argv
