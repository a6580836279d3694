"""desktop.tray.Tray on pystray's xorg backend, stopped with the quit race forced (a test child).

    PYSTRAY_BACKEND=xorg python -m tests.helpers.xorg_quit_child

The quit hang this guards against: pystray's xorg backend carries out `icon.stop()` from a
worker thread by writing a ClientMessage on the icon's own X connection and flushing it from
that thread. The loop thread then destroys the window and flushes too. python-xlib 0.33 lets
one Display be used by several threads, but a flush that finds another thread still marked as
sending returns without writing, and a receiver that finds one skips writing as well: the
loop thread went to sleep in select() with its DestroyWindow still queued, never saw the
DestroyNotify, and run() never returned.

Here that interleaving is made certain instead of likely. The pystray icon's socket is wrapped
so that the thread calling Tray.stop() is held, right after its own write, until the loop
thread is about to sleep in select() with requests still queued (logged to stderr as
"loop sleeps with queued requests"), or for at most HOLD_S when that never happens (the
probe must not hang by itself). A publisher thread publishes views back to back meanwhile,
before and after stop().

stdout: "ready", "stopping", "stopped" (Tray.stop() returned), then, once run() returned, one
JSON line {"foreign_writers": [names of threads other than the loop's that wrote to pystray's
X connection], "published": n, "applied": n}, then "bye".
"""

from __future__ import annotations

import json
import select
import sys
import threading
import time
import types
from typing import Any

from agent.core.menu import TrayView
from tests.helpers.tray_app import view_from_json

__all__ = ["main"]

HOLD_S = 3.0
APPLIED_BEFORE_STOP = 3  # the loop is up and has applied views before stop() is called


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _view(i: int) -> TrayView:
    now = time.time()
    snapshot = {"overall": ("red", "green")[i % 2], "summary": f"view {i}", "at": now, "nodes": []}
    return view_from_json({"now": now, "snapshot": snapshot})


class _Probe:
    """Watches the pystray icon's X connection: who writes to it, and when the loop sleeps."""

    def __init__(self) -> None:
        self.loop_thread = threading.main_thread()  # Tray.run() runs pystray's loop here
        self.stopper: threading.Thread | None = None
        self.foreign_writers: set[str] = set()
        self.loop_asleep = threading.Condition()
        self.loop_sleeps = 0
        self.sockets: dict[int, Any] = {}  # id(wrapped socket) -> python-xlib protocol Display

    def install(self) -> None:
        import pystray._xorg as xorg  # PYSTRAY_BACKEND=xorg is in the environment
        import Xlib.protocol.display as protocol

        probe = self
        original_init = xorg.Icon.__init__

        def init(self: Any, *args: Any, **kwargs: Any) -> None:  # Icon(name, icon=...): no "icon"
            original_init(self, *args, **kwargs)
            connection = self._display.display
            connection.socket = _WatchedSocket(connection.socket, probe)
            probe.sockets[id(connection.socket)] = connection

        xorg.Icon.__init__ = init
        real_select = select.select

        def watched_select(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None) -> Any:
            if (
                threading.current_thread() is probe.loop_thread
                and timeout is None
                and not wlist
                and rlist
                and id(rlist[0]) in probe.sockets
            ):
                queued = probe.sockets[id(rlist[0])].request_queue
                if queued:
                    names = [type(request).__name__ for request, _wait in queued]
                    sys.stderr.write(f"loop sleeps with queued requests {names}\n")
                    sys.stderr.flush()
                    with probe.loop_asleep:
                        probe.loop_sleeps += 1
                        probe.loop_asleep.notify_all()
            return real_select(rlist, wlist, xlist, timeout)

        protocol.select = types.SimpleNamespace(select=watched_select, error=select.error)

    def wrote(self) -> None:
        """A thread wrote bytes to the icon's connection (called right after the write)."""
        me = threading.current_thread()
        if me is self.loop_thread:
            return
        self.foreign_writers.add(me.name)
        if me is self.stopper:
            with self.loop_asleep:
                seen = self.loop_sleeps
                self.loop_asleep.wait_for(lambda: self.loop_sleeps > seen, timeout=HOLD_S)


class _WatchedSocket:
    def __init__(self, sock: Any, probe: _Probe) -> None:
        self._sock = sock
        self._probe = probe

    def send(self, data: bytes, *flags: int) -> int:
        sent: int = self._sock.send(data, *flags)
        self._probe.wrote()
        return sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def main() -> int:
    probe = _Probe()
    probe.install()

    from agent.desktop.tray import Tray

    tray = Tray(lambda _action: None, title="tailnet-agent xorg quit")
    tray.publish(_view(0))
    done = threading.Event()
    published = 0

    def publish() -> None:
        nonlocal published
        while not done.is_set():
            published += 1
            tray.publish(_view(published))
            done.wait(0.002)  # pacing only: publish() never blocks

    def stop() -> None:
        while tray.counters.applied < APPLIED_BEFORE_STOP and not done.wait(0.01):
            pass
        _say("stopping")
        tray.stop()
        _say("stopped")

    def setup() -> None:
        _say("ready")
        threading.Thread(target=publish, name="publisher", daemon=True).start()
        probe.stopper = threading.Thread(target=stop, name="stopper", daemon=True)
        probe.stopper.start()

    try:
        tray.run(setup)
    finally:
        done.set()
    result = {
        "foreign_writers": sorted(probe.foreign_writers),
        "published": published,
        "applied": tray.counters.applied,
    }
    _say(json.dumps(result))
    _say("bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
