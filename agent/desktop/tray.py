"""The tray edge: the one module that talks to pystray (icon, tooltip, menu, clicks).

`Tray` shows the latest TrayView: the icon colour (desktop.icons.render_icon, with its pause badge
while notifications are paused), the tooltip ("… · notifications paused until 14:00") and
the menu built by agent.core.menu, and hands every click to `on_action(menu_action)`. pystray
is imported lazily, inside methods: `import pystray` picks its backend at import time and
raises (Xlib's DisplayNameError, not ImportError) where there is no display.

Threads — workers publish, one UI thread applies (desktop-pitfalls.md section 1):

    backend        what pystray allows from other threads   how publish() reaches the UI
    gtk            marshals itself (GObject.idle_add)        GLib.idle_add(apply)
    appindicator   marshals itself (GObject.idle_add)        GLib.idle_add(apply)
    darwin         nothing: AppKit on a worker thread gets   PyObjCTools.AppHelper.callAfter
                   the process killed (SIGTRAP) on recent
                   macOS
    win32          icon/tooltip via Shell_NotifyIcon from    a dedicated refresher thread
                   any thread; update_menu races the window  applies under a lock; the menu
                   procedure (pystray#60, open)              only when its text changed and
                                                             not while it is open (retried)
    xorg           writes to its X connection from the       _XorgLoop: a ClientMessage over
                   calling thread while its loop uses it     a second X connection wakes the
                   too; python-xlib then loses writes (quit  loop, which applies (no menu);
                   hung with DestroyWindow still queued)     show and stop() go the same way

`publish` never blocks on the UI: it stores the view and asks for one apply; views that
arrive before the apply ran are coalesced (the newest wins). The icon image is set only when
the colour or the pause changes (Windows writes a temporary .ico each time), the menu only when
its entries changed.

For the composition root: `tray_available()` (can a tray run here, and if not, why). What the
menu's clicks do outside the agent (open, copy) is agent.desktop.actions.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.core.menu import (
    MenuAction,
    MenuEntry,
    MonitorStatus,
    TrayView,
    build_menu,
    overall_health,
    tooltip,
)
from agent.core.model import Health
from agent.desktop.icons import render_icon

__all__ = [
    "NO_DISPLAY",
    "Tray",
    "TrayCounters",
    "backend_name",
    "local_time",
    "to_pystray_menu",
    "tray_available",
]

log = logging.getLogger(__name__)

NO_DISPLAY = "no display (DISPLAY/WAYLAND_DISPLAY unset): run `tailnet-agent run --headless`"
_SELF_MARSHALLING = frozenset({"gtk", "appindicator"})  # apply through GLib.idle_add
_MAIN_THREAD_ONLY = frozenset({"darwin"})  # apply through AppHelper.callAfter
_OWN_LOOP = frozenset({"xorg"})  # apply through _XorgLoop, on pystray's loop thread
_POSTED = _SELF_MARSHALLING | _MAIN_THREAD_ONLY | _OWN_LOOP  # the rest: the refresher thread
_NEEDS_SESSION_BUS = frozenset({"gtk", "appindicator"})  # hang at run() without one
MENU_RETRY_S = 0.5  # win32: how soon a menu update held back by an open menu is retried
_GUI_INMENUMODE = 0x0004  # GUITHREADINFO.flags (winuser.h)
_GUI_POPUPMENUMODE = 0x0010


# ==== pystray, lazily ==========================================================


def _pystray() -> Any:
    """`import pystray`, which binds the backend (PYSTRAY_BACKEND or auto) on first use."""
    import pystray

    return pystray


def backend_name(pystray: Any = None) -> str:
    """The backend pystray bound at import: gtk, appindicator, xorg, win32, darwin or dummy."""
    module = str((pystray or _pystray()).Icon.__module__)  # e.g. "pystray._gtk"
    name = module.rsplit(".", 1)[-1].lstrip("_")
    return "dummy" if name == "base" else name  # the dummy backend is the abstract base Icon


def local_time(wall: float) -> str:
    """ "14:05" today, "Tue 14:05" on another day: times in the menu."""
    when = time.localtime(wall)
    today = time.localtime()
    if when[:3] == today[:3]:
        return time.strftime("%H:%M", when)
    return time.strftime("%a %H:%M", when)


_LATIN1 = str.maketrans({"—": "-", "–": "-", "…": "...", "✓": "ok", "‘": "'", "’": "'"})


def _title(text: str, backend: str) -> str:
    """The tooltip as the backend can carry it: xorg writes WM_NAME as Latin-1."""
    if backend != "xorg":
        return text
    return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


def _label(text: str, backend: str) -> str:
    """Menu text as the native menu shows it literally (Windows takes "&" as a mnemonic)."""
    return text.replace("&", "&&") if backend == "win32" else text


def to_pystray_menu(
    entries: Sequence[MenuEntry],
    on_action: Callable[[MenuAction], None],
    backend: str | None = None,
) -> Any:
    """The pystray.Menu for `entries`: each click calls `on_action(entry.action)`."""
    pystray = _pystray()
    backend = backend or backend_name(pystray)

    def item(entry: MenuEntry) -> Any:
        if entry.separator:
            return pystray.Menu.SEPARATOR
        action: Any
        if entry.children:
            action = pystray.Menu(*(item(child) for child in entry.children))
        elif entry.action is not None:
            action = _clicker(entry.action, on_action)
        else:
            action = None
        checked = entry.checked
        return pystray.MenuItem(
            _label(entry.text, backend),
            action,
            checked=None if checked is None else (lambda _item, value=checked: value),
            default=entry.default,
            enabled=entry.enabled,
        )

    return pystray.Menu(*(item(entry) for entry in entries))


def _clicker(
    action: MenuAction, on_action: Callable[[MenuAction], None]
) -> Callable[[Any, Any], None]:
    def clicked(_icon: Any, _item: Any) -> None:
        try:
            on_action(action)
        except Exception:  # a failing action must not take the UI loop down
            log.exception("menu action %r failed", str(action))

    return clicked


# ==== the tray =================================================================


@dataclass(frozen=True, slots=True)
class TrayCounters:
    """What the tray did so far (for the log and the tests): applies and what they changed."""

    applied: int = 0  # views applied on the UI side (after coalescing)
    icon_changes: int = 0  # icon images set (Windows writes a temp .ico for each)
    menu_rebuilds: int = 0  # pystray menus built and installed


class Tray:
    """The tray icon and its menu. Single use: construct, publish any time, run() once."""

    def __init__(
        self,
        on_action: Callable[[MenuAction], None],
        *,
        title: str = "tailnet-agent",
        icon_size: int = 64,
    ) -> None:
        self._on_action = on_action
        self._title = title
        self._icon_size = icon_size
        self._lock = threading.Lock()  # guards _view, _icon, _backend, _pending
        self._apply_lock = threading.Lock()  # one apply at a time, whatever thread runs it
        self._view: TrayView | None = None
        self._icon: Any = None
        self._backend = ""
        self._pending = False
        self._stopping = threading.Event()
        self._wake = threading.Event()  # refresher backends: a view is waiting
        self._refresher: threading.Thread | None = None
        self._xorg: _XorgLoop | None = None  # set in run() before the icon is published
        self._shown_icon: tuple[Health, bool] | None = None  # (colour, paused)
        self._shown_title: str | None = None
        self._shown_entries: tuple[MenuEntry, ...] | None = None
        self._counters = TrayCounters()
        self._ui_thread_id = 0  # native id of the thread in run()

    # ---- any thread ------------------------------------------------------------

    def publish(self, view: TrayView) -> None:
        """Show `view` (thread-safe, never blocks on the UI). Before run(): kept for the start."""
        with self._lock:
            self._view = view
            if self._icon is None or self._pending or self._stopping.is_set():
                return
            self._pending = True
            backend = self._backend
        self._request_apply(backend)

    def stop(self) -> None:
        """End run() (thread-safe; a no-op once stopped). Stopping before run() skips it."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            icon, backend = self._icon, self._backend
        if icon is None:
            return
        if backend in _OWN_LOOP or (
            backend in _MAIN_THREAD_ONLY
            and threading.current_thread() is not threading.main_thread()
        ):
            self._call_on_ui(backend, icon.stop)
        else:
            icon.stop()

    @property
    def counters(self) -> TrayCounters:
        """Applies so far, and how many changed the icon or rebuilt the menu."""
        return self._counters

    @property
    def backend(self) -> str:
        """The pystray backend in use ("" before run())."""
        return self._backend

    # ---- the main thread -------------------------------------------------------

    def run(self, setup: Callable[[], None] | None = None) -> None:
        """Show the icon and run the UI loop until stop() (main thread; blocks).

        `setup` runs once, in pystray's setup thread, after the icon was asked to show.
        """
        if self._stopping.is_set():
            return
        self._ui_thread_id = threading.get_native_id()
        pystray = _pystray()
        backend = backend_name(pystray)
        if backend == "dummy":
            raise RuntimeError("PYSTRAY_BACKEND=dummy cannot run a tray (it has no UI loop)")
        with self._lock:
            view = self._view or TrayView(MonitorStatus(snapshot=None, now=time.time()))
            self._view = view
        shown_icon = (overall_health(view), view.status.paused)
        text = tooltip(view, name=self._title, local_time=local_time)
        entries = build_menu(view, local_time=local_time)
        icon = pystray.Icon(
            self._title,
            icon=render_icon(shown_icon[0], self._icon_size, paused=shown_icon[1]),
            title=_title(text, backend),
            menu=to_pystray_menu(entries, self._on_action, backend),
        )
        self._shown_icon, self._shown_title, self._shown_entries = shown_icon, text, entries
        if backend in _SELF_MARSHALLING:
            _close_only_what_pystray_showed(icon)
        if backend == "appindicator":
            _refill_one_appindicator_menu(icon)
        if backend in _OWN_LOOP:
            self._xorg = _XorgLoop(icon)
        with self._lock:
            self._icon, self._backend = icon, backend
            newer = self._view is not view  # published while the icon was being built
            self._pending = newer
            stopped = self._stopping.is_set()  # stop() came while the icon was being built
        if stopped:
            self._end_run()
            return
        if newer:
            self._request_apply(backend)

        def on_ready(_icon: Any) -> None:
            self._call_on_ui(backend, self._show)
            if backend not in _POSTED:
                self._refresher = threading.Thread(
                    target=self._refresh_loop, name="tray-refresher", daemon=True
                )
                self._refresher.start()
            if setup is not None:
                setup()

        try:
            icon.run(on_ready)
        finally:
            self._end_run()

    def _end_run(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._refresher is not None:
            self._refresher.join(5)
        with self._lock:
            self._icon = None
        if self._xorg is not None:
            self._xorg.close()

    # ---- applying --------------------------------------------------------------

    def _request_apply(self, backend: str) -> None:
        if backend in _POSTED:
            self._call_on_ui(backend, self._apply_pending)
        else:
            self._wake.set()

    def _call_on_ui(self, backend: str, fn: Callable[[], object]) -> None:
        """Run `fn` on the UI thread where the backend needs that; else right here."""
        if backend in _OWN_LOOP:
            if self._xorg is not None:
                self._xorg.call(fn)
        elif backend in _SELF_MARSHALLING:
            from gi.repository import GLib  # type: ignore[import-untyped,import-not-found,unused-ignore]

            def once() -> bool:
                fn()
                return False  # do not repeat

            GLib.idle_add(once)
        elif backend in _MAIN_THREAD_ONLY:
            from PyObjCTools import AppHelper  # type: ignore[import-not-found,unused-ignore]

            AppHelper.callAfter(fn)
        else:
            fn()

    def _show(self) -> None:
        with self._lock:
            icon, backend = self._icon, self._backend
        if icon is None or self._stopping.is_set():
            return
        icon.visible = True
        if backend in _SELF_MARSHALLING:
            # pystray's gtk/appindicator set the title only on a change while visible.
            icon._update_title()
            self._native_tooltip(icon, icon.title)

    def _refresh_loop(self) -> None:
        deferred = False
        while True:
            self._wake.wait(MENU_RETRY_S if deferred else None)
            self._wake.clear()
            if self._stopping.is_set():
                return
            deferred = not self._apply_pending()

    def _apply_pending(self) -> bool:
        """Apply the newest view; False when the menu had to wait (it is open on win32)."""
        with self._lock:
            self._pending = False
            view, icon = self._view, self._icon
        if icon is None or view is None or self._stopping.is_set():
            return True
        try:
            with self._apply_lock:
                return self._apply(icon, view)
        except Exception:  # showing state must never kill the UI loop
            log.exception("could not update the tray")
            return True

    def _menu_open(self) -> bool:
        """win32 only: is the UI thread tracking a menu? Then replacing it would race."""
        return self._backend == "win32" and _win32_in_menu_mode(self._ui_thread_id)

    def _apply(self, icon: Any, view: TrayView) -> bool:
        counters = self._counters
        shown_icon = (overall_health(view), view.status.paused)
        if shown_icon != self._shown_icon:
            icon.icon = render_icon(shown_icon[0], self._icon_size, paused=shown_icon[1])
            self._shown_icon = shown_icon
            counters = replace(counters, icon_changes=counters.icon_changes + 1)
        text = tooltip(view, name=self._title, local_time=local_time)
        if text != self._shown_title:
            icon.title = _title(text, self._backend)
            self._native_tooltip(icon, text)
            self._shown_title = text
        entries = build_menu(view, local_time=local_time)
        complete = True
        if entries != self._shown_entries:
            if self._menu_open():
                complete = False  # the refresher retries with the newest view shortly
            else:
                icon.menu = to_pystray_menu(entries, self._on_action, self._backend)  # updates
                self._shown_entries = entries
                counters = replace(counters, menu_rebuilds=counters.menu_rebuilds + 1)
        self._counters = replace(counters, applied=counters.applied + 1)
        return complete

    @staticmethod
    def _native_tooltip(icon: Any, text: str) -> None:
        """gtk: pystray sets the StatusIcon's title, which is no hover text; set that too."""
        status_icon = getattr(icon, "_status_icon", None)
        if status_icon is not None and hasattr(status_icon, "set_tooltip_text"):
            status_icon.set_tooltip_text(text)


def _close_only_what_pystray_showed(icon: Any) -> None:
    """gtk/appindicator: on the way out, close pystray's own notification only if it showed one.

    pystray 0.19.5's `_finalize` (run when its loop ends) always calls CloseNotification for
    its last notification id, 0 when it never showed one, which the agent never asks it to
    (notifications go through desktop.notify). With nobody owning org.freedesktop.Notifications
    the call fails with GLib.GError ServiceUnknown and the error escapes `icon.run()`: Quit
    ended with a traceback and exit status 1. Here the close is skipped when pystray has shown
    nothing (its `_nid` is 0), and a failure to close a real one is logged, not raised.
    Uses pystray's private `_finalize`, `_notifier` and `_nid` (pystray is pinned to 0.19.5).
    """
    finalize = icon._finalize

    def finalize_quietly() -> None:
        notifier = getattr(icon, "_notifier", None)
        if notifier is not None:
            hide = notifier.hide

            def hide_if_shown() -> None:
                if not getattr(notifier, "_nid", 0):
                    return  # pystray showed nothing: there is nothing to close
                try:
                    hide()
                except Exception as error:  # GLib.Error: no notification service any more
                    log.debug("could not close pystray's notification: %s", error)

            notifier.hide = hide_if_shown
        finalize()

    icon._finalize = finalize_quietly


def _refill_one_appindicator_menu(icon: Any) -> None:
    """appindicator: a menu update refills the one GtkMenu instead of handing over a new one.

    pystray 0.19.5 builds a new GtkMenu for every update and passes it to AppIndicator's
    set_menu, which runs libdbusmenu-gtk's parser over it. For each menu it has not seen, the
    parser queues an idle call that hides and re-shows it (toggle_widget_visibility, for apps
    that fill their menus when shown). Where no StatusNotifierWatcher runs (trayer, any XEmbed
    tray) AppIndicator falls back to a GtkStatusIcon, and a click pops up that very menu. X
    events outrank idle calls in the GLib loop: a click that came within a few milliseconds
    (tens on a busy machine) after an update popped the new menu up, then the idle call hid it
    (its grab broken) and the click opened nothing. The agent updates the menu whenever a
    sweep changes it ("Last checked", young uptimes), so also just as it notifies a problem,
    when people click. The parser never toggles a menu it has seen again: here the first
    GtkMenu stays for the icon's lifetime and an update replaces its items, on the GLib loop
    as pystray's own update does. While the menu is open the update waits until it closes, as
    the replaced menu stayed as shown before (no item moves under the pointer or the keys).
    Uses pystray's private `_update_menu`, `_menu_handle` and `_create_menu_item` (pystray is
    pinned to 0.19.5).
    """
    from gi.repository import GLib  # type: ignore[import-untyped,import-not-found,unused-ignore]

    first_menu = icon._update_menu  # pystray's: builds the first GtkMenu, hands it to set_menu
    waiting: list[int] = []  # the "unmap" handler while an update waits for the menu to close

    def closed(menu: Any) -> None:
        menu.disconnect(waiting.pop())
        GLib.idle_add(refill)

    def refill() -> bool:
        menu = getattr(icon, "_menu_handle", None)
        if menu is None or not icon.menu:
            first_menu()
        elif menu.get_mapped():  # popped up, on the screen
            if not waiting:
                waiting.append(menu.connect("unmap", closed))
        else:
            for item in menu.get_children():
                menu.remove(item)
                item.destroy()
            for descriptor in icon.menu:
                menu.append(icon._create_menu_item(descriptor))
            menu.show_all()
        return False  # do not repeat

    icon._update_menu = lambda: GLib.idle_add(refill)


class _XorgLoop:
    """xorg: run calls on pystray's loop thread, woken over an X connection of our own.

    pystray's xorg backend carries out icon=, title=, visible= and stop() from another thread
    by writing a ClientMessage to the icon's X connection from that thread, while its loop
    thread reads and writes the same connection. python-xlib 0.33 loses writes when two threads
    share one: a flush that finds another thread marked as sending returns unwritten, a thread
    that then starts receiving skips writing too, and a thread waiting for a reply can be left
    asleep. Quit hung that way (the loop slept in select() with its DestroyWindow queued), and
    so could any update. Here no other thread touches that connection: a call is queued, and a
    ClientMessage sent over this second connection (one sender at a time) makes the loop run
    it, where pystray calls its own methods directly. Uses pystray 0.19.5's private `_window`,
    `_message_handlers`, `_dock_window` and `_systray_manager` (pystray is pinned to it).
    """

    _ATOM = "_TAILNET_AGENT_CALL"

    def __init__(self, icon: Any) -> None:
        from Xlib import X
        from Xlib import display as xdisplay

        self._calls: deque[Callable[[], object]] = deque()
        self._lock = threading.Lock()  # guards _display: one thread at a time uses it
        self._display: Any = xdisplay.Display()  # $DISPLAY, the server pystray connected to
        self._atom: int = self._display.intern_atom(self._ATOM)
        self._window: Any = self._display.create_resource_object("window", icon._window.id)
        pystray_handler = icon._message_handlers[X.ClientMessage]

        def on_client_message(event: Any) -> None:  # on pystray's loop thread
            if event.client_type == self._atom:
                self._run_calls()
            else:
                pystray_handler(event)

        icon._message_handlers[X.ClientMessage] = on_client_message
        pystray_dock = icon._dock_window

        def dock_once() -> None:
            # pystray asks the tray host to dock from both _update_icon and _show: visible=True
            # on one thread sent two requests back to back, and trayer embedded the window
            # twice and dropped it. pystray clears _systray_manager when the host goes away.
            if icon._systray_manager is None:
                pystray_dock()

        icon._dock_window = dock_once

    def call(self, fn: Callable[[], object]) -> None:
        """Have the loop run `fn` soon (any thread; never blocks on the loop)."""
        from Xlib.protocol import event

        with self._lock:
            if self._display is None:  # the loop has ended
                return
            self._calls.append(fn)
            message = event.ClientMessage(
                window=self._window, client_type=self._atom, data=(32, (0, 0, 0, 0, 0))
            )
            try:
                # An empty event mask sends it to the window's creator: pystray's connection.
                self._display.send_event(self._window, message, onerror=self._x_error)
                self._display.flush()
            except Exception:  # the X server went away: so did pystray's loop
                log.exception("could not wake the xorg tray loop")

    def close(self) -> None:
        """After the loop ended: later calls are dropped."""
        with self._lock:
            display, self._display = self._display, None
        if display is not None:
            try:
                display.close()
            except Exception:  # the X server is gone already
                log.debug("could not close the xorg wake-up connection", exc_info=True)

    def _run_calls(self) -> None:
        while self._calls:
            fn = self._calls.popleft()
            try:
                fn()
            except Exception:  # an exception would end pystray's loop
                log.exception("tray call %r failed", fn)

    @staticmethod
    def _x_error(error: Any, _request: Any) -> None:
        # BadWindow when a wake-up arrives after stop() destroyed the icon's window.
        log.debug("xorg tray wake-up not delivered: %s", error)


def _win32_in_menu_mode(thread_id: int) -> bool:
    """GetGUIThreadInfo: is that thread inside TrackPopupMenu? False when it cannot be told.

    pystray's win32 backend destroys and rebuilds its HMENU in update_menu() on the calling
    thread while the UI thread may be tracking it (pystray#60); the refresher waits instead.
    (Written for Windows, where this project has no CI yet: every failure answers False.)
    """
    import ctypes
    from ctypes import wintypes

    windll: Any = getattr(ctypes, "windll", None)
    if windll is None or not thread_id:
        return False

    class GuiThreadInfo(ctypes.Structure):
        _fields_ = [
            ("cbSize", wintypes.DWORD),
            ("flags", wintypes.DWORD),
            ("hwndActive", wintypes.HWND),
            ("hwndFocus", wintypes.HWND),
            ("hwndCapture", wintypes.HWND),
            ("hwndMenuOwner", wintypes.HWND),
            ("hwndMoveSize", wintypes.HWND),
            ("hwndCaret", wintypes.HWND),
            ("rcCaret", wintypes.RECT),
        ]

    info = GuiThreadInfo()
    info.cbSize = ctypes.sizeof(GuiThreadInfo)
    try:
        if not windll.user32.GetGUIThreadInfo(thread_id, ctypes.byref(info)):
            return False
    except (OSError, AttributeError):
        return False
    return bool(info.flags & (_GUI_INMENUMODE | _GUI_POPUPMENUMODE))


# ==== can a tray run here? =====================================================


def _has_session_bus() -> bool:
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return runtime is not None and runtime != "" and (Path(runtime) / "bus").exists()


def tray_available() -> tuple[bool, str]:
    """(True, "pystray backend 'gtk'") or (False, why in words, with what to do instead).

    May import pystray (binding its backend from PYSTRAY_BACKEND): call it on the thread and
    in the process that will run the tray.
    """
    headless = "run `tailnet-agent run --headless`"
    if os.environ.get("PYSTRAY_BACKEND") == "dummy":
        return False, f"PYSTRAY_BACKEND=dummy has no tray: unset it, or {headless}"
    if sys.platform not in ("win32", "darwin") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False, NO_DISPLAY
    try:
        pystray = _pystray()
    except Exception as exc:  # Xlib raises DisplayNameError/DisplayConnectionError, gi others
        why = str(exc).strip() or type(exc).__name__
        return False, f"no usable tray backend ({why}): {headless}"
    name = backend_name(pystray)
    if name in _NEEDS_SESSION_BUS and not _has_session_bus():
        return False, (
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus): "
            f"the {name} tray needs a desktop session; {headless}"
        )
    return True, f"pystray backend '{name}'"
