"""SIGINT/SIGTERM stop the agent from a helper thread: once, without deadlock, and undone."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from agent.edges.stop_signals import stop_on_signals


def _stopper() -> tuple[threading.Event, list[str], threading.Lock, Callable[[], None]]:
    stopped = threading.Event()
    threads: list[str] = []
    lock = threading.Lock()  # what the real stop path takes (the tray's lock)

    def stop() -> None:
        with lock:
            threads.append(threading.current_thread().name)
            stopped.set()

    return stopped, threads, lock, stop


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_once_from_a_helper_thread_and_is_logged(
    sig: signal.Signals, caplog: pytest.LogCaptureFixture
) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stopped, threads, _, stop = _stopper()
    with caplog.at_level(logging.INFO, "agent.edges.stop_signals"), stop_on_signals(stop):
        os.kill(os.getpid(), sig)
        assert stopped.wait(5)
        os.kill(os.getpid(), sig)  # a second one is no second stop
        time.sleep(0.1)
    assert threads == ["stop-on-signal"]
    assert f"stopping on {sig.name}" in caplog.text
    assert {s: signal.getsignal(s) for s in before} == before  # the old handlers are back


def test_a_signal_while_the_main_thread_holds_the_stop_lock_does_not_deadlock() -> None:
    stopped, threads, lock, stop = _stopper()
    with stop_on_signals(stop):
        with lock:  # the handler runs right here, on this thread, inside the lock
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            assert not stopped.is_set()
        assert stopped.wait(5)
    assert threads == ["stop-on-signal"]


def test_a_handler_replaced_by_a_backend_is_taken_back() -> None:
    stopped, _, _, stop = _stopper()
    with stop_on_signals(stop) as signals:
        assert signals is not None
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # what pystray's GTK backends do
        signals.reclaim()
        os.kill(os.getpid(), signal.SIGINT)
        assert stopped.wait(5)


def test_leaving_without_a_signal_ends_the_helper() -> None:
    _, threads, _, stop = _stopper()
    with stop_on_signals(stop):
        pass
    assert threads == []
    assert not any(t.name == "stop-on-signal" for t in threading.enumerate())


def test_off_the_main_thread_it_does_nothing() -> None:
    seen: list[object] = []

    def run() -> None:
        with stop_on_signals(lambda: None) as signals:
            seen.append(signals)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(5)
    assert seen == [None]
