"""The tray menu as plain data: what the user reads and can click, for one TrayView.

Pure. MonitorStatus is what the monitor publishes after each pass (the snapshot and its
side facts: notifications paused, topology error, grace, uptime, "since" times); a
TrayView holds one, plus what only the tray knows (autostart, the version).
`build_menu(view, local_time=...)` turns a TrayView into a tuple of MenuEntry;
`overall_health` gives the icon colour and `tooltip` the hover text. The tray edge
(agent.desktop.tray) only translates these entries into pystray.

Every line carries a mark that reads without colour: ✓ good, ! degraded, × failing,
? unknown (and – for something down that never alarms, such as an info service).
On a first run (the bundled example in use, this machine not one of its nodes or without
Tailscale) the menu says so in one line and offers to create a topology from this tailnet,
the demo and the topology file instead of the example's nodes.

A clickable entry carries a MenuAction: an ActionKind (check now, pause, resume, start
at login, open the topology file or the log folder, about, quit, open a URL, copy an
address, create a topology, open the demo) and, for OPEN_URL and COPY_ADDRESS, the URL or
address. The composition root maps every ActionKind to its handler (agent.app.menu_handlers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from agent.core.confirm import Settling
from agent.core.details import detail_line
from agent.core.events import Event, Subject
from agent.core.evidence import Change, why_text
from agent.core.exposure import exposed_line
from agent.core.figures import format_duration, format_latency
from agent.core.first_run import first_run_words
from agent.core.health import problem_words, worst
from agent.core.hints import explain, peer_offline_hint
from agent.core.keys import key_warning
from agent.core.model import (
    CheckKind,
    Finding,
    FindingKind,
    Health,
    Impact,
    Link,
    NodeStatus,
    ProbeState,
    Reason,
    ServiceKey,
    ServiceStatus,
    Snapshot,
)
from agent.core.path import describe_path
from agent.core.redact import scrub
from agent.core.share_view import matrix_lines
from agent.core.snooze import Snooze, SnoozeKey, covering, key_text

__all__ = [
    "MARKS",
    "SEPARATOR",
    "TOOLTIP_MAX",
    "TOPOLOGY_ERROR_LINES",
    "ActionKind",
    "MenuAction",
    "MenuEntry",
    "MonitorStatus",
    "TrayView",
    "build_menu",
    "first_run_line",
    "format_uptime",
    "node_title",
    "overall_health",
    "service_line",
    "status_health",
    "status_words",
    "tooltip",
]

MARKS: dict[Health, str] = {
    Health.GREEN: "✓",
    Health.AMBER: "!",
    Health.RED: "×",
    Health.GREY: "?",
}
"""One mark per colour, so every state reads without colour."""

QUIET_MARK = "–"  # down, but never an alarm (an info service, a laptop that is away)
TOOLTIP_MAX = 127  # Windows: NOTIFYICONDATA.szTip holds 128 UTF-16 units, NUL included
LINE_MAX = 96  # longer menu lines are cut with "…": menus do not wrap
NAME_MAX = 40  # a longer service name is shortened ("…"), so its port and state still show
NODE_NAME_MIN = 24  # a node's name shortens for its state words, down to this much
STALE_SWEEPS = 3  # a snapshot older than this many intervals says when it was taken
TOPOLOGY_ERROR_LINES = 8  # menu lines for the topology's problems, the last one cut
HEALTH_WARNINGS_SHOWN = 3  # Tailscale's own warnings listed under the status line


@dataclass(frozen=True, slots=True)
class MonitorStatus:
    """What the monitor knows now, published after each pass (any thread) as one value: the
    tray shows it (TrayView holds it), the headless agent logs it."""

    snapshot: Snapshot | None  # None: no data yet (grey, "Checking…")
    now: float
    paused_until: float | None = None  # notifications paused until (wall s)
    topology_error: str | None = None  # last reload failed; the last good topology is in use
    in_grace: bool = False  # settling after a wake, clock change, network change, restart
    settling: Settling | None = None  # why, and the confirmed colour kept meanwhile
    # outside grace: the confirmed colour and what only the reading tells (core.shown);
    # None: the snapshot's own colour (a status built without a monitor's state)
    health: Health | None = None
    uptime: Mapping[ServiceKey, float | None] = field(default_factory=dict)
    # seconds of data behind an uptime that spans less than the full 24 h ("over 5 min")
    uptime_over: Mapping[ServiceKey, float] = field(default_factory=dict)
    since: Mapping[ServiceKey, float] = field(default_factory=dict)
    events: tuple[Event, ...] = ()  # the events of this pass (already recorded)
    snoozes: Mapping[SnoozeKey, Snooze] = field(default_factory=dict)  # core.snooze
    changes: Mapping[Subject, Change] = field(default_factory=dict)  # latest, with evidence
    notes: tuple[str, ...] = ()  # the wiring's own lines ("Metrics: waiting for Tailscale…")

    @property
    def paused(self) -> bool:
        return self.paused_until is not None and self.paused_until > self.now


@dataclass(frozen=True, slots=True)
class TrayView:
    """Everything the tray shows: the monitor's status and what only the tray knows."""

    status: MonitorStatus
    autostart: bool | None = None  # None: not supported here (item disabled)
    autostart_note: str = ""  # why it is None, said on the greyed item
    version: str = ""
    last_checked: str = ""  # when the last sweep finished, local "14:05:09" ("" for none)
    bundled_topology: bool = False  # the topology in use is the bundled example (Sparklio)


class ActionKind(Enum):
    """What a menu item does when clicked."""

    CHECK_NOW = "check_now"
    PAUSE_1H = "pause_1h"
    PAUSE_TOMORROW = "pause_tomorrow"
    RESUME = "resume"
    TOGGLE_AUTOSTART = "toggle_autostart"
    OPEN_TOPOLOGY = "open_topology"
    OPEN_LOGS = "open_logs"
    ABOUT = "about"
    QUIT = "quit"
    OPEN_URL = "open"  # payload: the http URL
    COPY_ADDRESS = "copy"  # payload: the address
    SNOOZE_1H = "snooze_1h"  # payload: the subject, core.snooze.key_text
    SNOOZE_TOMORROW = "snooze_tomorrow"
    SNOOZE_UNTIL_BACK = "snooze_back"
    UNSNOOZE = "unsnooze"
    CREATE_TOPOLOGY = "create_topology"  # `init` for this machine's tailnet (first run)
    OPEN_DEMO = "open_demo"  # the demo network (first run)


@dataclass(frozen=True, slots=True)
class MenuAction:
    """A click's meaning: its kind and, for OPEN_URL and COPY_ADDRESS, the URL or address.
    Written for logs as "check_now", "open:http://…", "copy:100.123.51.5"."""

    kind: ActionKind
    payload: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.payload}" if self.payload else self.kind.value


@dataclass(frozen=True)
class MenuEntry:
    """One menu line. A separator has separator=True and nothing else; a submenu has children."""

    text: str
    action: MenuAction | None = None
    enabled: bool = True
    checked: bool | None = None  # None: not a check item
    default: bool = False  # bold; run on a left click where the platform allows
    children: tuple[MenuEntry, ...] = ()
    separator: bool = False


SEPARATOR = MenuEntry("", enabled=False, separator=True)


def _info(text: str) -> MenuEntry:
    """A line to read, not to click."""
    return MenuEntry(_clip(text, LINE_MAX), enabled=False)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: no newlines or runs of blanks from details
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _clip_utf16(text: str, limit: int) -> str:
    """Cut to `limit` UTF-16 code units (what Windows counts), ending with "…" when cut."""

    def units(s: str) -> int:
        return len(s.encode("utf-16-le")) // 2

    if units(text) <= limit:
        return text
    while units(text) > limit - 1:
        text = text[:-1]
    return text.rstrip() + "…"


# ==== formatting pieces ========================================================


def format_uptime(fraction: float) -> str:
    """0.998 -> "99.8%"; rounds down, so only a perfect day reads "100%", and "0.0%" only
    when it was never up: 0.0004 -> "<0.1%"."""
    if fraction >= 1.0:
        return "100%"
    percent = math.floor(max(fraction, 0.0) * 1000) / 10
    if percent == 0 and fraction > 0:
        return "<0.1%"
    return f"{percent:.1f}%"


def _uptime_window(over_s: float | None) -> str:
    # shown only once the data spans a sweep interval: "100% over 0 s" (just after start)
    # says nothing
    """ "24 h", or the time the data covers while it is younger: "over 5 min"."""
    return "24 h" if over_s is None else f"over {format_duration(over_s)}"


def first_run_line(view: TrayView) -> str | None:
    """On a first run — the bundled example in use, and this machine none of its nodes or
    without Tailscale — the one line that says so; None otherwise (core.first_run)."""
    return first_run_words(view.status.snapshot, bundled=view.bundled_topology)


def overall_health(view: TrayView) -> Health:
    """The icon colour: grey with no data or on a first run (nothing of this machine's is
    watched); while settling, the confirmed states' colour."""
    if view.status.snapshot is None or first_run_line(view) is not None:
        return Health.GREY
    return status_health(view.status)


def status_health(status: MonitorStatus) -> Health:
    """The monitor's colour, for the icon and the headless state line: while settling, the
    confirmed states'; otherwise confirmed where the monitor confirms (`health`), so a first
    failed probe is re-checked before anything turns red; grey with no data."""
    if status.snapshot is None:
        return Health.GREY
    if status.in_grace:
        return status.settling.health if status.settling is not None else Health.GREY
    return status.health if status.health is not None else status.snapshot.overall


def status_words(status: MonitorStatus) -> str:
    """What is going on in a few words: the settling line while settling, else the
    summary of the latest reading, "(re-checking)" after it while that reading is worse than
    the colour shown (a failure not confirmed yet); with no snapshot, the topology error."""
    if status.snapshot is None:
        return status.topology_error or "no data yet"
    if status.in_grace:
        return _settling_line(status.settling)
    text = status.snapshot.summary
    read, shown = status.snapshot.overall, status_health(status)
    if read in (Health.RED, Health.AMBER) and read is not shown and worst([read, shown]) is read:
        text += " (re-checking)"
    return text


def _settling_line(settling: Settling | None) -> str:
    """ "Settling after a sleep/wake — known: Mac mini: FastAPI down; Desktop: relayed"."""
    if settling is None:
        return "Settling…"
    text = f"Settling after {settling.reason.words}"
    if not settling.problems:
        return f"{text} — alerts wait until the network has settled"
    known = "; ".join(settling.problems[:2])
    others = len(settling.problems) - 2
    if others > 0:
        known += f" and {others} other problem{'s' if others > 1 else ''}"
    return f"{text} — known: {known}"


def _status_line(view: TrayView, local_time: Callable[[float], str] | None) -> str:
    """The first line without its mark: what is going on, in one sentence (after the
    topology's name, which the menu title shows and the tooltip puts beside the app's)."""
    snapshot = view.status.snapshot
    if snapshot is None:
        if view.status.topology_error:
            return "No usable topology — see the topology error below"
        return "Checking…"
    first_run = first_run_line(view)
    if first_run is not None:
        return first_run
    text = status_words(view.status)
    if view.status.in_grace:
        return text
    interval = snapshot.topology.defaults.interval_s
    if local_time is not None and view.status.now - snapshot.at > STALE_SWEEPS * max(interval, 1.0):
        text += f" (last checked {local_time(snapshot.at)})"
    return text


def tooltip(
    view: TrayView,
    *,
    name: str = "tailnet-agent",
    local_time: Callable[[float], str] | None = None,
) -> str:
    """The hover text: the app and topology names and the state, within Windows' 127
    characters: "tailnet-agent (Sparklio): All good — 3 nodes, 8 of 8 services up".

    A pause is said at the end, with its end time when `local_time` is given, and is never
    the part cut off: "tailnet-agent (Sparklio): All good … · notifications paused until 14:00".
    """
    if view.status.snapshot is not None:
        name = f"{name} ({view.status.snapshot.topology.name})"
    paused = ""
    if view.status.paused and view.status.paused_until is not None:
        until = f" until {local_time(view.status.paused_until)}" if local_time is not None else ""
        paused = f" · notifications paused{until}"
    text = _clip(f"{name}: {_status_line(view, None)}", 10_000)
    room = TOOLTIP_MAX - len(paused.encode("utf-16-le")) // 2
    return _clip_utf16(text, room) + paused


# ==== nodes ====================================================================


def _slow(node: NodeStatus, snapshot: Snapshot) -> bool:
    limit = snapshot.topology.defaults.latency_warn_ms
    return not node.is_self and node.latency_ms is not None and node.latency_ms > limit


def _failing(node: NodeStatus) -> list[ServiceStatus]:
    return [s for s in node.services if s.health in (Health.RED, Health.AMBER)]


def _status_word(node: NodeStatus, snapshot: Snapshot) -> str:
    """A few words for the node's title: "OK", "offline", "FastAPI and Redis down, relayed",
    the summary's words (core.health.problem_words) and the info services that are down."""
    words = problem_words(
        node,
        latency_warn_ms=snapshot.topology.defaults.latency_warn_ms,
        tailnet_running=snapshot.tailnet.running,
    )
    if words != ["offline"]:
        failing = _failing(node)
        quiet = [s for s in node.services if s.result.state is ProbeState.DOWN and s not in failing]
        if len(quiet) == 1:
            words.insert(1 if failing else 0, f"{quiet[0].service.name} down (info)")
        elif quiet:
            words.insert(1 if failing else 0, f"{len(quiet)} info services down")
    if words:
        return ", ".join(words)
    if node.health is Health.GREY:
        return "unknown" if not snapshot.tailnet.running else "not checked"
    return "OK"


def node_title(node: NodeStatus, snapshot: Snapshot) -> str:
    """ "✓ Mac mini — Backend Server · OK", "(this machine)" added for our own node."""
    mine = " (this machine)" if node.is_self else ""
    tail = f"{mine} · {_status_word(node, snapshot)}"
    room = max(NODE_NAME_MIN, LINE_MAX - len(MARKS[node.health]) - 1 - len(tail))
    return _clip(f"{MARKS[node.health]} {_clip(node.node.name, room)}{tail}", LINE_MAX)


def _link_line(node: NodeStatus, snapshot: Snapshot) -> str:
    if node.is_self:
        return "This machine"
    if node.path is not None and node.path.latency_ms is not None:
        text = f"Link: {describe_path(node.path)}"  # what `tailscale ping` found
        if _slow(node, snapshot):
            text += f" (slow: warn above {snapshot.topology.defaults.latency_warn_ms:.0f} ms)"
        return text
    match node.link:
        case Link.DIRECT:
            return "Link: direct"
        case Link.RELAY:
            region = f" '{node.relay}'" if node.relay else ""
            return f"Link: relayed via DERP{region} — slower than direct"
        case Link.PEER_RELAY:
            return "Link: via a peer relay"
        case Link.IDLE:
            return "Link: idle (no recent traffic)"
        case Link.OFFLINE:
            if node.node.always_on:
                return f"Link: offline — {peer_offline_hint(node.node.hostname)}"
            return "Link: offline (not an always-on node)"
        case _:
            if not snapshot.tailnet.running:
                return "Link: unknown (Tailscale is not running here)"
            return f"Link: unknown — no peer with IP {node.node.ip} in this tailnet"


def _latency_line(node: NodeStatus, snapshot: Snapshot) -> str | None:
    if node.is_self or (node.path is not None and node.path.latency_ms is not None):
        return None  # the link line carries the ping's round trip
    if node.latency_ms is None:
        return "Latency: — (no service answered)"
    text = f"Latency: {format_latency(node.latency_ms)}"
    if _slow(node, snapshot):
        warn = snapshot.topology.defaults.latency_warn_ms
        text += f" (slow: warn above {warn:.0f} ms)"
    return text


def _service_mark(status: ServiceStatus) -> str:
    state = status.result.state
    if state is ProbeState.UP:
        return MARKS[Health.GREEN]
    if state is ProbeState.DOWN:
        return QUIET_MARK if status.health is Health.GREY else MARKS[status.health]
    return MARKS[Health.GREY]


def service_line(
    node_id: str,
    status: ServiceStatus,
    view: TrayView,
    local_time: Callable[[float], str],
    *,
    hostname: str = "",
) -> str:
    """ "✓ FastAPI :8000 — up · 99.8% 24 h", "× FastAPI :8000 — down since 10:42 — why"
    (the why with its hint; `hostname` is the node's, for the hints that name it)."""
    service = status.service
    result = status.result
    key = (node_id, service.name)
    head = f"{_service_mark(status)} {_clip(service.name, NAME_MAX)} :{service.port}"
    since = view.status.since.get(key)
    if result.state is ProbeState.UP:
        text = f"{head} — up"
        uptime = view.status.uptime.get(key)
        over = view.status.uptime_over.get(key)
        snapshot = view.status.snapshot
        interval = snapshot.topology.defaults.interval_s if snapshot is not None else 0.0
        if uptime is not None and (over is None or over >= max(interval, 1.0)):
            text += f" · {format_uptime(uptime)} {_uptime_window(over)}"
    elif result.state is ProbeState.DOWN:
        text = f"{head} — down"
        if since is not None:
            text += f" since {local_time(since)}"
        if result.reason is Reason.PEER_OFFLINE:
            text += " — peer offline in Tailscale"  # the link line carries the hint
        elif result.detail:
            text += f" — {explain(result, hostname)}"
        if service.impact is Impact.INFO:
            text += " (info only)"
    elif result.state is ProbeState.SKIPPED:
        text = f"{head} — not checked"
        if result.detail:
            text += f" — {result.detail}"
    else:
        text = f"{head} — unknown"
        if result.detail:
            text += f" — {explain(result, hostname)}"
    return _clip(scrub(text, len(text)), LINE_MAX)  # a probe's detail may quote a URL


def _node_actions(node: NodeStatus) -> list[MenuEntry]:
    actions: list[MenuEntry] = []
    for status in node.services:
        service = status.service
        if service.check is CheckKind.HTTP and service.open:
            address = status.address or f"{node.node.ip}:{service.port}"
            path = service.path if service.path.startswith("/") else f"/{service.path}"
            actions.append(
                MenuEntry(
                    f"Open {service.name} in browser",
                    MenuAction(ActionKind.OPEN_URL, f"http://{address}{path}"),
                )
            )
    if node.node.ip:
        actions.append(
            MenuEntry(
                f"Copy address {node.node.ip}", MenuAction(ActionKind.COPY_ADDRESS, node.node.ip)
            )
        )
    return actions


def _snoozed_words(entry: Snooze, local_time: Callable[[float], str]) -> str:
    """ "snoozed until 15:00", "snoozed until it is back"."""
    if entry.until is None:
        return "snoozed until it is back"
    return f"snoozed until {local_time(entry.until)}"


def _with_tail(text: str, tail: str) -> str:
    """A line with `tail` kept whole at its end, the rest cut to make room."""
    return _clip(text, LINE_MAX - len(tail)) + tail


def _why_line(change: Change | None, local_time: Callable[[float], str]) -> MenuEntry | None:
    """ "Why: HTTP 503 · body: 'upstream busy' · direct · 12 ms · 14:02" for a change for
    the worse, "Back: HTTP 200 · direct · 3 ms · 14:05" for a recovery (core.evidence)."""
    if change is None:
        return None
    facts = why_text(change.evidence, latency=format_latency, at=local_time(change.at))
    return _info(f"{'Why' if change.bad else 'Back'}: {facts}") if facts else None


def _snooze_menu(
    key: SnoozeKey,
    own: Snooze | None,
    *,
    wrong_now: bool,
    local_time: Callable[[float], str],
) -> MenuEntry:
    """ "Snooze alerts" (1 hour / until tomorrow / until it is back), or, while snoozed,
    "Alerts snoozed until 15:00" with "Resume alerts"."""
    payload = key_text(key)
    title = "Snooze alerts"
    if own is not None:
        title = f"Alerts {_snoozed_words(own, local_time)}"
    options: list[MenuEntry] = [
        MenuEntry("For 1 hour", MenuAction(ActionKind.SNOOZE_1H, payload)),
        MenuEntry("Until tomorrow", MenuAction(ActionKind.SNOOZE_TOMORROW, payload)),
        MenuEntry(
            "Until it is back",
            MenuAction(ActionKind.SNOOZE_UNTIL_BACK, payload),
            enabled=wrong_now,  # "back" ends it at once for what is good now
        ),
    ]
    if own is not None:
        options += [SEPARATOR, MenuEntry("Resume alerts", MenuAction(ActionKind.UNSNOOZE, payload))]
    return MenuEntry(title, children=tuple(options))


def _service_menu(
    node: NodeStatus,
    status: ServiceStatus,
    view: TrayView,
    local_time: Callable[[float], str],
) -> MenuEntry:
    """A service's line, with its submenu: why it is in its state, and its snooze."""
    node_id, name = node.node.id, status.service.name
    line = service_line(node_id, status, view, local_time, hostname=node.node.hostname)
    snoozes = view.status.snoozes
    entry = covering(snoozes, node_id, name)
    if entry is not None:
        line = _with_tail(line, f" · {_snoozed_words(entry, local_time)}")
    children: list[MenuEntry] = []
    why = _why_line(view.status.changes.get(("service", node_id, name)), local_time)
    if why is not None:
        children += [why, SEPARATOR]
    if entry is not None and entry.service == "":
        children.append(_info(f"Alerts {_snoozed_words(entry, local_time)} with the node"))
    else:
        wrong = status.result.state is not ProbeState.UP
        children.append(
            _snooze_menu((node_id, name), entry, wrong_now=wrong, local_time=local_time)
        )
    return MenuEntry(line, children=tuple(children))


def _node_menu(
    node: NodeStatus, view: TrayView, snapshot: Snapshot, local_time: Callable[[float], str]
) -> MenuEntry:
    children: list[MenuEntry] = [_info(_link_line(node, snapshot))]
    latency = _latency_line(node, snapshot)
    if latency is not None:
        children.append(_info(latency))
    expiring = key_warning(node, view.status.now)
    if expiring is not None:  # the fact, then its advice on a line of its own (menus cut)
        fact, _, advice = expiring.partition(" — ")
        children.append(_info(f"{MARKS[Health.AMBER]} {fact}"))
        if advice:
            children.append(_info(f"↳ {advice}"))
    changes = view.status.changes
    for family in ("peer", "link"):
        change = changes.get((family, node.node.id, ""))
        why = _why_line(change, local_time) if change is not None and change.bad else None
        if why is not None:
            children.append(why)
    if node.services:
        children.append(SEPARATOR)
        for s in node.services:
            children.append(_service_menu(node, s, view, local_time))
            details = detail_line(s.service, s.result) if s.result.state is ProbeState.UP else ""
            if details:
                children.append(_info(f"↳ {details}"))  # under its service line
    actions = _node_actions(node)
    if actions:
        children.append(SEPARATOR)
        children += actions
    own = view.status.snoozes.get((node.node.id, ""))
    wrong = node.health is not Health.GREEN or any(
        s.result.state is not ProbeState.UP for s in node.services
    )
    children += [
        SEPARATOR,
        _snooze_menu((node.node.id, ""), own, wrong_now=wrong, local_time=local_time),
    ]
    title = node_title(node, snapshot)
    if own is not None:
        title = _with_tail(title, f" · {_snoozed_words(own, local_time)}")
    return MenuEntry(title, children=tuple(children))


# ==== the whole menu ===========================================================


def _topology_error_menu(view: TrayView, error: str) -> MenuEntry:
    if view.status.snapshot is not None:
        title = f"{MARKS[Health.AMBER]} Topology error — using last good file"
    else:
        title = f"{MARKS[Health.RED]} Topology error — no usable topology"
    lines = _wrap(error, 80, max_lines=TOPOLOGY_ERROR_LINES)
    return MenuEntry(
        title,
        children=(
            *(_info(line) for line in lines),
            SEPARATOR,
            MenuEntry("Open topology file", MenuAction(ActionKind.OPEN_TOPOLOGY)),
        ),
    )


def _findings_menus(findings: tuple[Finding, ...]) -> list[MenuEntry]:
    """ "! 1 service exposed beyond Tailscale" and "! Topology drift: 2 changes", each with
    a submenu of what was found and the fix for it."""
    menus: list[MenuEntry] = []
    for kind in (FindingKind.EXPOSURE, FindingKind.DRIFT):
        found = [f for f in findings if f.kind is kind]
        if not found:
            continue
        if kind is FindingKind.EXPOSURE:
            title = exposed_line(len(found))
        else:
            title = f"Topology drift: {len(found)} change{'' if len(found) == 1 else 's'}"
        mark = MARKS[Health.AMBER] if any(f.colours for f in found) else QUIET_MARK
        children: list[MenuEntry] = []
        for finding in found:
            if children:
                children.append(SEPARATOR)
            children += [_info(line) for line in _wrap(finding.text, 80, max_lines=2)]
            children += [_info(line) for line in _wrap(f"Fix: {finding.fix}", 80, max_lines=4)]
        if kind is FindingKind.DRIFT:
            children += [
                SEPARATOR,
                MenuEntry("Open topology file", MenuAction(ActionKind.OPEN_TOPOLOGY)),
            ]
        menus.append(MenuEntry(f"{mark} {title}", children=tuple(children)))
    return menus


def _wrap(text: str, width: int, *, max_lines: int) -> list[str]:
    """Greedy word wrap for a few disabled menu lines; each line of `text` (one topology
    problem) starts a menu line of its own."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        current = ""
        for word in paragraph.split():
            if current and len(current) + 1 + len(word) > width:
                lines.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if current:
            lines.append(current)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _clip(" ".join(lines[max_lines - 1 :]), width)]
    return [_clip(line, width) for line in lines] or [""]


def _pause_menu(view: TrayView, local_time: Callable[[float], str]) -> MenuEntry:
    if view.status.paused and view.status.paused_until is not None:
        title = f"Notifications paused until {local_time(view.status.paused_until)}"
    else:
        title = "Pause notifications"
    return MenuEntry(
        title,
        children=(
            MenuEntry("For 1 hour", MenuAction(ActionKind.PAUSE_1H)),
            MenuEntry("Until tomorrow", MenuAction(ActionKind.PAUSE_TOMORROW)),
            MenuEntry("Resume", MenuAction(ActionKind.RESUME), enabled=view.status.paused),
            SEPARATOR,
            MenuEntry("Critical alerts still show", enabled=False),
        ),
    )


def _first_run_entries(snapshot: Snapshot) -> tuple[MenuEntry, ...]:
    """What a first run offers instead of the example's nodes (all grey or red here)."""
    running = snapshot.tailnet.running
    return (
        MenuEntry(
            "Create topology from this tailnet…"
            if running
            else "Create topology from this tailnet… (needs Tailscale running)",
            MenuAction(ActionKind.CREATE_TOPOLOGY),
            enabled=running,
        ),
        MenuEntry("Open the demo", MenuAction(ActionKind.OPEN_DEMO)),
        MenuEntry("Open topology file", MenuAction(ActionKind.OPEN_TOPOLOGY)),
    )


def build_menu(view: TrayView, *, local_time: Callable[[float], str]) -> tuple[MenuEntry, ...]:
    """The whole tray menu, top to bottom. `local_time(wall_s)` formats a time ("14:05")."""
    health = overall_health(view)
    named = "" if view.status.snapshot is None else f"{view.status.snapshot.topology.name}: "
    entries: list[MenuEntry] = [
        MenuEntry(
            _clip(f"{MARKS[health]} {named}{_status_line(view, local_time)}", LINE_MAX),
            MenuAction(ActionKind.CHECK_NOW),
            default=True,
        )
    ]
    if view.status.topology_error:
        entries.append(_topology_error_menu(view, view.status.topology_error))
    entries += [_info(_clip(note, LINE_MAX)) for note in view.status.notes]
    snapshot = view.status.snapshot
    if snapshot is not None:  # Tailscale's own warnings about this machine
        entries += [
            _info(f"{MARKS[Health.AMBER]} Tailscale: {warning}")
            for warning in snapshot.tailnet.health_warnings[:HEALTH_WARNINGS_SHOWN]
        ]
    first_run = first_run_line(view) is not None
    if first_run and snapshot is not None:
        entries += [SEPARATOR, *_first_run_entries(snapshot)]
    elif snapshot is not None and snapshot.nodes:
        entries.append(SEPARATOR)
        entries += [_node_menu(n, view, snapshot, local_time) for n in snapshot.nodes]
        matrix = matrix_lines(snapshot)  # --share-view: from → to, per service
        if matrix:
            lines = tuple(_info(_clip(line, LINE_MAX)) for line in matrix)
            entries.append(MenuEntry("Who sees whom", children=lines))
        entries += _findings_menus(snapshot.findings)  # after the nodes they are about
    version = f" {view.version}" if view.version else ""
    entries.append(SEPARATOR)
    if view.last_checked and snapshot is not None:
        entries.append(_info(f"Last checked {view.last_checked}"))
    entries += [
        MenuEntry("Check now", MenuAction(ActionKind.CHECK_NOW)),
        _pause_menu(view, local_time),
        MenuEntry(
            "Start at login"
            if view.autostart is not None
            else _clip(f"Start at login — {view.autostart_note or 'not available here'}", LINE_MAX),
            MenuAction(ActionKind.TOGGLE_AUTOSTART),
            enabled=view.autostart is not None,
            checked=bool(view.autostart),
        ),
    ]
    if not first_run:  # a first run's offers above hold it already
        entries.append(MenuEntry("Open topology file", MenuAction(ActionKind.OPEN_TOPOLOGY)))
    entries += [
        MenuEntry("Open log folder", MenuAction(ActionKind.OPEN_LOGS)),
        MenuEntry(f"About tailnet-agent{version}", MenuAction(ActionKind.ABOUT)),
        SEPARATOR,
        MenuEntry("Quit", MenuAction(ActionKind.QUIT)),
    ]
    return tuple(entries)
