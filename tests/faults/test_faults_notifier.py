"""The notifier raising and hanging under a running Monitor (real sweeps, a real backend).

What the user must still get: the monitor sweeping on, the icon's colour right (red while
the critical backend is down, green once it is back), and the later notifications shown —
after a hang, in order, once the desktop answers. A hung notifier is one stuck call on the
outbox's thread (agent/edges/notify_outbox.py), never one thread per notification.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.core.menu import MonitorStatus, TrayView, overall_health
from agent.core.model import Health
from agent.edges.notify_outbox import PATIENCE_S
from tests.faults.running_monitor import monitor_over_loopback
from tests.test_monitor import Recorder

DOWN, UP = "desktop: Ollama down", "desktop: Ollama up"


class FaultyNotifier:
    """A desktop whose notification service raises (`mode = "raise"`), hangs until
    `release` is set (`"hang"`) or works (`"ok"`)."""

    name = "faulty"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.shown: list[str] = []
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            mode = self.mode
        try:
            if mode == "raise":
                raise OSError("org.freedesktop.Notifications: the name is not activatable")
            if mode == "hang":
                self.release.wait(60)
            with self.lock:
                self.shown.append(title)
            return True
        finally:
            with self.lock:
                self.in_flight -= 1


def wait_sweeps(rec: Recorder, more: int) -> None:
    start = rec.sweeps()
    rec.wait(lambda u: rec.sweeps() >= start + more, timeout=30)


def icon(status: MonitorStatus) -> Health:
    """The tray icon's colour for this status."""
    return overall_health(TrayView(status))


def colour(rec: Recorder) -> Health:
    with rec.lock:
        return icon(rec.updates[-1])


def test_a_raising_notifier_is_logged_and_the_monitor_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notifier = FaultyNotifier("raise")
    with monitor_over_loopback(tmp_path, monkeypatch, notifier=notifier) as (_, rec, backend):
        rec.wait(lambda u: u.snapshot is not None and icon(u) is Health.GREEN)
        backend.stop()
        rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events), timeout=20)
        wait_sweeps(rec, 2)  # still sweeping after the notifier raised
        assert colour(rec) is Health.RED
        assert notifier.calls == 1 and notifier.shown == []
        failed = [r for r in caplog.records if r.getMessage() == "the notifier failed"]
        assert len(failed) == 1 and failed[0].exc_info is not None  # with its traceback
        assert f"notification NOT shown: {DOWN}" in caplog.text

        notifier.mode = "ok"  # the desktop works again: the recovery is shown
        backend.start()
        rec.wait(lambda u: any(e.kind.value == "service_up" for e in u.events), timeout=20)
        rec.wait(lambda u: notifier.shown == [UP], timeout=10)
        assert colour(rec) is Health.GREEN
        assert f"notification shown: {UP}" in caplog.text


def test_a_hung_notifier_holds_up_only_itself_and_what_waited_goes_out_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notifier = FaultyNotifier("hang")
    with monitor_over_loopback(tmp_path, monkeypatch, notifier=notifier) as (_, rec, backend):
        rec.wait(lambda u: u.snapshot is not None and icon(u) is Health.GREEN)
        backend.stop()
        rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events), timeout=20)
        wait_sweeps(rec, 3)  # the monitor sweeps on while the desktop does not answer
        assert colour(rec) is Health.RED
        stuck = f"the notifier does not answer: no answer within {PATIENCE_S:g} s"
        assert caplog.text.count(stuck) == 1, caplog.text  # said once, however long it hangs

        backend.start()  # the recovery comes while the first notification still hangs
        rec.wait(lambda u: any(e.kind.value == "service_up" for e in u.events), timeout=20)
        wait_sweeps(rec, 3)
        assert colour(rec) is Health.GREEN
        # one call stuck in the notifier, the recovery waiting behind it: no thread per note
        assert notifier.calls == 1 and notifier.most_in_flight == 1
        assert [t.name for t in threading.enumerate()].count("notifier") == 1

        notifier.mode = "ok"
        notifier.release.set()  # the desktop answers: what waited goes out, in order
        rec.wait(lambda u: notifier.shown == [DOWN, UP], timeout=10)
        assert notifier.most_in_flight == 1
        # its end said once, with what waited: the first call and the recovery behind it
        back = "the notifier answers again (2 notifications held up since: no answer within"
        assert caplog.text.count(back) == 1, caplog.text
