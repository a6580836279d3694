"""The notifier's own thread: notifications go out in order, one at a time, and a notifier
that hangs holds up only itself.

`NotifierOutbox.deliver(notes)` hands the notifications to one daemon thread that calls the
Notifier, and waits for them at most `patience_s`: a desktop that takes longer (a D-Bus call
that never returns, a stuck helper process) is logged once and the monitor goes on sweeping
while the call finishes in the background (said once, and its end once: core.outage).
Later notifications queue behind the stuck one
(at most `backlog`; beyond that the newest is dropped, and logged), so a hung notifier costs
one thread, never one per notification, and they go out, in order, once it answers. What
each call did ("notification shown", "NOT shown", the notifier's exception) is logged here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.core.notify_policy import Notification
from agent.core.outage import Outage
from agent.core.ports import Notifier

__all__ = ["BACKLOG", "PATIENCE_S", "NotifierOutbox"]

log = logging.getLogger(__name__)

PATIENCE_S = 5.0  # how long a sweep waits for its notifications to be handed to the desktop
BACKLOG = 50  # notifications kept waiting behind a notifier that does not answer


@dataclass(frozen=True, slots=True)
class _Job:
    note: Notification
    done: Callable[[], None]  # called on the notifier's thread once the call returned


class NotifierOutbox:
    """Calls `notifier` on a thread of its own; `deliver` is called on the monitor's loop."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        patience_s: float = PATIENCE_S,
        backlog: int = BACKLOG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notifier = notifier
        self._patience_s = patience_s
        self._clock = clock
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=backlog)
        self._thread: threading.Thread | None = None
        self._calling_since: float | None = None  # set while the notifier is being called
        # counts the notifications held up; told from the loop, its end from the thread
        self._outage = Outage(
            "the notifier",
            fails="does not answer",
            works="answers again",
            missed=("notification", "held up"),
        )
        self._outage_lock = threading.Lock()

    @property
    def stuck(self) -> bool:
        """The notifier has been answering one call for longer than the patience."""
        since = self._calling_since
        return since is not None and self._clock() - since > self._patience_s

    async def deliver(self, notes: Sequence[Notification]) -> None:
        """Queue `notes` and wait until they are out, for at most the patience (not at all
        while the notifier is already stuck: they wait behind it)."""
        if not notes:
            return
        loop = asyncio.get_running_loop()
        all_out = asyncio.Event()
        left = 0

        def one_out() -> None:
            nonlocal left
            left -= 1
            if left == 0:
                all_out.set()

        def from_thread() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the monitor stopped
                loop.call_soon_threadsafe(one_out)

        left = sum(self._queue(note, from_thread) for note in notes)
        if left == 0:
            return
        if not self.stuck:
            try:
                await asyncio.wait_for(all_out.wait(), self._patience_s)
                return
            except TimeoutError:
                pass
        why = f"no answer within {self._patience_s:g} s, later notifications wait for it"
        with self._outage_lock:
            line = self._outage.failed(why, attempts=left)
        if line is not None:
            log.warning("%s", line)

    def close(self) -> None:
        """Let the thread end after what is queued (it is a daemon: a stuck call never holds
        up the process's exit)."""
        with contextlib.suppress(queue.Full):
            self._jobs.put_nowait(None)

    def _queue(self, note: Notification, done: Callable[[], None]) -> bool:
        """Queue one notification (False: dropped, the backlog is full)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="notifier", daemon=True)
            self._thread.start()
        job = _Job(note, done)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            log.warning(
                "notification dropped: %d are waiting for a notifier that does not answer: %s",
                self._jobs.qsize(),
                note.title,
            )
            return False
        return True

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._call(job.note)
            job.done()

    def _call(self, note: Notification) -> None:
        self._calling_since = self._clock()
        try:
            delivered = self._notifier.notify(
                note.title,
                note.message,
                critical=note.critical,
                key=note.key,
                replaces=note.replaces,
            )
        except Exception:  # a notifier must never take the monitor down
            log.exception("the notifier failed")
            delivered = False
        finally:
            self._calling_since = None
        with self._outage_lock:  # any answer ends a hold-up
            line = self._outage.recovered()
        if line is not None:
            log.info("%s", line)
        if not delivered and self._notifier.name == "log":
            return  # agent.desktop.notify.LogNotifier wrote it down: nothing was to be shown
        log.info(
            "notification %s: %s — %s",
            "shown" if delivered else "NOT shown",
            note.title,
            note.message,
        )
