"""The continuous monitor: sweeps on a schedule and turns them into events and notifications.

It runs in a worker thread with its own asyncio loop — the tray owns the main
thread, as macOS requires. Each pass: reload the topology if its file changed,
sweep, feed the pure state machine (agent.core.confirm), record history, pass
the events through the notification policy to the notifier, and publish a
MonitorUpdate for whoever shows state (the tray, or the log when headless).
A suspected change is re-checked after about a second; "Check now" sweeps at
once. Everything the UI thread asks for goes through call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.core import confirm, notify_policy
from agent.core.events import Event
from agent.core.model import Snapshot, Topology
from agent.errors import AgentError
from agent.probes import make_http_client
from agent.sweep import sweep

if TYPE_CHECKING:  # the history store and the notifier are passed in; only their types here
    from agent.history import History
    from agent.notify import Notifier

__all__ = ["Monitor", "MonitorUpdate"]

log = logging.getLogger(__name__)

UPTIME_WINDOW_S = 24 * 3600
UPTIME_REFRESH_S = 60.0
TOPOLOGY_POLL_S = 2.0


@dataclass(frozen=True, slots=True)
class MonitorUpdate:
    """What the monitor knows now, for the tray or the log."""

    snapshot: Snapshot | None
    now: float
    paused_until: float | None = None
    topology_error: str | None = None
    in_grace: bool = False
    uptime: Mapping[tuple[str, str], float | None] = field(default_factory=dict)
    since: Mapping[tuple[str, str], float] = field(default_factory=dict)
    events: tuple[Event, ...] = ()  # the events of this pass (already recorded)


class Monitor:
    """Owns the worker thread; every public method is safe to call from any thread."""

    def __init__(
        self,
        *,
        load_topology: Callable[[], Topology],
        topology_path: Path | None,
        tailscale_cli: str | None,
        notifier: Notifier,
        on_update: Callable[[MonitorUpdate], None],
        node_override: str | None = None,
        open_history: Callable[[], History] | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load_topology = load_topology
        self._topology_path = topology_path
        self._tailscale_cli = tailscale_cli
        self._notifier = notifier
        self._on_update = on_update
        self._node_override = node_override
        self._open_history = open_history
        self._wall = wall
        self._mono = mono

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()

        self._topology: Topology | None = None
        self._topology_mtime: float | None = None
        self._topology_error: str | None = None
        self._state = confirm.initial_state()
        self._policy = notify_policy.initial_policy()
        self._last_update: MonitorUpdate | None = None
        self._uptime: Mapping[tuple[str, str], float | None] = {}
        self._since: Mapping[tuple[str, str], float] = {}
        self._uptime_at = 0.0

    # ==== the UI thread's side =================================================

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="monitor", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        self._call(lambda: self._stopping.set() if self._stopping else None)
        if self._thread is not None:
            self._thread.join(timeout)

    def check_now(self) -> None:
        self._call(lambda: self._wake.set() if self._wake else None)

    def pause_notifications(self, until: float) -> None:
        def apply() -> None:
            self._policy = notify_policy.pause_until(self._policy, until)
            self._republish()

        self._call(apply)

    def resume_notifications(self) -> None:
        def apply() -> None:
            self._policy, notes = notify_policy.resume(self._policy)
            self._republish()
            if self._loop is not None:
                self._loop.create_task(self._deliver(notes))

        self._call(apply)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _call(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # RuntimeError: the loop closed meanwhile, the monitor is stopping.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

    # ==== the worker thread ====================================================

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception:  # a bug: log it loudly, the UI shows grey "no data"
            log.exception("the monitor stopped on an unexpected error")
        finally:
            self._started.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._started.set()
        history = self._open_history_safely()
        client = make_http_client()
        last_self_ips: tuple[str, ...] | None = None
        try:
            while not self._stopping.is_set():
                self._reload_topology_if_changed()
                topology = self._topology
                if topology is None:
                    self._publish(None, ())
                    await self._sleep(TOPOLOGY_POLL_S)
                    continue
                snapshot = await sweep(
                    topology,
                    tailscale_cli=self._tailscale_cli,
                    node_override=self._node_override,
                    client=client,
                    clock=self._wall,
                )
                self_ips = snapshot.tailnet.self_ips
                network_changed = last_self_ips is not None and self_ips != last_self_ips
                last_self_ips = self_ips
                was_in_grace = self._state_in_grace()
                result = confirm.step(
                    self._state,
                    snapshot,
                    self._wall(),
                    self._mono(),
                    topology_error=self._topology_error,
                    network_changed=network_changed,
                )
                self._state = result.state
                if result.in_grace and not was_in_grace:
                    log.info("grace period: a wake-up, clock jump or network change was seen")
                    await client.aclose()  # keep-alive connections from before are stale
                    client = make_http_client()
                for event in result.events:
                    log.log(
                        logging.WARNING if event.critical else logging.INFO,
                        "event %s: %s — %s",
                        event.kind.value,
                        event.title,
                        event.message,
                    )
                self._record(history, snapshot, result.events)
                self._policy, notes = notify_policy.plan(self._policy, result.events, self._wall())
                await self._deliver(notes)
                self._publish(snapshot, result.events, in_grace=result.in_grace)
                delay = result.recheck_after_s or topology.defaults.interval_s
                await self._sleep(delay)
        finally:
            await client.aclose()
            if history is not None:
                history.close()
            self._loop = None

    def _state_in_grace(self) -> bool:
        return self._state.grace_since_mono is not None

    async def _sleep(self, delay: float) -> None:
        """Wait `delay` s, waking early for "Check now", a stop, or a topology edit."""
        assert self._wake is not None and self._stopping is not None
        deadline = self._mono() + delay
        while not self._stopping.is_set():
            remaining = deadline - self._mono()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), min(remaining, TOPOLOGY_POLL_S))
            except TimeoutError:
                if self._topology_file_changed():
                    return
                continue
            self._wake.clear()
            return

    # ==== topology =============================================================

    def _current_mtime(self) -> float | None:
        if self._topology_path is None:
            return None
        try:
            return self._topology_path.stat().st_mtime
        except OSError:
            return None

    def _topology_file_changed(self) -> bool:
        return self._topology is None or self._current_mtime() != self._topology_mtime

    def _reload_topology_if_changed(self) -> None:
        if self._topology is not None and not self._topology_file_changed():
            return
        mtime = self._current_mtime()
        try:
            topology = self._load_topology()
        except AgentError as error:
            if error.message != self._topology_error:
                log.warning("topology refused, keeping the last good one: %s", error.message)
            self._topology_error = error.message
            self._topology_mtime = mtime
            return
        if self._topology is not None:
            log.info("topology reloaded from %s", topology.source)
        self._topology = topology
        self._topology_mtime = mtime
        self._topology_error = None

    # ==== outputs ==============================================================

    def _open_history_safely(self) -> History | None:
        if self._open_history is None:
            return None
        try:
            return self._open_history()
        except Exception as error:  # history is a convenience: never stop monitoring for it
            log.error("history is off: %s", error)
            return None

    def _record(
        self, history: History | None, snapshot: Snapshot, events: tuple[Event, ...]
    ) -> None:
        if history is None:
            return
        try:
            history.record_sweep(snapshot)
            history.record_events(events)
            now = self._wall()
            if events or now - self._uptime_at >= UPTIME_REFRESH_S:
                self._uptime = history.uptime(now - UPTIME_WINDOW_S, now)
                self._since = history.state_since(now)
                self._uptime_at = now
        except Exception as error:
            log.error("could not write history: %s", error)

    async def _deliver(self, notes: tuple[notify_policy.Notification, ...]) -> None:
        loop = asyncio.get_running_loop()
        for note in notes:
            send = functools.partial(
                self._notifier.notify,
                note.title,
                note.message,
                critical=note.critical,
                key=note.key,
                replaces=note.replaces,
            )
            try:
                delivered = await loop.run_in_executor(None, send)
            except Exception:  # a notifier must never take the monitor down
                log.exception("the notifier failed")
                delivered = False
            if not delivered and self._notifier.name == "log":
                continue  # agent.notify.LogNotifier wrote it down: nothing was to be shown
            log.info(
                "notification %s: %s — %s",
                "shown" if delivered else "NOT shown",
                note.title,
                note.message,
            )

    def _publish(
        self, snapshot: Snapshot | None, events: tuple[Event, ...], *, in_grace: bool = False
    ) -> None:
        now = self._wall()
        paused = notify_policy.is_paused(self._policy, now)
        update = MonitorUpdate(
            snapshot=snapshot,
            now=now,
            paused_until=self._policy.paused_until if paused else None,
            topology_error=self._topology_error,
            in_grace=in_grace,
            uptime=self._uptime,
            since=self._since,
            events=events,
        )
        self._last_update = update
        try:
            self._on_update(update)
        except Exception:
            log.exception("publishing the monitor's state failed")

    def _republish(self) -> None:
        last = self._last_update
        if last is not None:
            self._publish(last.snapshot, (), in_grace=last.in_grace)
