"""Stopping on SIGINT and SIGTERM: cleanly, once, whatever the main thread is doing.

`with stop_on_signals(stop) as signals:` makes SIGINT (Ctrl+C) and SIGTERM (`kill`, a
service manager, launchd's bootout, a logout) call `stop()` once, from a helper thread,
after logging "stopping on SIGTERM". The headless monitor and the tray both use it, so
either ends as its own Quit does and exits 0 instead of dying by the signal.

Why a helper thread: a Python signal handler runs on the main thread between two
bytecodes of whatever it was doing, possibly inside a lock the stop path takes (the
tray's, a logging handler's); calling `stop()` there could deadlock. The handler only
writes a byte to a socket; the helper thread, blocked reading it, does the rest.

Why also `signal.set_wakeup_fd`: a handler only runs once the main thread is back in
Python, which a native UI loop may not be for a long time (AppKit on macOS, the Windows
message loop). Python's C-level handler writes the signal number to the wakeup socket at
once, so the helper thread wakes even then. (GLib's loop swaps in its own wakeup socket
while it runs, and runs Python handlers itself: the handler's byte covers that case.)

pystray's GTK backends (gtk, appindicator) set SIGINT back to the default action when
their loop starts, "not to inhibit Ctrl+C", which would kill the tray mid-way:
`signals.reclaim_in_glib_loop()` (from any thread, once the loop runs) puts ours back from
inside the loop, on the main thread, where only it can be done.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

__all__ = ["GLIB_TRAY_BACKENDS", "STOP_SIGNALS", "StopSignals", "stop_on_signals"]

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
GLIB_TRAY_BACKENDS = frozenset({"gtk", "appindicator"})  # pystray's, which reset SIGINT
_FINISHED = 0  # no signal has number 0: the byte that ends the helper thread


class StopSignals:
    """The handlers `stop_on_signals` installed (use it as that context manager)."""

    def __init__(self, stop: Callable[[], None], signals: Sequence[signal.Signals]) -> None:
        self._stop = stop
        self._signals = tuple(signals)
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._helper = threading.Thread(target=self._wait, name="stop-on-signal", daemon=True)
        self._previous: dict[signal.Signals, object] = {}
        self._old_fd = -1

    # ---- the main thread ---------------------------------------------------------

    def install(self) -> None:
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in self._signals}
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._helper.start()

    def reclaim(self) -> None:
        """Put our handlers back where something replaced them (main thread)."""
        for sig in self._signals:
            if signal.getsignal(sig) != self._on_signal:
                log.debug("%s handler replaced (by the tray backend?): taking it back", sig.name)
                signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        signal.set_wakeup_fd(self._old_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        with contextlib.suppress(OSError):
            self._writer.send(bytes([_FINISHED]))
        self._helper.join(5)
        self._reader.close()
        self._writer.close()

    # ---- any thread ----------------------------------------------------------------

    def reclaim_in_glib_loop(self) -> None:
        """Have the running GLib main loop call `reclaim` on the main thread."""
        from gi.repository import GLib  # type: ignore[import-untyped,import-not-found,unused-ignore]

        def once() -> bool:
            self.reclaim()
            return False  # do not repeat

        GLib.idle_add(once)

    # ---- inside ------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # a full buffer: a byte is waiting already
            self._writer.send(bytes([signum]))

    def _wait(self) -> None:
        wanted = {int(sig) for sig in self._signals}
        while True:
            try:
                data = self._reader.recv(64)
            except OSError:
                return
            if not data or _FINISHED in data:
                return
            caught = next((b for b in data if b in wanted), None)
            if caught is not None:
                log.info("stopping on %s", signal.Signals(caught).name)
                self._stop()
                return


@contextlib.contextmanager
def stop_on_signals(
    stop: Callable[[], None], signals: Sequence[signal.Signals] = STOP_SIGNALS
) -> Iterator[StopSignals | None]:
    """While inside, the first of `signals` calls `stop()` from a helper thread. Main
    thread only (elsewhere signals cannot be caught: it yields None and does nothing).
    The previous handlers and wakeup fd are restored on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    handlers = StopSignals(stop, signals)
    handlers.install()
    try:
        yield handlers
    finally:
        handlers.uninstall()
