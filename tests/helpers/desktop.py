"""A private, real Linux desktop for tests: Xvfb, a session D-Bus, a tray host, a notification log.

Everything runs as child processes of the test run and is stopped by PID in `close()`:

    desk = start_desktop()                      # Xvfb (-displayfd) + dbus-daemon (--session)
    try:
        strip = desk.start_tray_host()          # trayer; waits for the _NET_SYSTEM_TRAY_S0 owner
        log = desk.start_notification_server()  # tests/helpers/notification_server.py
        app = desk.spawn([sys.executable, "-m", "my.app"], name="app",
                         extra_env={"PYSTRAY_BACKEND": "gtk"})
        count, bbox = wait_for(lambda: hit(find_colour(desk.screenshot(), GREEN, region=strip)))
        desk.xdotool("mousemove", "17", "16", "click", "3")
        record = log.wait_for(lambda r: r["summary"] == "Backend down")
    finally:
        desk.close()

`DesktopEnv.env` is the environment every child gets (DISPLAY, DBUS_SESSION_BUS_ADDRESS,
NO_AT_BRIDGE=1, GDK_BACKEND=x11, GSETTINGS_BACKEND=memory, temporary HOME and XDG_* dirs,
PYTHONPATH with the repo), so GTK writes nothing outside the temp root.

A missing tool raises DesktopError naming the Debian package (tests fail, never skip).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from PIL import Image, ImageChops, ImageGrab

__all__ = [
    "APT_PACKAGES",
    "COLOUR_NAMES",
    "DesktopEnv",
    "DesktopError",
    "NotificationLog",
    "Region",
    "find_colour",
    "find_named_colour",
    "read_line",
    "require_pystray_backend",
    "require_tool",
    "start_desktop",
    "unix_sockets_allowed",
    "wait_for",
]

T = TypeVar("T")
Region = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)
RGB = tuple[int, int, int]

REPO = Path(__file__).resolve().parents[2]
NETGUARD_DIR = REPO / "tests" / "helpers" / "netguard"

TOOLS: dict[str, str] = {  # executable -> Debian package
    "Xvfb": "xvfb",
    "dbus-daemon": "dbus",
    "trayer": "trayer",
    "xdotool": "xdotool",
    "notify-send": "libnotify-bin",
    "desktop-file-validate": "desktop-file-utils",
}

APT_PACKAGES = (
    "xvfb trayer xdotool dbus libnotify-bin gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1 "
    "fonts-dejavu-core"
)
APT_LINE = f"apt-get install -y --no-install-recommends {APT_PACKAGES}"

# Variables of the outer session that must not leak into the private desktop.
_DROPPED_ENV = (
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
    "XAUTHORITY",
    "SESSION_MANAGER",
    "XDG_SESSION_TYPE",
    "XDG_CURRENT_DESKTOP",
    "XDG_SESSION_DESKTOP",
    "DESKTOP_SESSION",
    "GNOME_DESKTOP_SESSION_ID",
    "PYSTRAY_BACKEND",
)


class DesktopError(RuntimeError):
    """The private desktop could not be built: a tool is missing or a process failed."""


# ==== small tools ==============================================================


def require_tool(name: str) -> str:
    """The path of executable `name`, or DesktopError with the apt line that installs it."""
    path = shutil.which(name)
    if path is None:
        package = TOOLS.get(name, name)
        raise DesktopError(
            f"{name} not found: apt-get install -y --no-install-recommends {package}"
            f"  (all desktop-test packages: {APT_LINE})"
        )
    return path


PYSTRAY_BACKEND_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {  # typelib -> Debian package
    "gtk": (("Gtk-3.0", "gir1.2-gtk-3.0"),),
    "appindicator": (
        ("Gtk-3.0", "gir1.2-gtk-3.0"),
        ("AyatanaAppIndicator3-0.1", "gir1.2-ayatanaappindicator3-0.1"),
    ),
    "xorg": (),
}


def require_pystray_backend(backend: str) -> None:
    """DesktopError naming what to install when pystray's `backend` cannot load here."""
    needs = PYSTRAY_BACKEND_NEEDS.get(backend, ())
    if needs and importlib.util.find_spec("gi") is None:
        raise DesktopError(
            f"pystray's {backend} backend needs PyGObject: pip install 'PyGObject<3.51' "
            "(builds with: apt-get install -y --no-install-recommends gcc pkg-config "
            "libgirepository1.0-dev libcairo2-dev)"
        )
    dirs = [Path(p) for p in glob.glob("/usr/lib/*/girepository-1.0")]
    dirs += [Path("/usr/lib/girepository-1.0")]
    for typelib, package in needs:
        if not any((d / f"{typelib}.typelib").exists() for d in dirs):
            raise DesktopError(
                f"pystray's {backend} backend needs the {typelib} typelib: "
                f"apt-get install -y --no-install-recommends {package}"
            )


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    *,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Call `predicate` until it returns something truthy; return that. TimeoutError otherwise.

    The timeout is a hang guard, generous on purpose (shared CI machines are slow); the wait
    ends as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout} s (last: {last!r})")
        time.sleep(interval)
        last = predicate()
    return last


@contextlib.contextmanager
def unix_sockets_allowed() -> Iterator[None]:
    """Let this process connect Unix sockets (D-Bus, X11) while pytest-socket guards the rest.

    pytest-socket blocks AF_UNIX connects unless `--allow-unix-socket` is given; internet
    sockets stay exactly as guarded as before.
    """
    guarded = socket.socket.connect
    real = socket._socket.socket.connect  # type: ignore[attr-defined]

    def connect(sock: socket.socket, address: Any, /) -> None:
        if sock.family == socket.AF_UNIX:
            return real(sock, address)  # type: ignore[no-any-return]
        return guarded(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = guarded  # type: ignore[method-assign]


def find_colour(
    image: Image.Image,
    rgb: RGB,
    tol: int = 40,
    region: Region | None = None,
) -> tuple[int, Region | None]:
    """Count pixels within `tol` (per channel) of `rgb`; return (count, bbox in image coords)."""
    rgb_image = image.convert("RGB")
    left, top = 0, 0
    if region is not None:
        left, top = region[0], region[1]
        rgb_image = rgb_image.crop(region)
    diff = ImageChops.difference(rgb_image, Image.new("RGB", rgb_image.size, rgb))
    bands = [band.point(lambda v: 255 if v <= tol else 0) for band in diff.split()]
    mask = ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2])
    count = mask.histogram()[255]
    box = mask.getbbox()
    if box is None:
        return count, None
    return count, (box[0] + left, box[1] + top, box[2] + left, box[3] + top)


@dataclass(frozen=True)
class _HueBand:
    """What a person calls a colour: a hue range in degrees (start may be negative, wrapping
    past red), and saturation and value ranges (0-1, HSV)."""

    hue: tuple[float, float] | None
    saturation: tuple[float, float]
    value: tuple[float, float]


COLOUR_NAMES: Mapping[str, _HueBand] = {
    # Independent of the product's palette (agent.desktop.icons): a test that finds "red"
    # here finds what a person would call red, whatever the palette says.
    "green": _HueBand((90.0, 165.0), (0.4, 1.0), (0.35, 1.0)),
    "amber": _HueBand((25.0, 50.0), (0.55, 1.0), (0.55, 1.0)),
    "red": _HueBand((-15.0, 10.0), (0.45, 1.0), (0.4, 1.0)),
    "grey": _HueBand(None, (0.0, 0.15), (0.45, 0.72)),
}


def _within(band: Image.Image, low: float, high: float) -> Image.Image:
    return band.point(lambda v: 255 if low <= v <= high else 0)


def find_named_colour(
    image: Image.Image, name: str, region: Region | None = None
) -> tuple[int, Region | None]:
    """Count pixels a person would call `name` (a key of COLOUR_NAMES: green, amber, red,
    grey); return (count, bbox in image coords), as find_colour does."""
    band = COLOUR_NAMES[name]
    left, top = 0, 0
    if region is not None:
        left, top = region[0], region[1]
        image = image.crop(region)
    hue, sat, val = image.convert("RGB").convert("HSV").split()  # each 0-255
    mask = ImageChops.multiply(
        _within(sat, band.saturation[0] * 255, band.saturation[1] * 255),
        _within(val, band.value[0] * 255, band.value[1] * 255),
    )
    if band.hue is not None:
        low, high = (degrees * 255 / 360 for degrees in band.hue)
        hues = _within(hue, max(low, 0), high)
        if low < 0:
            hues = ImageChops.lighter(hues, _within(hue, 255 + low, 255))
        mask = ImageChops.multiply(mask, hues)
    count = mask.histogram()[255]
    box = mask.getbbox()
    if box is None:
        return count, None
    return count, (box[0] + left, box[1] + top, box[2] + left, box[3] + top)


def read_line(stream: IO[bytes] | int, timeout: float, what: str) -> str:
    """Read one line from a pipe (file or fd) within `timeout`, without blocking forever."""
    fd = stream if isinstance(stream, int) else stream.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DesktopError(f"{what}: no line within {timeout} s (got {data!r})")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            raise DesktopError(f"{what}: pipe closed (got {data!r})")
        data += chunk
    return data.decode().strip()


# ==== notifications ============================================================


@dataclass
class NotificationLog:
    """The capture server's JSONL file, read as a list of call records."""

    path: Path
    _start: int = 0

    def records(self, call: str = "Notify") -> list[dict[str, Any]]:
        """Records since the last `mark()`, of one kind of call ("" for all)."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()[self._start :]
        out = [json.loads(line) for line in lines if line.strip()]
        return [r for r in out if not call or r["call"] == call]

    def mark(self) -> None:
        """Forget what was recorded so far: later reads see only new calls."""
        if self.path.exists():
            self._start = len(self.path.read_text(encoding="utf-8").splitlines())

    def wait_for(
        self,
        match: Callable[[dict[str, Any]], bool] = lambda _r: True,
        timeout: float = 10.0,
        call: str = "Notify",
    ) -> dict[str, Any]:
        """The first record since the mark that `match` accepts, waiting for it to arrive."""

        def found() -> dict[str, Any] | None:
            return next((r for r in self.records(call) if match(r)), None)

        result = wait_for(found, timeout, message=f"no matching {call} in {self.path}")
        assert result is not None
        return result


# ==== the desktop ==============================================================


@dataclass
class DesktopEnv:
    """A running private desktop. Use `env` for every child; call `close()` in `finally`."""

    root: Path
    display: str
    bus_address: str
    env: dict[str, str]
    tray_region: Region | None = None
    notifications: NotificationLog | None = None
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _keep_root: bool = False

    # ---- processes -------------------------------------------------------------

    def spawn(
        self,
        argv: Sequence[str],
        *,
        name: str,
        extra_env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = subprocess.DEVNULL,
        cwd: Path | None = None,
        pass_fds: Sequence[int] = (),
    ) -> subprocess.Popen[bytes]:
        """Start a child with the desktop's env (+ `extra_env`); stderr goes to logs/<name>.log.

        It is stopped (SIGTERM, then SIGKILL) by `close()` unless `stop()` was called first.
        """
        env = dict(self.env)
        env.update(extra_env or {})
        log_path = self.log_path(name)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                env=env,
                stdin=stdin,
                stdout=stdout,
                stderr=log,
                cwd=cwd or REPO,
                pass_fds=tuple(pass_fds),
                start_new_session=True,
            )
        self._procs.append((name, proc))
        return proc

    def outside_connections(self) -> list[str]:
        """Addresses outside loopback that a Python child tried to reach (netguard's log)."""
        path = Path(self.env.get("NETGUARD_LOG", self.root / "logs" / "netguard.log"))
        if not path.exists():
            return []
        return [line.split()[1] for line in path.read_text().splitlines() if line.strip()]

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def log_tail(self, name: str, chars: int = 2000) -> str:
        """The end of a child's stderr, for failure messages."""
        path = self.log_path(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "<no log>"

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
        """Stop one child by PID (SIGTERM, SIGKILL after `timeout`); return its exit code."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._procs = [(n, p) for n, p in self._procs if p is not proc]
        assert proc.returncode is not None
        return proc.returncode

    def close(self) -> None:
        """Stop every child, newest first (apps, then tray host, bus, X), and remove the root."""
        errors: list[str] = []
        for name, proc in reversed(list(self._procs)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                errors.append(f"{name} (pid {proc.pid}): {exc!r}")
        if not self._keep_root:
            shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise DesktopError("could not stop: " + "; ".join(errors))

    def __enter__(self) -> DesktopEnv:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- parts -----------------------------------------------------------------

    def start_session_bus(self, name: str = "dbus-daemon", timeout: float = 15.0) -> str:
        """Start a private session dbus-daemon; return its address.

        start_desktop() starts the desktop's own bus; call this again (another `name`) for a
        second, empty bus, e.g. one where no notification server runs.
        """
        daemon = require_tool("dbus-daemon")
        bus = self.spawn(
            [daemon, "--session", "--nofork", "--print-address=1"],
            name=name,
            stdout=subprocess.PIPE,
        )
        assert bus.stdout is not None
        return read_line(bus.stdout, timeout, f"{name} --print-address")

    def start_tray_host(self, width: int = 300, height: int = 32, timeout: float = 15.0) -> Region:
        """Start trayer (an XEmbed system tray) at the top-left; return its strip's region."""
        trayer = require_tool("trayer")
        proc = self.spawn(
            [
                trayer,
                "--edge", "top",
                "--align", "left",
                "--widthtype", "pixel",
                "--width", str(width),
                "--heighttype", "pixel",
                "--height", str(height),
                "--SetDockType", "false",
                "--SetPartialStrut", "false",
                "--transparent", "false",
            ],
            name="trayer",
        )  # fmt: skip

        def owned() -> bool:
            if proc.poll() is not None:
                raise DesktopError(f"trayer exited {proc.returncode}: {self.log_tail('trayer')}")
            return self.tray_owner() != 0

        wait_for(owned, timeout, interval=0.03, message="no owner of _NET_SYSTEM_TRAY_S0")
        self.tray_region = (0, 0, width, height)
        return self.tray_region

    def tray_owner(self) -> int:
        """The X window id owning _NET_SYSTEM_TRAY_S0 (0 when no tray host runs)."""
        from Xlib import display as xdisplay

        with unix_sockets_allowed():
            conn = xdisplay.Display(self.display)
            try:
                atom = conn.intern_atom("_NET_SYSTEM_TRAY_S0")
                owner = conn.get_selection_owner(atom)
                # python-xlib gives int 0 for "no owner", a Window object otherwise.
                return int(getattr(owner, "id", owner))
            finally:
                conn.close()

    def window_titles(self) -> list[str]:
        """The _NET_WM_NAME of every viewable window on the screen. A docked GtkStatusIcon
        (pystray's gtk backend, and appindicator's fallback under trayer) carries its title,
        i.e. its tooltip, there."""
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib.error import XError

        with unix_sockets_allowed():
            conn = xdisplay.Display(self.display)
            try:
                net_wm_name = conn.intern_atom("_NET_WM_NAME")
                utf8 = conn.intern_atom("UTF8_STRING")
                titles: list[str] = []
                pending = list(conn.screen().root.query_tree().children)
                while pending:
                    window = pending.pop()
                    try:
                        prop = window.get_full_property(net_wm_name, utf8)
                        viewable = window.get_attributes().map_state == X.IsViewable
                        pending += window.query_tree().children
                    except XError:  # gone meanwhile
                        continue
                    if prop is not None and viewable:
                        titles.append(bytes(prop.value).decode("utf-8", "replace"))
                return titles
            finally:
                conn.close()

    def start_notification_server(
        self,
        timeout: float = 15.0,
        *,
        bus_address: str | None = None,
        answer_after_s: float = 0.0,
        name: str = "notification-server",
    ) -> NotificationLog:
        """Run the capture server on this bus (the desktop's own one becomes
        `notifications`), or on `bus_address` (another session bus of this desktop, e.g. for
        a server whose answers take `answer_after_s`); return its log once it owns the name."""
        log = NotificationLog(self.root / f"{name}.jsonl")
        argv = [sys.executable, "-m", "tests.helpers.notification_server", "--log", str(log.path)]
        argv += ["--address", bus_address or self.bus_address]
        if answer_after_s:
            argv += ["--answer-after", str(answer_after_s)]
        proc = self.spawn(argv, name=name, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        try:
            line = read_line(proc.stdout, timeout, "notification server")
        except DesktopError as exc:
            raise DesktopError(f"{exc}: {self.log_tail(name)}") from exc
        if not line.startswith("ready"):
            raise DesktopError(f"notification server said {line!r}")
        if bus_address is None:
            self.notifications = log
        return log

    # ---- looking and clicking --------------------------------------------------

    def screenshot(self, region: Region | None = None) -> Image.Image:
        """The X screen (or a region of it) as an RGB image."""
        image = ImageGrab.grab(bbox=region, xdisplay=self.display)
        return image.convert("RGB")

    def save_screenshot(self, path: Path, region: Region | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.screenshot(region).save(path, format="PNG")
        return path

    def xdotool(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run xdotool against this display (e.g. "mousemove", "17", "16", "click", "3")."""
        return subprocess.run(
            [require_tool("xdotool"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )


class _Fd:
    """An fd to close once (our copy of a pipe end handed to a child)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


def _child_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    home = root / "home"
    dirs = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_RUNTIME_DIR": root / "runtime",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    (root / "runtime").chmod(0o700)
    env.update({k: str(v) for k, v in dirs.items()})
    python_path = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    if (NETGUARD_DIR / "sitecustomize.py").exists():  # loopback-only guard for Python children
        python_path.insert(0, str(NETGUARD_DIR))
        env["NETGUARD_LOG"] = str(root / "logs" / "netguard.log")
    env.update(
        {
            "NO_AT_BRIDGE": "1",
            "GDK_BACKEND": "x11",
            "GSETTINGS_BACKEND": "memory",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            "LC_ALL": "C.UTF-8",
        }
    )
    return env


def start_desktop(
    *,
    screen: str = "1024x768x24",
    root: Path | None = None,
    keep_root: bool = False,
    timeout: float = 15.0,
) -> DesktopEnv:
    """Start Xvfb on a free display and a private session bus; return the DesktopEnv.

    `root` (default: a new temp dir) holds HOME, XDG dirs and the children's logs.
    """
    xvfb = require_tool("Xvfb")
    require_tool("dbus-daemon")
    made_root = root is None
    root = Path(tempfile.mkdtemp(prefix="tailnet-desktop-")) if root is None else root
    (root / "logs").mkdir(parents=True, exist_ok=True)
    env = _child_env(root)
    desk = DesktopEnv(
        root=root,
        display="",
        bus_address="",
        env=env,
        _keep_root=keep_root or not made_root,
    )
    try:
        read_fd, write_fd = os.pipe()
        try:
            with contextlib.closing(_Fd(write_fd)):
                desk.spawn(
                    [
                        xvfb,
                        "-displayfd", str(write_fd),
                        "-screen", "0", screen,
                        "-nolisten", "tcp",
                        "-noreset",
                    ],
                    name="Xvfb",
                    pass_fds=(write_fd,),
                )  # fmt: skip
            number = read_line(read_fd, timeout, "Xvfb -displayfd")
        finally:
            os.close(read_fd)
        desk.display = f":{int(number)}"
        desk.env["DISPLAY"] = desk.display

        desk.bus_address = desk.start_session_bus(timeout=timeout)
        desk.env["DBUS_SESSION_BUS_ADDRESS"] = desk.bus_address
    except BaseException:
        desk.close()
        raise
    return desk
