"""Desktop notifications: the Notifier seam, one backend per platform, and the choice between them.

    notifier = choose_notifier(app_icon=Path(".../tailnet-agent.png"))
    notifier.notify("Backend offline", "FastAPI on macmini: connection refused", critical=True)

`notify` returns True once the notification was handed to the OS and False when that failed;
a failing backend logs (logging.getLogger(__name__)) and never raises. `critical=True` maps to
D-Bus urgency 2 ("critical": servers keep it until dismissed) where the backend allows it.

Backends and where each one is used (choose_notifier):

- DbusNotifier: Linux. Calls org.freedesktop.Notifications.Notify itself over dbus-fast (pure
  Python, the same library desktop-notifier uses on Linux). Chosen over plyer's Linux path,
  which (2.1.0) silently loses notifications when a directory /app exists (it assumes Flatpak
  and calls the portal through gdbus), needs dbus-python (a C extension that only builds with
  libdbus-1-dev and a compiler) or else falls back to notify-send, which drops the icon, sends
  "never expire", cannot say "critical" and ignores notify-send's exit status (a notification
  that failed was logged as shown). Here the urgency, icon and timeout are ours, a failure is
  an error reply we can see, and the bus address can be injected (tests).
- NotifySendNotifier: Linux's fallback: libnotify's `notify-send`, run with an argv list, its
  exit status read (it fails when no notification service answers).
- PlyerNotifier: Windows (plyer's balloon, shown as a toast; app_icon must be a .ico), and on
  Linux only plyer's dbus-python implementation (never its Flatpak portal guess, nor its
  notify-send path: NotifySendNotifier runs that honestly).
- DesktopNotifierBackend: the desktop-notifier library. macOS inside the signed .app
  (UNUserNotificationCenter); it also works on Linux over D-Bus, which is how it is tested.
- OsascriptNotifier: macOS outside the .app, and the fallback inside it:
  `osascript -e 'display notification "<msg>" with title "<title>"'`, one argv element, no shell.
- LogNotifier: the log only; the last fallback (headless servers, no session bus). Its
  `notify` returns False: nothing reached a desktop.

Every Linux backend needs the session bus. Where there is none (DBUS_SESSION_BUS_ADDRESS unset,
no $XDG_RUNTIME_DIR/bus, no X display to autolaunch one: a server, `run --headless` over ssh)
none of them is chosen, and choose_notifier says once that notifications go to the log only.

DbusNotifier and DesktopNotifierBackend run their asyncio code on a private event-loop thread,
so `notify` may be called from any thread, including one running its own asyncio loop (the
monitor). This edge imports only the core and third-party notification libraries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from agent import APP_NAME
from agent.core.ports import Notifier

__all__ = [
    "DbusNotifier",
    "DesktopNotifierBackend",
    "LogNotifier",
    "NotifierUnavailable",
    "NotifySendNotifier",
    "OsascriptNotifier",
    "PlyerNotifier",
    "applescript_string",
    "choose_notifier",
    "notifier_order",
    "session_bus_address",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

NOTIFICATIONS_NAME = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"
URGENCY_NORMAL = 1
URGENCY_CRITICAL = 2
SHOWN_MAX = 200  # keys remembered per notifier for `replaces` (the newest)
# How long a recovery waits for the late id of the alarm it replaces (D-Bus): then it is
# shown beside it rather than never.
REPLACE_WAIT_S = 10.0


class NotifierUnavailable(Exception):
    """A backend cannot work on this machine (raised at construction, never by notify)."""


# ==== helpers ==================================================================


class _LoopThread:
    """A private asyncio loop on a daemon thread: run coroutines from any thread, blocking."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop thread and wait for it (TimeoutError after `timeout` s)."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start `coro` on the loop thread; its future (the caller waits, or not)."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure())

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        if not thread.is_alive():
            loop.close()


async def _late_ids(calls: Sequence[concurrent.futures.Future[int]]) -> list[int]:
    """The ids the unanswered Notify `calls` get, in order, waiting up to REPLACE_WAIT_S;
    one that fails, or does not answer by then, has none."""
    waiting = [asyncio.wrap_future(call) for call in calls]
    await asyncio.wait(waiting, timeout=REPLACE_WAIT_S)
    ids = []
    for answer in waiting:
        if answer.done() and not answer.cancelled() and answer.exception() is None:
            ids.append(answer.result())
        else:
            log.debug("no id to replace: the notification server has not answered")
    return ids


def _disconnect(runner: _LoopThread, bus: Any, timeout_s: float, who: str) -> None:
    """Disconnect a dbus-fast bus (None: none was made) on its loop, then stop the loop."""

    async def disconnect() -> None:
        if bus is not None and bus.connected:
            bus.disconnect()
            await bus.wait_for_disconnect()

    try:
        runner.run(disconnect(), timeout_s)
    except Exception as exc:
        log.debug("%s disconnect: %s", who, exc)
    runner.close()


def _uri(path: Path | None) -> str:
    return path.resolve().as_uri() if path is not None else ""


class _Shown(Generic[T]):
    """The platform's ids of shown notifications, by key (the newest SHOWN_MAX; thread-safe)."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: str | None, native: T) -> None:
        if key is None:
            return
        with self._lock:
            self._ids[key] = native
            self._ids.move_to_end(key)
            while len(self._ids) > SHOWN_MAX:
                self._ids.popitem(last=False)

    def take(self, keys: Sequence[str]) -> list[T]:
        """Forget `keys`; their platform ids, in order, for those still known."""
        with self._lock:
            return [self._ids.pop(k) for k in keys if k in self._ids]


class _Unanswered:
    """Notify calls still waiting for the server's answer (their ids), by key (thread-safe):
    a recovery sent meanwhile takes them, to replace the alarm once its id arrives."""

    def __init__(self) -> None:
        self._calls: dict[str, concurrent.futures.Future[int]] = {}
        self._lock = threading.Lock()

    def add(self, key: str | None, call: concurrent.futures.Future[int]) -> None:
        if key is not None:
            with self._lock:
                self._calls[key] = call

    def take(self, keys: Sequence[str]) -> list[concurrent.futures.Future[int]]:
        """Forget `keys`; their calls, in order, for those still unanswered."""
        with self._lock:
            return [self._calls.pop(k) for k in keys if k in self._calls]

    def settle(self, key: str | None, call: concurrent.futures.Future[int]) -> bool:
        """Forget `call` answered; False when a recovery took it (its id is that one's)."""
        with self._lock:
            if key is None or self._calls.get(key) is not call:
                return False
            del self._calls[key]
            return True


NO_SESSION_BUS = "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus)"


def session_bus_address(env: Mapping[str, str] = os.environ) -> str | None:
    """The session bus as libdbus and GDBus find it: $DBUS_SESSION_BUS_ADDRESS, else the
    systemd user bus at $XDG_RUNTIME_DIR/bus; None when neither is there (dbus-fast alone
    looks only at the variable)."""
    address = env.get("DBUS_SESSION_BUS_ADDRESS", "")
    if address:
        return address
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and (Path(runtime) / "bus").is_socket():
        return f"unix:path={Path(runtime) / 'bus'}"
    return None


def _require_session_bus(env: Mapping[str, str]) -> None:
    """NotifierUnavailable when no session bus can be reached (an X display may autolaunch)."""
    if session_bus_address(env) is None and not env.get("DISPLAY"):
        raise NotifierUnavailable(NO_SESSION_BUS)


# ==== Linux: D-Bus =============================================================


class DbusNotifier:
    """org.freedesktop.Notifications over dbus-fast (Linux's default backend).

    The constructor connects to the session bus (or `bus_address`) and raises
    NotifierUnavailable when there is none. The notification daemon itself may appear later
    (autostart races the desktop), so its absence is a failed `notify`, not an init error.
    `replaces`: Notify with the replaces_id of the first one, CloseNotification for the rest.
    A Notify that outlasts `timeout_s` (a busy notification server) is not abandoned: it has
    been handed over, `notify` says "no answer yet" and returns True, and the late answer
    logs "shown late" and keeps the id, so a recovery still replaces that alarm. A recovery
    sent while that id is still unknown waits for it (up to REPLACE_WAIT_S, on the loop
    thread: `notify` itself does not wait longer) and then replaces the alarm.
    """

    name = "dbus"

    def __init__(
        self,
        *,
        app_name: str = APP_NAME,
        app_icon: Path | None = None,
        bus_address: str | None = None,
        expire_ms: int = 10_000,
        timeout_s: float = 5.0,
    ) -> None:
        if bus_address is None:
            _require_session_bus(os.environ)  # first: without a bus, dbus-fast is never loaded
        try:
            from dbus_fast.aio import MessageBus
        except ImportError as exc:
            raise NotifierUnavailable(f"dbus-fast is not installed: {exc}") from exc
        if bus_address is None:
            bus_address = session_bus_address()  # None: dbus-fast's own search (X11)
        self._message_bus = MessageBus
        self._app_name = app_name
        self._icon = _uri(app_icon)
        self._bus_address = bus_address
        self._expire_ms = expire_ms
        self._timeout_s = timeout_s
        self._runner = _LoopThread("tailnet-agent-dbus-notify")
        self._shown: _Shown[int] = _Shown()
        self._unanswered = _Unanswered()
        self._bus: Any = None
        self._connect_lock: asyncio.Lock | None = None  # made on the loop thread
        try:
            self._runner.run(self._connected(), timeout_s)
        except Exception as exc:
            self._runner.close()
            raise NotifierUnavailable(f"no D-Bus session bus: {exc}") from exc

    async def _connected(self) -> Any:
        """The bus connection, made again if it dropped (one connect at a time)."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._bus is None or not self._bus.connected:
                self._bus = await self._message_bus(bus_address=self._bus_address).connect()
            return self._bus

    async def _notify(
        self,
        title: str,
        message: str,
        critical: bool,
        stale: Sequence[int] = (),
        unanswered: Sequence[concurrent.futures.Future[int]] = (),
    ) -> int:
        from dbus_fast import Message, MessageType, Variant

        if unanswered:
            stale = [*stale, *await _late_ids(unanswered)]
        bus = await self._connected()
        urgency = URGENCY_CRITICAL if critical else URGENCY_NORMAL
        reply = await bus.call(
            Message(
                destination=NOTIFICATIONS_NAME,
                path=NOTIFICATIONS_PATH,
                interface=NOTIFICATIONS_NAME,
                member="Notify",
                signature="susssasa{sv}i",
                body=[
                    self._app_name,
                    stale[0] if stale else 0,  # replaces_id
                    self._icon,
                    title,
                    message,
                    [],
                    {"urgency": Variant("y", urgency)},
                    0 if critical else self._expire_ms,  # critical: until dismissed
                ],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            detail = reply.body[0] if reply is not None and reply.body else ""
            error = reply.error_name if reply is not None else "no reply"
            raise RuntimeError(f"{error}: {detail}".rstrip(": "))
        for other in stale[1:]:
            closed = await bus.call(
                Message(
                    destination=NOTIFICATIONS_NAME,
                    path=NOTIFICATIONS_PATH,
                    interface=NOTIFICATIONS_NAME,
                    member="CloseNotification",
                    signature="u",
                    body=[other],
                )
            )
            if closed is None or closed.message_type != MessageType.METHOD_RETURN:
                log.debug("notification %d not closed (already gone?)", other)
        return int(reply.body[0])

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        stale = self._shown.take(replaces)
        unanswered = self._unanswered.take(replaces)
        started = time.monotonic()
        call = self._runner.submit(self._notify(title, message, critical, stale, unanswered))
        try:
            notification_id = call.result(self._timeout_s)
        except TimeoutError:
            if call.done():  # the call's own TimeoutError (a connect that timed out)
                return self._failed(title, call.exception())
            # The call goes on: a busy server (or a loop held up here) answers late, and its
            # answer still names the notification a recovery replaces.
            self._unanswered.add(key, call)
            call.add_done_callback(lambda done: self._answered_late(done, title, key, started))
            log.warning(
                "no answer yet from the notification server (%s) after %.1f s: %r",
                self.name,
                self._timeout_s,
                title,
            )
            return True
        except Exception as exc:
            return self._failed(title, exc)
        self._shown.remember(key, notification_id)
        log.debug("notification %d sent (%s): %r", notification_id, self.name, title)
        return True

    def _failed(self, title: str, exc: BaseException | None) -> bool:
        log.warning("notification not delivered (%s): %r: %s", self.name, title, exc)
        return False

    def _answered_late(
        self, call: concurrent.futures.Future[int], title: str, key: str | None, started: float
    ) -> None:
        """The late answer of a Notify call `notify` stopped waiting for (on the loop thread)."""
        ours = self._unanswered.settle(key, call)
        if call.cancelled():  # the notifier closed first
            return
        exc = call.exception()
        if exc is not None:
            self._failed(title, exc)
            return
        notification_id = call.result()
        if ours:  # else a recovery has taken the id: it replaces this one
            self._shown.remember(key, notification_id)
        log.info(
            "notification %d shown late (%s), after %.1f s: %r",
            notification_id,
            self.name,
            time.monotonic() - started,
            title,
        )

    def close(self) -> None:
        """Disconnect and stop the loop thread (tests; the agent keeps it for its lifetime)."""
        _disconnect(self._runner, self._bus, self._timeout_s, self.name)


# ==== Linux fallback: notify-send ==============================================


class NotifySendNotifier:
    """libnotify's `notify-send`, run with an argv list; its exit status is the answer.

    It exits non-zero when it cannot reach the bus ("Cannot autolaunch D-Bus without X11
    $DISPLAY") or no notification service answers; that is a failed `notify`, logged with what
    it printed. The constructor raises NotifierUnavailable without notify-send or without a
    session bus. Where it knows --print-id and --replace-id (libnotify 0.7.10 and later, asked
    once through --help), `replaces` replaces the first one in place; it cannot close others.
    """

    name = "notify-send"

    def __init__(
        self,
        *,
        app_name: str = APP_NAME,
        app_icon: Path | None = None,
        executable: str | None = None,
        expire_ms: int = 10_000,
        timeout_s: float = 10.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        found = executable or shutil.which("notify-send")
        if not found:
            raise NotifierUnavailable("notify-send not found (apt-get install libnotify-bin)")
        _require_session_bus(os.environ if env is None else env)
        self._executable = found
        self._app_name = app_name
        self._icon = str(app_icon.resolve()) if app_icon is not None else ""
        self._expire_ms = expire_ms
        self._timeout_s = timeout_s
        self._shown: _Shown[int] = _Shown()
        self.knows_ids = self._knows_ids()

    def _knows_ids(self) -> bool:
        try:
            done = subprocess.run(  # noqa: S603 — the notifier found at start, fixed argv, no shell
                [self._executable, "--help"],
                capture_output=True,
                text=True,
                timeout=self._timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return "--print-id" in done.stdout and "--replace-id" in done.stdout

    def argv(
        self, title: str, message: str, *, critical: bool = False, replace_id: int = 0
    ) -> list[str]:
        """The command for one notification (options first, `--`, then summary and body)."""
        argv = [
            self._executable,
            f"--app-name={self._app_name}",
            f"--urgency={'critical' if critical else 'normal'}",
            f"--expire-time={0 if critical else self._expire_ms}",
        ]
        if self._icon:
            argv.append(f"--icon={self._icon}")
        if self.knows_ids:
            argv.append("--print-id")
            if replace_id:
                argv.append(f"--replace-id={replace_id}")
        # notify-send unescapes the body (g_strcompress: "\\t" would become a tab).
        return [*argv, "--", title, message.replace("\\", "\\\\")]

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        stale = self._shown.take(replaces)
        argv = self.argv(title, message, critical=critical, replace_id=stale[0] if stale else 0)
        done = _run_notifier(self.name, argv, title, self._timeout_s)
        if done is None:
            return False
        if self.knows_ids:
            try:
                self._shown.remember(key, int(done.stdout.split()[-1]))
            except (IndexError, ValueError):
                log.debug("notify-send printed no id: %r", done.stdout[:100])
        return True


# ==== plyer: Windows, Linux fallback ===========================================


def _plyer_implementation(platform: str) -> Any:
    """plyer's notification object for `platform`, picked here rather than by plyer's Proxy.

    Importing the platform module by name also lets PyInstaller see it (plyer's own lookup is
    a computed import that needs a hiddenimport).
    """
    if platform == "win32":
        from plyer.platforms.win import notification as win

        return win.instance()
    if platform.startswith("linux"):
        _require_session_bus(os.environ)  # first: without a bus, plyer is never loaded
        from plyer.platforms.linux import notification as linux

        if os.path.isdir("/app"):
            log.info("/app exists: not using plyer's Flatpak portal guess")
        try:
            importlib.import_module("dbus")
        except ImportError:
            raise NotifierUnavailable(
                "plyer needs dbus-python on Linux (its notify-send path is NotifySendNotifier)"
            ) from None
        return linux.NotifyDbus()
    raise NotifierUnavailable(f"plyer notifications are not used on {platform}")


class PlyerNotifier:
    """plyer.notification: Windows' backend (a balloon shown as a toast), Linux's fallback.

    On Windows `app_icon` must be a .ico (given a .png, the .ico beside it is used, else
    none); the toast carries the exe's name (app_name is
    ignored by Windows) and plyer shows it from its own thread, so success means "handed
    over". On Linux `critical` and the icon reach the server through plyer's dbus-python
    implementation, which raises when the call fails. `replaces` does nothing: the balloon
    cannot be taken back once given to Windows (it goes on its own after `timeout_s`, and
    Windows may keep it in the Action Center), and plyer drops the D-Bus id it got back.
    """

    name = "plyer"

    def __init__(
        self,
        *,
        platform: str = sys.platform,
        app_name: str = APP_NAME,
        app_icon: Path | None = None,
        timeout_s: int = 10,
        implementation: Any = None,
    ) -> None:
        try:
            self._impl = (
                implementation if implementation is not None else _plyer_implementation(platform)
            )
        except NotifierUnavailable:
            raise
        except Exception as exc:  # plyer's platform module failed to import
            raise NotifierUnavailable(f"plyer cannot notify here: {exc!r}") from exc
        self._platform = platform
        self._app_name = app_name
        if platform == "win32" and app_icon is not None and app_icon.suffix.lower() != ".ico":
            ico = app_icon.with_suffix(".ico")  # the balloon API only loads .ico files
            app_icon = ico if ico.exists() else None
        self._app_icon = str(app_icon) if app_icon is not None else ""
        self._timeout_s = timeout_s

    @property
    def app_icon(self) -> str:
        """The icon path handed to plyer ("" for none)."""
        return self._app_icon

    def _hints(self, critical: bool) -> dict[str, Any]:
        urgency = URGENCY_CRITICAL if critical else URGENCY_NORMAL
        try:  # dbus-python marshals a plain int as int32; the spec wants a byte
            dbus: Any = importlib.import_module("dbus")
            return {"urgency": dbus.Byte(urgency)}
        except ImportError:
            return {"urgency": urgency}

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        try:
            if self._platform.startswith("linux"):
                # plyer's facade forwards only some keys; its Linux implementations read
                # more (app_icon and hints: the urgency, for dbus-python).
                self._impl._notify(
                    title=title,
                    message=message,
                    app_name=self._app_name,
                    app_icon=self._app_icon,
                    icon=self._app_icon,
                    timeout=self._timeout_s,
                    expire_time=str(0 if critical else self._timeout_s * 1000),
                    urgency="critical" if critical else "normal",
                    hints=self._hints(critical),
                    ticker="",
                    toast=False,
                )
            else:
                self._impl.notify(
                    title=title,
                    message=message,
                    app_name=self._app_name,
                    app_icon=self._app_icon,
                    timeout=self._timeout_s,
                )
        except Exception as exc:
            log.warning("notification not delivered (%s): %r: %r", self.name, title, exc)
            return False
        log.debug("notification handed to plyer (%s): %r", type(self._impl).__name__, title)
        return True


# ==== desktop-notifier: macOS .app (and Linux) =================================


class DesktopNotifierBackend:
    """The desktop-notifier library (UNUserNotificationCenter in the signed .app, D-Bus on Linux).

    Raises NotifierUnavailable where the library would only use its silent dummy backend
    (macOS outside an app bundle, unsupported systems). It has no replace: for `replaces`
    each is cleared (removeDeliveredNotifications on macOS, CloseNotification on Linux) before
    the new one is sent.
    """

    name = "desktop-notifier"

    def __init__(
        self,
        *,
        app_name: str = APP_NAME,
        app_icon: Path | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        try:
            import desktop_notifier as dn
            from desktop_notifier.backends.dummy import DummyNotificationCenter
            from desktop_notifier.main import get_backend_class
        except ImportError as exc:
            raise NotifierUnavailable(f"desktop-notifier is not installed: {exc}") from exc
        if get_backend_class() is DummyNotificationCenter:
            raise NotifierUnavailable("desktop-notifier has no working backend here")
        self._dn = dn
        self._timeout_s = timeout_s
        icon = dn.Icon(path=app_icon.resolve()) if app_icon is not None else None
        self._notifier = dn.DesktopNotifier(app_name=app_name, app_icon=icon)
        self._runner = _LoopThread("tailnet-agent-desktop-notifier")
        self._shown: _Shown[str] = _Shown()

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        for identifier in self._shown.take(replaces):
            try:
                self._runner.run(self._notifier.clear(identifier), self._timeout_s)
            except Exception as exc:  # already dismissed: the library forgot it
                log.debug("desktop-notifier could not clear %s: %r", identifier, exc)
        dn = self._dn
        dispatched = threading.Event()  # the library logs failures instead of raising
        notification = dn.Notification(
            title=title,
            message=message,
            urgency=dn.Urgency.Critical if critical else dn.Urgency.Normal,
            # critical: until dismissed (0), as the other backends send it; the library's
            # default (-1) leaves that to the server. Ordinary ones: the server's default.
            timeout=0 if critical else -1,
            on_dispatched=dispatched.set,
        )
        try:
            self._runner.run(self._notifier.send_notification(notification), self._timeout_s)
        except Exception as exc:
            log.warning("notification not delivered (%s): %r: %r", self.name, title, exc)
            return False
        if not dispatched.is_set():
            log.warning("notification not delivered (%s): %r", self.name, title)
            return False
        self._shown.remember(key, notification.identifier)
        return True

    def close(self) -> None:
        """Drop the D-Bus connection (Linux) and stop the loop thread."""
        bus = getattr(getattr(self._notifier, "_backend", None), "bus", None)
        _disconnect(self._runner, bus, self._timeout_s, self.name)


# ==== macOS: osascript =========================================================


def applescript_string(text: str) -> str:
    """`text` as an AppleScript string literal: quoted, `\\` and `"` escaped, line breaks as \\n.

    Other control characters are dropped (they cannot be shown and could confuse the parser).
    """
    out = ['"']
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            continue
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


class OsascriptNotifier:
    """`osascript -e 'display notification ...'`: zero dependencies, always on macOS.

    Shown under Script Editor's name and icon; macOS may ask the user to allow it first.
    `replaces` does nothing: AppleScript cannot remove a notification it displayed.
    """

    name = "osascript"

    def __init__(self, *, executable: str | None = None, timeout_s: float = 10.0) -> None:
        found = executable or shutil.which("osascript")
        if not found:
            raise NotifierUnavailable("osascript not found")
        self._executable = found
        self._timeout_s = timeout_s

    @staticmethod
    def script(title: str, message: str) -> str:
        """The one AppleScript line passed after -e."""
        return (
            f"display notification {applescript_string(message)} "
            f"with title {applescript_string(title)}"
        )

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        argv = [self._executable, "-e", self.script(title, message)]
        return _run_notifier(self.name, argv, title, self._timeout_s) is not None


def _run_notifier(
    name: str, argv: Sequence[str], title: str, timeout_s: float
) -> subprocess.CompletedProcess[str] | None:
    """Run a notifier program (argv, no shell); None, logged, unless it said it delivered."""
    try:
        done = subprocess.run(  # noqa: S603 — a notifier argv built here, text as argv items, no shell
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("notification not delivered (%s): %r: %s", name, title, exc)
        return None
    if done.returncode != 0:
        log.warning(
            "notification not delivered (%s, exit %d): %r: %s",
            name,
            done.returncode,
            title,
            done.stderr.strip()[:300],
        )
        return None
    return done


# ==== the log ==================================================================


class LogNotifier:
    """Writes each notification to the log: the last fallback, and useful on headless servers.

    `notify` returns False, honestly: nothing was shown on a desktop (the monitor does not log
    "notification shown" for it; choose_notifier said once that notifications go to the log).
    """

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        level = logging.WARNING if critical else logging.INFO
        self._log.log(
            level,
            "notification (log only%s): %s: %s",
            ", critical" if critical else "",
            title,
            message,
        )
        return False


# ==== choosing =================================================================

NotifierFactory = Callable[[], Notifier]


def notifier_order(platform: str, frozen: bool) -> list[str]:
    """Backend names to try, best first, for a platform (sys.platform spelling)."""
    if platform == "darwin":
        return ["desktop-notifier", "osascript", "log"] if frozen else ["osascript", "log"]
    if platform == "win32":
        return ["plyer", "log"]
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return ["dbus", "notify-send", "plyer", "log"]
    return ["log"]


def _default_factories(platform: str, app_icon: Path | None) -> dict[str, NotifierFactory]:
    return {
        "desktop-notifier": lambda: DesktopNotifierBackend(app_icon=app_icon),
        "osascript": lambda: OsascriptNotifier(),
        "plyer": lambda: PlyerNotifier(platform=platform, app_icon=app_icon),
        "dbus": lambda: DbusNotifier(app_icon=app_icon),
        "notify-send": lambda: NotifySendNotifier(app_icon=app_icon),
        "log": lambda: LogNotifier(),
    }


def choose_notifier(
    platform: str = sys.platform,
    frozen: bool = False,
    *,
    app_icon: Path | None = None,
    factories: Mapping[str, NotifierFactory] | None = None,
) -> Notifier:
    """The best notifier that initialises here; LogNotifier when none does.

    macOS: desktop-notifier inside the frozen .app (`frozen`: the wiring passes
    agent.edges.paths.is_frozen()), else osascript. Windows: plyer. Linux:
    D-Bus (dbus-fast), then notify-send, then plyer (dbus-python). `app_icon` is a PNG on
    Linux, a .ico on Windows. `factories` (name -> zero-argument constructor) replace the
    defaults, for tests. When only the log is left, one warning says so and why.
    """
    available = dict(_default_factories(platform, app_icon))
    available.update(factories or {})
    why: dict[str, str] = {}
    for name in notifier_order(platform, frozen):
        try:
            notifier = available[name]()
        except Exception as exc:
            why[name] = str(exc) or type(exc).__name__
            log.info("notifier %s unavailable: %s", name, why[name])
            continue
        if isinstance(notifier, LogNotifier):
            break
        log.info("notifications via %s", notifier.name)
        return notifier
    reasons = sorted(set(why.values()), key=list(why.values()).index)
    log.warning(
        "no desktop notifications here (%s): notifications go to the log only",
        "; ".join(reasons) or f"none is used on {platform}",
    )
    return LogNotifier()
