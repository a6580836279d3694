"""The continuous monitor: sweeps on a schedule and turns them into events and notifications.

It runs in a worker thread with its own event loop (agent.edges.event_loop, picked as
`check` picks it) — the tray owns the main thread, as macOS requires. Each pass:
reload the topology if the file in use changed — the location is asked again each
time (`locate_topology`), so a user file that appears (created by "Open topology
file" or by hand) is picked up and watched at once; a topology fetched over HTTP is its
cached copy, and its source's problem (`topology_warning`) is the topology's error while
that copy stays in use —, sweep (`sweep_once`: the
composition root passes agent.sweep.sweep; tests may script it), feed the pure
state machine (agent.core.confirm) and the findings' (agent.core.findings: drift,
exposure), hold a down until the peers' views can place it (agent.core.placing, with
--share-view), record history, pass the events through the
notification policy to the notifier, and publish a MonitorStatus (agent.core.menu)
for whoever shows state (the tray, or the log when headless). A suspected change
is re-checked after about a second; "Check now" sweeps at once. Everything the UI
thread asks for goes through call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agent import __version__
from agent.core import confirm, findings, keys, notify_policy, placing
from agent.core import snooze as snoozing
from agent.core.events import (
    Event,
    EventKind,
    Subject,
    agent_started_event,
    agent_stopped_event,
)
from agent.core.evidence import Change
from agent.core.first_run import first_run_words, quiet_example
from agent.core.health import with_snoozes
from agent.core.menu import MonitorStatus
from agent.core.model import ServiceKey, Snapshot, Topology
from agent.core.outage import Outage
from agent.core.share_view import localise_events
from agent.core.shown import shown_health
from agent.edges import event_loop
from agent.edges.notify_outbox import NotifierOutbox
from agent.edges.snooze_file import load_snoozes, save_snoozes
from agent.errors import AgentError
from agent.sweep import TAILSCALE_TIMEOUT_S

if TYPE_CHECKING:  # the history store and the notifier are passed in; only their types here
    from agent.core.ports import Notifier
    from agent.edges.history import History

__all__ = ["SUSPEND_CLOCK", "Monitor", "SweepOnce"]

log = logging.getLogger(__name__)

# The file in use and its stat signature: (path, mtime in ns, size, inode), and the warning
# about its source. The path is part of it, so a switch to another file is a change even
# when the two look alike.
_FileKey = tuple[str, int, int, int, str | None]

# A monotonic clock that keeps counting while the machine sleeps, where there is one beside
# time.monotonic (which stops in suspend on Linux and macOS): with both, a sleep and a clock
# change tell apart. On Windows time.monotonic counts suspend itself: None.
SUSPEND_CLOCK: Callable[[], float] | None
if sys.platform == "linux":
    SUSPEND_CLOCK = functools.partial(time.clock_gettime, time.CLOCK_BOOTTIME)
elif sys.platform == "darwin":  # CLOCK_MONOTONIC goes on in sleep there; mach time stops
    SUSPEND_CLOCK = functools.partial(time.clock_gettime, time.CLOCK_MONOTONIC)
else:
    SUSPEND_CLOCK = None

UPTIME_WINDOW_S = 24 * 3600
UPTIME_REFRESH_S = 60.0  # at most this long between uptime readings ...
UPTIME_PRECISION = 0.01  # ... and sooner while the data is young: within about a point
UPTIME_FULL_SLACK_S = 60.0  # data from this close to the window's start covers all of it
TOPOLOGY_POLL_S = 2.0

SweepOnce = Callable[[Topology], Awaitable[Snapshot]]
"""One sweep of a topology, judged (agent.sweep.sweep with this machine's settings)."""


class Monitor:
    """Owns the worker thread; every public method is safe to call from any thread."""

    def __init__(
        self,
        *,
        load_topology: Callable[[], Topology],
        locate_topology: Callable[[], Path | None],
        sweep_once: SweepOnce,
        notifier: Notifier,
        on_update: Callable[[MonitorStatus], None],
        open_history: Callable[[], History] | None = None,
        topology_warning: Callable[[], str | None] = lambda: None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        boot: Callable[[], float] | None = SUSPEND_CLOCK,
        snooze_path: Path | None = None,
        is_example: Callable[[Topology], bool] = lambda _: False,
    ) -> None:
        self._load_topology = load_topology
        self._locate_topology = locate_topology
        self._sweep_once = sweep_once
        self._outbox = NotifierOutbox(notifier)  # a notifier that hangs holds up only itself
        self._on_update = on_update
        self._open_history = open_history
        self._topology_warning = topology_warning
        self._wall = wall
        self._mono = mono
        self._boot = boot
        self._snooze_path = snooze_path
        self._is_example = is_example  # the bundled example: a first run announces none of it

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()

        self._topology: Topology | None = None
        self._topology_key: _FileKey | None = None
        self._topology_error: str | None = None
        self._state = confirm.initial_state()
        self._findings = findings.FindingsState()
        self._policy = notify_policy.initial_policy()
        self._key_notices: keys.KeyNotices = frozenset()
        self._last_status: MonitorStatus | None = None
        self._uptime: Mapping[ServiceKey, float | None] = {}
        self._uptime_over: Mapping[ServiceKey, float] = {}
        self._uptime_every = 0.0
        self._since: Mapping[ServiceKey, float] = {}
        self._uptime_at = -UPTIME_REFRESH_S  # monotonic; the first sweep reads the uptime
        self._snoozes: dict[snoozing.SnoozeKey, snoozing.Snooze] = {}
        self._pending: list[Event] = []  # snooze records made between passes
        self._changes: dict[Subject, Change] = {}  # the latest change of each subject
        self._held: tuple[placing.Held, ...] = ()  # downs waiting for the peers' views
        self._history_outage = Outage("the history")  # said once, and its end once

    # ==== the UI thread's side =================================================

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="monitor", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        def apply() -> None:
            if self._stopping is not None and self._wake is not None:
                self._stopping.set()
                self._wake.set()  # end a wait at once, not at the next file poll

        self._call(apply)
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

    def snooze(
        self, key: snoozing.SnoozeKey, kind: snoozing.SnoozeKind, until: float | None
    ) -> None:
        """Snooze a node's (service "") or a service's alerts until `until` (None: until it
        is back); kept in the state file, and a sweep follows at once."""

        def apply() -> None:
            node = self._topology.node(key[0]) if self._topology is not None else None
            if node is None or (key[1] and all(s.name != key[1] for s in node.services)):
                log.warning("snooze: no %s in the topology", snoozing.key_text(key))
                return
            now = self._wall()
            entry = snoozing.Snooze(key[0], key[1], kind, now, until)
            self._snoozes[key] = entry
            self._pending.append(snoozing.snooze_started_event(entry, node, now))
            log.info("alerts snoozed: %s (%s)", snoozing.key_text(key), kind.value)
            self._save_snoozes()
            if self._wake is not None:
                self._wake.set()

        self._call(apply)

    def unsnooze(self, key: snoozing.SnoozeKey) -> None:
        """End a snooze now (the next sweep says what is still wrong)."""

        def apply() -> None:
            entry = self._snoozes.pop(key, None)
            node = self._topology.node(key[0]) if self._topology is not None else None
            if entry is None or node is None:
                return
            wrong = snoozing.still_wrong(self._state, node, key[1], self._last_self_id())
            self._pending.append(
                snoozing.snooze_ended_event(
                    entry, node, self._wall(), why="ended from the menu", still_wrong=wrong
                )
            )
            self._save_snoozes()
            if self._wake is not None:
                self._wake.set()

        self._call(apply)

    def _last_self_id(self) -> str | None:
        last = self._last_status
        return last.snapshot.self_node_id if last is not None and last.snapshot else None

    def _save_snoozes(self) -> None:
        if self._snooze_path is None:
            return
        try:
            save_snoozes(self._snooze_path, self._snoozes)
        except OSError as error:
            log.error("could not save the snoozes: %s", error)

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
            # The loop is picked for the topology in use at start, as `check` picks it.
            self._reload_topology_if_changed()
            topology = self._topology
            probes = topology.service_count if topology else 0
            event_loop.run(self._run(), probes=probes)
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
        self._start_history(history)
        if self._snooze_path is not None:
            self._snoozes = load_snoozes(self._snooze_path)
        last_self_ips: tuple[str, ...] | None = None
        try:
            while not self._stopping.is_set():
                self._reload_topology_if_changed()
                topology = self._topology
                if topology is None:
                    self._publish(None, ())
                    await self._sleep(TOPOLOGY_POLL_S)
                    continue
                started = self._mono()
                swept = await self._sweep_or_stop(topology)
                if swept is None:
                    break
                # read after the sweep: a snooze made while it ran applies to what it found
                snoozed = snoozing.active_keys(self._snoozes, self._wall())
                snapshot = with_snoozes(swept, snoozed)
                # Only a reading of a running Tailscale tells this machine's IPs: a failed
                # `tailscale status` (no IPs) then a good one is no network change.
                network_changed = False
                if snapshot.tailnet.running:
                    self_ips = snapshot.tailnet.self_ips
                    network_changed = last_self_ips is not None and self_ips != last_self_ips
                    last_self_ips = self_ips
                was_reason = self._state.grace_reason
                now_mono = self._mono()
                # A sweep's own time is no sleep, up to what its timeouts allow.
                bound = TAILSCALE_TIMEOUT_S + topology.defaults.timeout_s + confirm.CLOCK_SLACK_S
                result = confirm.step(
                    self._state,
                    snapshot,
                    self._wall(),
                    now_mono,
                    topology_error=self._topology_error,
                    network_changed=network_changed,
                    now_boot=self._boot() if self._boot is not None else None,
                    busy_s=min(max(0.0, now_mono - started), bound),
                )
                self._state = result.state
                self._findings, found, counting = findings.watch(
                    self._findings, snapshot, self._wall(), learn=not result.in_grace
                )
                self._key_notices, key_events = keys.announce(
                    self._key_notices, snapshot, self._wall()
                )
                # --share-view: a down waits for views that can place it, then is placed
                holding = placing.hold_for_views(self._held, result.events, snapshot)
                self._held = holding.held
                for entry in holding.began:
                    log.info(
                        "holding %s until the views of %s can place it",
                        entry.event.title,
                        ", ".join(entry.waiting_for),
                    )
                # then what a snooze keeps quiet
                events = self._snooze_step(
                    snapshot,
                    (*localise_events(holding.ready, snapshot), *key_events, *found),
                    snoozed,
                )
                if first_run_words(snapshot, bundled=self._is_example(topology)) is not None:
                    events = quiet_example(events)  # someone else's network: false alarms
                if result.settling is not None and result.settling.reason is not was_reason:
                    log.info(
                        "grace period: settling after %s (%s)",
                        result.settling.reason.words,
                        ", ".join(result.settling.problems) or "no confirmed problem",
                    )
                for event in events:
                    log.log(
                        logging.WARNING if event.critical else logging.INFO,
                        "event %s: %s — %s",
                        event.kind.value,
                        event.title,
                        event.message,
                    )
                self._record(history, snapshot, events)
                decision = notify_policy.decide(
                    self._policy, events, self._wall(), now_mono=self._mono()
                )
                self._policy = decision.state
                for held in decision.held_back:
                    log.info("notification held back (%s): %s", held.why, held.event.title)
                await self._deliver(decision.notifications)
                self._publish(snapshot, events, settling=result.settling)
                delay = result.recheck_after_s or topology.defaults.interval_s
                if counting or self._held:  # a held down: the peers' next views, soon
                    delay = min(delay, confirm.RECHECK_S)
                await self._sleep(delay)
        finally:
            if history is not None:
                self._record_quietly(history, agent_stopped_event(self._wall()))
                history.close()
            self._outbox.close()
            self._loop = None

    def _snooze_step(
        self,
        snapshot: Snapshot,
        events: tuple[Event, ...],
        snoozed: frozenset[snoozing.SnoozeKey],
    ) -> tuple[Event, ...]:
        """This pass's events with the snoozed subjects' news kept quiet, the snoozes that
        end (time up, back, gone from the topology) ended, and the snooze records made
        since the last pass in front; the menu's latest changes follow them."""
        ends, ended = snoozing.expire(
            self._snoozes, self._state, snapshot.topology, snapshot.self_node_id, self._wall()
        )
        if ends.keys() != self._snoozes.keys():
            self._snoozes = ends
            self._save_snoozes()
        out = (*self._pending, *snoozing.quiet(events, snoozed), *ended)
        self._pending.clear()
        for event in out:
            if event.evidence is not None:
                self._changes[event.subject] = Change(event.at, event.bad, event.evidence)
        return out

    async def _sweep_or_stop(self, topology: Topology) -> Snapshot | None:
        """One sweep, or None when a stop comes first: its probes and pings are cancelled
        (each kills what it started), so stopping never waits for a timeout."""
        assert self._stopping is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
        sweeping = asyncio.ensure_future(self._sweep_once(topology))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sweeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not sweeping.done():
                sweeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeping
        return None if sweeping.cancelled() else sweeping.result()

    async def _sleep(self, delay: float) -> None:
        """Wait `delay` s, waking early for "Check now", a stop, or a topology edit."""
        assert self._wake is not None and self._stopping is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
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

    def _current_key(self) -> _FileKey | None:
        """Which file is in use now and its stat signature (None: cannot tell)."""
        try:
            path = self._locate_topology()
            if path is None:
                return None
            st = path.stat()
        except (AgentError, OSError):  # a given path that is gone: the load says why
            return None
        return (str(path), st.st_mtime_ns, st.st_size, st.st_ino, self._topology_warning())

    def _topology_file_changed(self) -> bool:
        return self._topology is None or self._current_key() != self._topology_key

    def _reload_topology_if_changed(self) -> None:
        if self._topology is not None and not self._topology_file_changed():
            return
        key = self._current_key()
        try:
            topology = self._load_topology()
        except AgentError as error:
            message = self._topology_warning() or error.message
            if message != self._topology_error:
                log.warning("topology refused, keeping the last good one: %s", message)
            self._topology_error = message
            self._topology_key = key
            return
        if self._topology is not None:
            log.info("topology reloaded from %s", topology.source)
        self._topology = topology
        self._topology_key = key
        self._topology_error = key[4] if key is not None else None

    # ==== outputs ==============================================================

    def _open_history_safely(self) -> History | None:
        if self._open_history is None:
            return None
        try:
            return self._open_history()
        except Exception as error:  # history is a convenience: never stop monitoring for it
            log.error("history is off: %s", error)
            return None

    def _start_history(self, history: History | None) -> None:
        """Carry the known states of the last run forward (no second "down" for a problem
        recorded already) and record this start."""
        if history is None:
            return
        try:
            latest = history.latest_changes()
        except Exception as error:
            log.error("could not read the history to carry its states forward: %s", error)
            latest = []
        recorded: list[confirm.Recorded] = []
        unclean = False
        for record in latest:
            try:
                kind = EventKind(record.kind)
            except ValueError:  # written by a newer agent
                continue
            if kind.family == "agent":
                unclean = kind is EventKind.AGENT_STARTED
            elif kind.family not in ("topology", "key"):  # the file is read afresh (its verdict
                # is news); key notices are carried by keys.carried_notices
                recorded.append(
                    confirm.Recorded(
                        kind,
                        record.node_id,
                        record.service,
                        record.at,
                        record.announce,
                        record.still_down,
                    )
                )
        self._state = confirm.carried_state(recorded)
        self._changes = {
            (r.kind.split("_", 1)[0], r.node_id or "", r.service or ""): Change(
                r.at, r.bad, r.evidence
            )
            for r in latest
            if r.evidence is not None
        }
        self._key_notices = keys.carried_notices(
            (r.node_id, r.at, r.duration_s) for r in latest if r.kind == EventKind.KEY_EXPIRING
        )
        self._findings = findings.carried(recorded)
        self._policy = notify_policy.initial_policy(
            confirm.announced_subjects(self._state) | findings.announced_subjects(self._findings)
        )
        carried = [
            f"{r.node_id}: {r.service}" if r.service else (r.node_id or r.kind.family)
            for r in recorded
            if r.kind.bad
        ]
        if carried:
            log.info("carried over from the history: %s", ", ".join(carried))
        self._record_quietly(
            history,
            agent_started_event(
                self._wall(), version=__version__, carried=len(carried), unclean=unclean
            ),
        )

    def _record_quietly(self, history: History, event: Event) -> None:
        try:
            history.record_events((event,))
        except Exception as error:
            self._history_failed(error)
        else:
            self._history_written()

    def _history_failed(self, error: Exception) -> None:
        line = self._history_outage.failed(str(error))
        if line is not None:
            log.error("%s", line)

    def _history_written(self) -> None:
        line = self._history_outage.recovered()
        if line is not None:
            log.warning("%s", line)

    def _record(
        self, history: History | None, snapshot: Snapshot, events: tuple[Event, ...]
    ) -> None:
        if history is None:
            return
        try:
            history.record_sweep(snapshot)
            history.record_events(events)
            now = self._wall()
            # scheduled on the monotonic clock: a clock set back must not stall the readings
            if events or self._mono() - self._uptime_at >= self._uptime_every:
                since = now - UPTIME_WINDOW_S
                detail = history.uptime_detail(since, now)
                self._uptime = {key: u.fraction for key, u in detail.items()}
                self._uptime_over = {
                    key: now - u.covered_from
                    for key, u in detail.items()
                    if u.covered_from > since + UPTIME_FULL_SLACK_S
                }
                # A young window moves fast (after a minute, each second is 1.7 %).
                youngest = min(self._uptime_over.values(), default=float(UPTIME_WINDOW_S))
                self._uptime_every = min(UPTIME_REFRESH_S, youngest * UPTIME_PRECISION)
                self._since = history.state_since(now)
                self._uptime_at = self._mono()
        except Exception as error:
            self._history_failed(error)
        else:
            self._history_written()

    async def _deliver(self, notes: tuple[notify_policy.Notification, ...]) -> None:
        await self._outbox.deliver(notes)

    def _publish(
        self,
        snapshot: Snapshot | None,
        events: tuple[Event, ...],
        *,
        settling: confirm.Settling | None = None,
    ) -> None:
        now = self._wall()
        paused = notify_policy.is_paused(self._policy, now)
        status = MonitorStatus(
            snapshot=snapshot,
            now=now,
            paused_until=self._policy.paused_until if paused else None,
            topology_error=self._topology_error,
            in_grace=settling is not None,
            settling=settling,
            health=shown_health(snapshot, self._state) if snapshot is not None else None,
            uptime=self._uptime,
            uptime_over=self._uptime_over,
            since=self._since,
            events=events,
            snoozes=dict(self._snoozes),
            changes=dict(self._changes),
        )
        self._last_status = status
        try:
            self._on_update(status)
        except Exception:
            log.exception("publishing the monitor's state failed")

    def _republish(self) -> None:
        last = self._last_status
        if last is not None:
            self._publish(last.snapshot, (), settling=last.settling)
