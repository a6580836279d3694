"""The composition root: wires topology, Tailscale, monitor, notifier, history and tray.

`run_tray` is plain `tailnet-agent`: the tray on the main thread, the monitor in
its worker thread. `run_headless` is `tailnet-agent run --headless`: the same
monitor, notifications and history, with the log instead of a tray. Both stop
cleanly on SIGINT or SIGTERM (agent.edges.stop_signals) and exit 0. The tray's "Start
at login" checkbox is an AutostartSwitch over agent.desktop.autostart. Both run in the
user's own Surroundings unless given others: where the lock, history and log are, how
Tailscale is read, who else watches the monitor, what else stops it (the demo's).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent import APP_ID, __version__
from agent.core.first_run import first_run_check, first_run_words
from agent.core.menu import (
    ActionKind,
    MenuAction,
    MonitorStatus,
    TrayView,
    status_health,
    status_words,
)
from agent.core.model import Snapshot, TailscaleProblem, Topology
from agent.core.notify_policy import pause_presets
from agent.core.ports import Notifier
from agent.core.snooze import SnoozeKind, parse_key
from agent.core.tailnet import identify_self_by, self_node_line
from agent.core.topology import format_topology_duration
from agent.desktop.notify import choose_notifier
from agent.edges import paths
from agent.edges.history import MONITOR_BUSY_TIMEOUT_S, History
from agent.edges.listeners import ListenerCache
from agent.edges.path_ping import PING_EVERY_S, PathPinger
from agent.edges.single_instance import InstanceLock
from agent.edges.stop_signals import GLIB_TRAY_BACKENDS, stop_on_signals
from agent.edges.tailscale import find_cli
from agent.edges.topology_source import (
    ORIGIN_BUNDLED,
    TopologyLocator,
    is_bundled_topology,
    load_location,
    locate_topology,
)
from agent.errors import AgentError, AutostartError, TopologyError
from agent.exporter import Exporter, open_exporter
from agent.fleet import ShareView
from agent.monitor import Monitor, SweepOnce
from agent.sweep import StatusReader, sweep

__all__ = [
    "AUTOSTART_REFRESH_S",
    "AgentOptions",
    "AutostartSwitch",
    "MenuHandler",
    "ShownView",
    "Surroundings",
    "about_text",
    "create_topology",
    "demo_command",
    "menu_handlers",
    "no_desktop_libraries",
    "open_demo",
    "run_headless",
    "run_tray",
    "tray_unavailable",
    "tray_view",
]

if TYPE_CHECKING:
    from agent.desktop import autostart
    from agent.desktop.actions import DesktopActions
    from agent.edges.topology_fetch import RemoteTopology

log = logging.getLogger(__name__)

AUTOSTART_REFRESH_S = 60.0  # the checkbox re-reads the OS at most this often between toggles


@dataclass(frozen=True, slots=True)
class AgentOptions:
    topology: str | None = None
    node: str | None = None
    tailscale: str | None = None
    metrics: str | None = None  # --metrics HOST:PORT (agent.exporter: also the variable, config)
    share_view: int | None = None  # --share-view: the port of the view endpoint


@dataclass(frozen=True, slots=True)
class Surroundings:
    """What an agent runs in besides its options; the defaults are the user's own agent.

    `files`: its lock, history and log. `read_tailnet`: Tailscale's view read in-process
    instead of from the tailscale CLI. `watch`: called with each MonitorStatus too (in the
    monitor's thread). `stop`: set, it stops the agent as SIGTERM or Quit do (exit 0).
    `no_autostart`: why "Start at login" is not offered (None: the OS's own backend).
    """

    files: paths.AgentFiles = field(default_factory=paths.agent_files)
    read_tailnet: StatusReader | None = None
    watch: Callable[[MonitorStatus], None] | None = None
    stop: threading.Event | None = None
    no_autostart: str | None = None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _InUseLog:
    """Logs what the agent watches, once: the topology (name, file, interval) and the node
    this machine is (and how that was found); again only when one of them changes."""

    def __init__(self, node_override: str | None) -> None:
        self._node_override = node_override
        self._topology: tuple[object, ...] | None = None
        self._node: tuple[str | None, str] | None = None

    def update(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        topology = snapshot.topology
        services = topology.service_count
        interval = topology.defaults.interval_s
        seen = (topology.name, topology.source, len(topology.nodes), services, interval)
        if seen != self._topology:
            self._topology = seen
            log.info(
                "watching %r from %s: %s, %s, a sweep every %s",
                topology.name,
                topology.source,
                _plural(len(topology.nodes), "node"),
                _plural(services, "service"),
                format_topology_duration(interval),
            )
        if self._node_override:
            node: tuple[str | None, str] = (snapshot.self_node_id, "--node")
        else:
            node = identify_self_by(topology, snapshot.tailnet)
        if node != self._node:
            self._node = node
            log.info("%s", self_node_line(node))


def _remote_topology(options: AgentOptions, env: Mapping[str, str]) -> RemoteTopology | None:
    """The fetcher when the topology in use is a URL (decided at start), else None."""
    try:
        location = locate_topology(options.topology, env)
    except AgentError:
        return None  # the monitor's first load says why
    if location.url is None:
        return None
    # Imported here: its httpx (2 MiB with email and urllib) is for URL topologies alone.
    from agent.edges.topology_fetch import RemoteTopology

    return RemoteTopology(location.url, location.path, refresh_s=location.refresh_s)


def _share_view(options: AgentOptions) -> ShareView | None:
    """--share-view's endpoint and client (its endpoint binds at the first sweep that knows
    this node's Tailscale IP); the caller closes it after the monitor stops."""
    return None if options.share_view is None else ShareView(options.share_view)


def _build_monitor(
    options: AgentOptions,
    env: Mapping[str, str],
    notifier: Notifier,
    on_update: Callable[[MonitorStatus], None],
    remote: RemoteTopology | None = None,
    exporter: Exporter | None = None,
    surroundings: Surroundings | None = None,
    share: ShareView | None = None,
) -> Monitor:
    around = surroundings or Surroundings()
    cli = None
    if around.read_tailnet is None:
        cli = find_cli(options.tailscale, env)
        if cli is None:
            log.warning("no tailscale command found: peers will not be probed")
    watch = around.watch

    def publish(status: MonitorStatus) -> None:
        on_update(status)
        if watch is not None:
            watch(status)

    locate = TopologyLocator(options.topology, env)  # a user file deleted is refused

    def load() -> Topology:
        if remote is not None:
            remote.wait_first_attempt()  # a first start without a cached copy
        return load_location(locate())

    sweep_once: SweepOnce = functools.partial(
        sweep,
        tailscale_cli=cli,
        node_override=options.node,
        read_tailnet=around.read_tailnet,
        # a peer's path at most once a minute; a tailnet read another way has no CLI to ping
        pinger=PathPinger(cli if around.read_tailnet is None else None, every_s=PING_EVERY_S),
        share=share,
        listeners=ListenerCache(),  # the socket table at most once a minute (its cost)
    )
    if exporter is not None:
        sweep_once, on_update = exporter.observe(sweep_once, on_update)
    return Monitor(
        load_topology=load,
        # asked again on every poll: a user file created while running takes over at once
        locate_topology=lambda: locate().path,
        sweep_once=sweep_once,
        notifier=notifier,
        on_update=publish,
        open_history=lambda: History(around.files.history, busy_timeout_s=MONITOR_BUSY_TIMEOUT_S),
        snooze_path=around.files.snoozes,
        topology_warning=remote.warning if remote is not None else lambda: None,
        is_example=is_bundled_topology,
    )


# ==== headless =================================================================


def run_headless(
    options: AgentOptions,
    env: Mapping[str, str] = os.environ,
    surroundings: Surroundings | None = None,
) -> int:
    """The monitor without a tray, until SIGINT/SIGTERM. Returns the exit code."""
    around = surroundings or Surroundings()
    stop = around.stop or threading.Event()
    last_summary: list[str] = []
    in_use = _InUseLog(options.node)

    def on_update(status: MonitorStatus) -> None:
        in_use.update(status.snapshot)
        snapshot = status.snapshot
        text = f"{status_health(status).value}: {status_words(status)}"
        if words := first_run_words(snapshot, bundled=_is_bundled(snapshot)):
            text = f"grey: {first_run_check(words)[0]}"  # nothing of the example is watched
        if not last_summary or last_summary[-1] != text:
            log.info("state %s", text)
            last_summary[:] = [text]

    exporter = open_exporter(options.metrics, env, tailscale=options.tailscale)
    lock = InstanceLock(around.files.lock, mutex_name=APP_ID)
    lock.acquire()
    notifier = choose_notifier(
        frozen=paths.is_frozen(), app_icon=paths.app_icon_path()
    )  # it logs which one
    remote = _remote_topology(options, env)
    share = _share_view(options)
    monitor = _build_monitor(options, env, notifier, on_update, remote, exporter, around, share)
    try:
        if exporter is not None:
            exporter.start()
        with stop_on_signals(stop.set):
            if remote is not None:
                remote.start()
            monitor.start()
            while not stop.wait(1.0):
                if not monitor.alive:
                    log.error("the monitor stopped unexpectedly")
                    return 1
    finally:
        monitor.stop()
        if share is not None:
            share.close()  # after the monitor: no sweep publishes to it any more
        if remote is not None:
            remote.stop()
        if exporter is not None:
            exporter.stop()
        lock.release()
    return 0


# ==== tray =====================================================================


def _pause_ends(now: float) -> tuple[float, float]:
    """When "for 1 hour" and "until tomorrow" end, in local time."""
    offset = datetime.fromtimestamp(now).astimezone().utcoffset()
    hour, morning = pause_presets(now, offset.total_seconds() if offset else 0.0)
    return hour.until_wall, morning.until_wall


def _snooze_end(kind: SnoozeKind, now: float) -> float | None:
    """When a snooze begun now ends: the pause presets' ends; None until it is back."""
    if kind is SnoozeKind.UNTIL_BACK:
        return None
    hour, morning = _pause_ends(now)
    return hour if kind is SnoozeKind.HOUR else morning


def _shown_path(path: Path, home: Path) -> str:
    """A path for people: "~/.config/…" under the home folder (not on Windows)."""
    if sys.platform != "win32" and path.is_relative_to(home):
        return f"~/{path.relative_to(home)}"
    return str(path)


def about_text(
    options: AgentOptions,
    env: Mapping[str, str],
    snapshot: Snapshot | None,
    *,
    home: Path | None = None,
    files: paths.AgentFiles | None = None,
) -> tuple[str, str]:
    """About's notification: the version as the title; the files in use and Tailscale's
    version as a few short lines (a notification body has little room)."""
    home = Path.home() if home is None else home
    files = files or paths.agent_files()
    try:
        location = locate_topology(options.topology, env)
    except AgentError as error:
        topology = error.message
    else:
        if location.url is not None:
            topology = location.source
        elif location.origin == ORIGIN_BUNDLED:
            topology = "the bundled default (Open topology file makes your own copy)"
        else:
            topology = _shown_path(location.path, home)
    lines = [
        f"Topology: {topology}",
        f"Log folder: {_shown_path(files.log_dir, home)}",
        f"History: {_shown_path(files.history, home)}",
    ]
    tailnet = snapshot.tailnet if snapshot is not None else None
    if tailnet is not None and tailnet.version:
        lines.append(f"Tailscale {tailnet.version.split('-')[0]}")  # "1.76.1-t…-g…"
    elif tailnet is not None and tailnet.problem is TailscaleProblem.NOT_INSTALLED:
        lines.append("Tailscale: not found on this machine")
    return f"tailnet-agent {__version__}", "\n".join(lines)


def _editable_topology(options: AgentOptions, env: Mapping[str, str]) -> Path:
    """The file "Open topology file" should open: never the read-only bundled copy."""
    location = locate_topology(options.topology, env)
    if location.origin != ORIGIN_BUNDLED:
        return location.path
    target = paths.user_topology_path()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(location.path, target)
        log.info("copied the bundled topology to %s for editing", target)
    return target


def _open_topology_file(
    options: AgentOptions, env: Mapping[str, str], monitor: Monitor, actions: DesktopActions
) -> None:
    """ "Open topology file": the editable copy, opened, and watched by the monitor at once;
    a topology served over HTTP opens in the browser (it is edited where it is served). A
    user file that was deleted is not recreated from the bundled example: its folder opens,
    to put it back (the topology error's lines say how to make a new one)."""
    try:
        location = locate_topology(options.topology, env)
    except TopologyError as error:
        if error.source != str(paths.user_topology_path()):
            raise
        # the user's file was deleted: never recreate it silently with the example's
        # contents; the folder it was in, where it can be put back (or a new one made)
        actions.open_path(paths.config_dir(ensure=True), "the topology folder")
        return
    if location.url is not None:
        actions.open_url(location.url)
        return
    path = _editable_topology(options, env)
    monitor.check_now()  # the copy may have just become the file in use: reload it now
    actions.open_path(path, "the topology file")


def create_topology(
    options: AgentOptions, env: Mapping[str, str], monitor: Monitor, notifier: Notifier
) -> None:
    """ "Create topology from this tailnet…": `init` for this machine, into the user topology
    (where the agent looks, so the monitor switches to it), told in a notification."""
    from agent.init import init_topology

    target = paths.user_topology_path()
    try:
        result = init_topology(
            target,
            tailscale_cli=find_cli(options.tailscale, env),
            discover_ports=None,
            force=False,
        )
    except AgentError as error:
        log.warning("create topology: %s", error.message)
        notifier.notify("Could not create the topology", error.message)
        return
    log.info("created %s from this tailnet: %d nodes", result.path, len(result.nodes))
    monitor.check_now()  # the new user file takes over at once
    shown = _shown_path(result.path, Path.home())
    notifier.notify(
        "Topology created",
        f"Wrote {shown}: {_plural(len(result.nodes), 'node')}. Add your services there "
        "(Open topology file), then put the same file on every machine.",
    )


def demo_command() -> list[str]:
    """`tailnet-agent demo` with this install's own program (the frozen exe, or this
    environment's script)."""
    from agent.desktop import autostart  # the tray's, never run --headless's

    return [*autostart.login_command(), "demo"]


def open_demo(notifier: Notifier) -> None:
    """ "Open the demo": `tailnet-agent demo` as a process of its own (its own state folder
    and lock: it runs beside this agent)."""
    try:
        argv = demo_command()
        subprocess.Popen(  # noqa: S603 — argv is sys.executable and fixed words, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=sys.platform != "win32",
        )
    except (AgentError, OSError) as error:
        message = error.message if isinstance(error, AgentError) else str(error)
        log.warning("open the demo: %s", message)
        notifier.notify("Could not open the demo", message)
        return
    log.info("started the demo: %s", " ".join(argv))


class AutostartSwitch:
    """The tray's "Start at login" checkbox: the OS's real state, and the toggle.

    The state is read when the tray starts, after each toggle, and at most once per
    AUTOSTART_REFRESH_S otherwise (so a `tailnet-agent autostart disable` shows up), never on
    each menu render. `checked()` is None where start at login is unsupported (the item is
    greyed). A toggle enables with the tray's own options or disables; a failure is logged and
    told to the user through the notifier, never raised. `note()` says why the checkbox is
    None (the menu shows it on the greyed item).
    """

    def __init__(
        self,
        options: AgentOptions,
        notifier: Notifier,
        backend: autostart.Autostart,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._notifier = notifier
        self._backend = backend
        self._clock = clock
        self._lock = threading.Lock()
        self._checked: bool | None = None
        self._note = ""
        self._read_at: float | None = None

    def checked(self) -> bool | None:
        """The checkbox: True/False, None when unsupported or unreadable (any thread)."""
        with self._lock:
            due = self._read_at is None or self._clock() - self._read_at >= AUTOSTART_REFRESH_S
        if due:
            self._store(self._read())
        with self._lock:
            return self._checked

    def note(self) -> str:
        """Why the checkbox is None: "not on this system", "could not be read (see the log)"."""
        self.checked()
        with self._lock:
            return self._note

    def _read(self) -> autostart.AutostartState | None:
        try:
            return self._backend.status()
        except AgentError as error:
            log.warning("start at login: %s", error.message)
            return None

    def _store(self, state: autostart.AutostartState | None) -> None:
        with self._lock:
            self._checked = None if state is None or not state.supported else state.enabled
            if state is None:
                self._note = "could not be read (see the log)"
            elif not state.supported:
                self._note = state.detail or "not available here"
            else:
                self._note = ""
            self._read_at = self._clock()

    def toggle(self) -> bool | None:
        """Turn start at login off when on, on when off; returns the checkbox afterwards."""
        from agent.desktop import autostart

        try:
            current = self._backend.status()
            if not current.supported:
                raise AutostartError(current.detail)
            if current.enabled:
                state = self._backend.disable()
            else:
                command = autostart.login_command(
                    topology=self._options.topology,
                    node=self._options.node,
                    tailscale=self._options.tailscale,
                )
                state = self._backend.enable(command)
        except (AgentError, OSError) as error:
            message = error.message if isinstance(error, AgentError) else str(error)
            log.warning("start at login: %s", message)
            self._notifier.notify("Start at login failed", message)
            self._store(self._read())
        else:
            log.info(
                "start at login %s: %s %s",
                "on" if state.enabled else "off",
                state.location,
                autostart.format_command(state),
            )
            if state.detail:
                log.info("start at login: %s", state.detail)
            self._store(state)
        with self._lock:
            return self._checked


def _is_bundled(snapshot: Snapshot | None) -> bool:
    """Whether `snapshot` watches the bundled example topology."""
    return snapshot is not None and is_bundled_topology(snapshot.topology)


def tray_view(
    status: MonitorStatus, *, autostart: bool | None, autostart_note: str = ""
) -> TrayView:
    """What the tray shows for one monitor status."""
    return TrayView(
        status,
        bundled_topology=_is_bundled(status.snapshot),
        autostart=autostart,
        autostart_note=autostart_note,
        version=__version__,
        last_checked=(
            time.strftime("%H:%M:%S", time.localtime(status.snapshot.at))
            if status.snapshot is not None
            else ""
        ),
    )


class ShownView:
    """The view the tray shows, replaced under one lock: a monitor update racing a toggle
    cannot publish the old checkbox after the new one."""

    def __init__(self, publish: Callable[[TrayView], None], first: TrayView) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._view = first

    @property
    def view(self) -> TrayView:
        return self._view

    def change(self, make: Callable[[TrayView], TrayView]) -> None:
        """Publish `make(the view shown now)`; `make` runs under the lock."""
        with self._lock:
            self._view = make(self._view)
            self._publish(self._view)


MenuHandler = Callable[[str], None]
"""Does what one kind of menu action does; given the action's payload (URL, address or "")."""


def menu_handlers(
    options: AgentOptions,
    env: Mapping[str, str],
    *,
    monitor: Monitor,
    stop_tray: Callable[[], None],
    switch: AutostartSwitch,
    actions: DesktopActions,
    notifier: Notifier,
    shown: ShownView,
    refresh_topology: Callable[[], None] | None = None,
    files: paths.AgentFiles | None = None,
) -> dict[ActionKind, MenuHandler]:
    """The tray's dispatch table: every ActionKind the menu emits, and what it does.
    `refresh_topology`: ask a topology URL again (on Check now)."""
    files = files or paths.agent_files()

    def check_now(_: str) -> None:
        if refresh_topology is not None:
            refresh_topology()
        monitor.check_now()

    def toggle_autostart(_: str) -> None:
        checked = switch.toggle()
        shown.change(lambda view: replace(view, autostart=checked, autostart_note=switch.note()))

    def open_logs(_: str) -> None:
        files.log_dir.mkdir(parents=True, exist_ok=True)
        actions.open_path(files.log_dir, "the log folder")

    def snoozer(kind: SnoozeKind) -> MenuHandler:
        def snooze(payload: str) -> None:
            monitor.snooze(parse_key(payload), kind, _snooze_end(kind, time.time()))

        return snooze

    def about(_: str) -> None:
        title, body = about_text(options, env, shown.view.status.snapshot, files=files)
        log.info("%s: %s", title, body.replace("\n", "; "))
        notifier.notify(title, body)

    return {
        ActionKind.CHECK_NOW: check_now,
        ActionKind.PAUSE_1H: lambda _: monitor.pause_notifications(_pause_ends(time.time())[0]),
        ActionKind.PAUSE_TOMORROW: lambda _: monitor.pause_notifications(
            _pause_ends(time.time())[1]
        ),
        ActionKind.RESUME: lambda _: monitor.resume_notifications(),
        ActionKind.TOGGLE_AUTOSTART: toggle_autostart,
        ActionKind.OPEN_TOPOLOGY: lambda _: _open_topology_file(options, env, monitor, actions),
        ActionKind.OPEN_LOGS: open_logs,
        ActionKind.ABOUT: about,
        # run() returns on the main thread, which then stops the monitor
        ActionKind.QUIT: lambda _: stop_tray(),
        ActionKind.OPEN_URL: actions.open_url,
        ActionKind.COPY_ADDRESS: actions.copy,
        ActionKind.SNOOZE_1H: snoozer(SnoozeKind.HOUR),
        ActionKind.SNOOZE_TOMORROW: snoozer(SnoozeKind.TOMORROW),
        ActionKind.SNOOZE_UNTIL_BACK: snoozer(SnoozeKind.UNTIL_BACK),
        ActionKind.UNSNOOZE: lambda payload: monitor.unsnooze(parse_key(payload)),
        ActionKind.CREATE_TOPOLOGY: lambda _: _in_background(
            lambda: create_topology(options, env, monitor, notifier)
        ),
        ActionKind.OPEN_DEMO: lambda _: open_demo(notifier),
    }


def _in_background(job: Callable[[], None]) -> None:
    """Run a slow menu action (it reads Tailscale) off the tray's thread."""
    threading.Thread(target=job, name="menu-action", daemon=True).start()


def no_desktop_libraries(exc: ModuleNotFoundError) -> str:
    """What to say when the tray's libraries are missing (`pip install tailnet-agent`)."""
    return (
        f"the tray needs the desktop libraries ({exc.name} is not installed): "
        "pip install 'tailnet-agent[desktop]', or run `tailnet-agent run --headless`"
    )


def tray_unavailable() -> str | None:
    """Why no tray can run here (no desktop libraries, no display or tray host), or None."""
    try:
        from agent.desktop.tray import tray_available
    except ModuleNotFoundError as exc:  # a server install: no pystray or Pillow
        return no_desktop_libraries(exc)
    ok, why = tray_available()
    return None if ok else why


def run_tray(
    options: AgentOptions,
    env: Mapping[str, str] = os.environ,
    surroundings: Surroundings | None = None,
) -> int:
    """The tray on this (main) thread, the monitor in a worker thread."""
    why = tray_unavailable()
    if why is not None:
        print(f"tailnet-agent: {why}", file=sys.stderr)
        return 3
    from agent.desktop import autostart
    from agent.desktop.actions import DesktopActions
    from agent.desktop.tray import Tray

    exporter = open_exporter(options.metrics, env, tailscale=options.tailscale)
    around = surroundings or Surroundings()
    lock = InstanceLock(around.files.lock, mutex_name=APP_ID)
    lock.acquire()
    notifier = choose_notifier(frozen=paths.is_frozen(), app_icon=paths.app_icon_path())
    backend = (
        autostart.backend(env=env)
        if around.no_autostart is None
        else autostart.Unsupported(around.no_autostart)
    )
    switch = AutostartSwitch(options, notifier, backend)
    actions = DesktopActions(notifier)
    handlers: dict[ActionKind, MenuHandler] = {}
    in_use = _InUseLog(options.node)

    def on_action(action: MenuAction) -> None:
        log.debug("menu action %s", action)
        handlers[action.kind](action.payload)

    tray = Tray(on_action)
    shown = ShownView(
        tray.publish, TrayView(MonitorStatus(snapshot=None, now=time.time()), version=__version__)
    )

    def on_update(status: MonitorStatus) -> None:
        in_use.update(status.snapshot)
        shown.change(
            lambda _: tray_view(status, autostart=switch.checked(), autostart_note=switch.note())
        )

    remote = _remote_topology(options, env)
    share = _share_view(options)
    monitor = _build_monitor(options, env, notifier, on_update, remote, exporter, around, share)
    handlers.update(
        menu_handlers(
            options,
            env,
            monitor=monitor,
            stop_tray=tray.stop,
            switch=switch,
            actions=actions,
            notifier=notifier,
            shown=shown,
            refresh_topology=remote.refresh_soon if remote is not None else None,
            files=around.files,
        )
    )
    shown.change(
        lambda view: replace(view, autostart=switch.checked(), autostart_note=switch.note())
    )
    try:
        if exporter is not None:
            exporter.start()
        with stop_on_signals(tray.stop) as signals:  # as Quit does: run() returns, exit 0

            def stop_when_told() -> None:
                assert around.stop is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
                around.stop.wait()
                tray.stop()

            def setup() -> None:  # in pystray's setup thread, once its loop runs
                if signals is not None and tray.backend in GLIB_TRAY_BACKENDS:
                    signals.reclaim_in_glib_loop()
                if remote is not None:
                    remote.start()
                monitor.start()
                if around.stop is not None:
                    threading.Thread(target=stop_when_told, name="stop-tray", daemon=True).start()

            tray.run(setup=setup)
    finally:
        monitor.stop()
        if share is not None:
            share.close()  # after the monitor: no sweep publishes to it any more
        if remote is not None:
            remote.stop()
        if exporter is not None:
            exporter.stop()
        lock.release()
    return 0
