"""The tray menu as data: texts, marks, actions and enabled/checked states per situation.

Snapshots are built here directly from the model types (no health rules involved), so each
table row states exactly the situation the menu has to describe.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator

import pytest

from agent.core.confirm import GraceReason, Settling
from agent.core.figures import format_latency
from agent.core.menu import (
    MARKS,
    TOOLTIP_MAX,
    TOPOLOGY_ERROR_LINES,
    ActionKind,
    MenuAction,
    MenuEntry,
    MonitorStatus,
    TrayView,
    build_menu,
    format_uptime,
    overall_health,
    tooltip,
)
from agent.core.model import (
    BackendState,
    CheckKind,
    Defaults,
    Health,
    Impact,
    Link,
    Node,
    NodeStatus,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    ServiceStatus,
    Snapshot,
    TailnetView,
    TailscaleProblem,
    Topology,
)
from tests.core.snapshots import node_status, service_status, snapshot

# ==== building blocks ==========================================================

FASTAPI = Service("FastAPI", 8000, CheckKind.HTTP, "/health", impact=Impact.CRITICAL, open=True)
REDIS = Service("Redis", 6379, CheckKind.REDIS)
CONSOLE = Service("MinIO Console", 9001, CheckKind.HTTP, "console", open=True)
COMFY_WS = Service("ComfyUI WS", 8189, CheckKind.WEBSOCKET, "/ws", open=True)
OLLAMA = Service("Ollama", 11434, CheckKind.HTTP, "/api/tags")  # open = False
NEXT = Service("Next.js", 3000, CheckKind.HTTP, impact=Impact.INFO, open=True)

MAC = Node("macmini", "Mac mini — Backend Server", "woosuns-mac-mini", "100.123.51.5", "macos",
           services=(FASTAPI, REDIS, CONSOLE))  # fmt: skip
DESK = Node("desktop", "Desktop — GPU Worker", "sweetlife", "100.120.180.42", "windows",
            services=(OLLAMA, COMFY_WS))  # fmt: skip
LAPTOP = Node("laptop", "Laptop — Frontend Dev", "desktop-ecmkau8", "100.101.68.23", "windows",
              always_on=False, services=(NEXT,))  # fmt: skip

UP = ProbeResult(ProbeState.UP, None, "HTTP 200", 1.2)
REFUSED = ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused")  # probes: facts
TIMEOUT = ProbeResult(ProbeState.DOWN, Reason.TIMEOUT, "no answer within 3 s")
OFFLINE_DOWN = ProbeResult(
    ProbeState.DOWN,
    Reason.PEER_OFFLINE,
    "peer offline in Tailscale (run `tailscale up` on desktop-ecmkau8); no answer within 3 s",
)
SKIPPED = ProbeResult(ProbeState.SKIPPED, Reason.TAILSCALE_DOWN, "Tailscale is not running here")
UNKNOWN = ProbeResult(ProbeState.UNKNOWN, Reason.ERROR, "internal error: boom")

RUNNING = TailnetView(backend_state=BackendState.RUNNING, self_hostname="sweetlife")
STOPPED = TailnetView(
    backend_state=BackendState.STOPPED,
    problem=TailscaleProblem.NOT_RUNNING,
    detail="Tailscale is not running here (run `tailscale up`)",
)
DEFAULTS = Defaults(interval_s=10.0, latency_warn_ms=100.0)

ss = service_status  # (service, result=UP, host="", *, health=by state and impact)
ns = node_status  # (node, *services, is_self, link, relay, online, latency, health)


def snap(
    *nodes: NodeStatus,
    overall: Health = Health.GREEN,
    summary: str = "All good — 3 nodes, 6 of 6 services up",
    tailnet: TailnetView = RUNNING,
    at: float = 1000.0,
) -> Snapshot:
    topology = Topology("Sparklio", tuple(n.node for n in nodes), DEFAULTS)
    return snapshot(
        *nodes, topology=topology, tailnet=tailnet, overall=overall, summary=summary, at=at
    )


def healthy() -> Snapshot:
    return snap(ns(DESK, is_self=True, link=Link.SELF), ns(LAPTOP), ns(MAC))


def clock(wall: float) -> str:
    return f"T{wall:.0f}"


def menu(view: TrayView) -> tuple[MenuEntry, ...]:
    return build_menu(view, local_time=clock)


def walk(entries: tuple[MenuEntry, ...]) -> Iterator[MenuEntry]:
    for entry in entries:
        yield entry
        yield from walk(entry.children)


def texts(entries: tuple[MenuEntry, ...]) -> list[str]:
    return [e.text for e in entries if not e.separator]


def find(entries: tuple[MenuEntry, ...], start: str) -> MenuEntry:
    hits = [e for e in walk(entries) if not e.separator and e.text.startswith(start)]
    assert len(hits) == 1, f"{start!r}: {[e.text for e in hits]} in {texts(entries)}"
    return hits[0]


def node_menu(view: TrayView, name: str) -> MenuEntry:
    return next(e for e in menu(view) if name in e.text and e.children)


TRAY_ONLY = {f.name for f in dataclasses.fields(TrayView)} - {"status"}


def act(kind: ActionKind, payload: str = "") -> MenuAction:
    return MenuAction(kind, payload)


def view_of(snapshot: Snapshot | None, *, now: float = 1005.0, **kw: object) -> TrayView:
    """A TrayView: the keywords of TrayView's own fields go to it, the rest to its status."""
    tray = {k: v for k, v in kw.items() if k in TRAY_ONLY}
    status = {k: v for k, v in kw.items() if k not in TRAY_ONLY}
    return TrayView(MonitorStatus(snapshot, now, **status), **tray)  # type: ignore[arg-type]


# ==== the first line and the colour ============================================


@pytest.mark.parametrize(
    ("view", "health", "first"),
    [
        pytest.param(view_of(None), Health.GREY, "? Checking…", id="no-data"),
        pytest.param(
            view_of(healthy()),
            Health.GREEN,
            "✓ Sparklio: All good — 3 nodes, 6 of 6 services up",
            id="green",
        ),
        pytest.param(
            view_of(
                snap(
                    ns(MAC, link=Link.RELAY, relay="tok", health=Health.AMBER),
                    overall=Health.AMBER,
                    summary="Mac mini: relayed via DERP 'tok'",
                )
            ),
            Health.AMBER,
            "! Sparklio: Mac mini: relayed via DERP 'tok'",
            id="amber",
        ),
        pytest.param(
            view_of(
                snap(
                    ns(MAC, ss(FASTAPI, REFUSED), health=Health.RED),
                    overall=Health.RED,
                    summary="Mac mini: FastAPI down — refused",
                )
            ),
            Health.RED,
            "× Sparklio: Mac mini: FastAPI down — refused",
            id="red",
        ),
        pytest.param(
            view_of(
                snap(
                    ns(LAPTOP, link=Link.OFFLINE, health=Health.GREY),
                    overall=Health.GREY,
                    summary="Laptop: offline",
                )
            ),
            Health.GREY,
            "? Sparklio: Laptop: offline",
            id="grey",
        ),
        pytest.param(
            view_of(
                snap(
                    ns(MAC, health=Health.RED),
                    overall=Health.RED,
                    tailnet=STOPPED,
                    summary="Tailscale is not running here (run `tailscale up`)",
                )
            ),
            Health.RED,
            "× Sparklio: Tailscale is not running here (run `tailscale up`)",
            id="tailscale-down",
        ),
        pytest.param(
            view_of(
                snap(
                    ns(MAC, ss(FASTAPI, REFUSED), health=Health.RED),
                    overall=Health.RED,
                    summary="Mac mini: FastAPI down",
                ),
                in_grace=True,
                settling=Settling(GraceReason.WAKE, Health.GREEN),
            ),
            Health.GREEN,
            "✓ Sparklio: Settling after a sleep/wake — alerts wait until the network has settled",
            id="grace-hides-wake-blips",
        ),
        pytest.param(
            view_of(
                healthy(),
                in_grace=True,
                settling=Settling(
                    GraceReason.CLOCK_JUMP,
                    Health.RED,
                    ("Mac mini: FastAPI down", "Desktop: relayed"),
                ),
            ),
            Health.RED,
            "× Sparklio: Settling after a clock change — known: Mac mini: FastAPI down; "
            "Desktop: relayed",
            id="grace-keeps-a-known-red",
        ),
        pytest.param(
            view_of(
                healthy(), in_grace=True, settling=Settling(GraceReason.NETWORK_CHANGE, Health.GREY)
            ),
            Health.GREY,
            "? Sparklio: Settling after a network change — "
            "alerts wait until the network has settled",
            id="grace-before-anything-is-confirmed",
        ),
        pytest.param(
            view_of(healthy(), now=1000.0 + 31.0),
            Health.GREEN,
            "✓ Sparklio: All good — 3 nodes, 6 of 6 services up (last checked T1000)",
            id="stale",
        ),
        pytest.param(
            view_of(healthy(), now=1000.0 + 29.0),
            Health.GREEN,
            "✓ Sparklio: All good — 3 nodes, 6 of 6 services up",
            id="fresh-enough",
        ),
        pytest.param(
            view_of(None, topology_error="topology.toml:3: nodes: not a list"),
            Health.GREY,
            "? No usable topology — see the topology error below",
            id="no-topology",
        ),
    ],
)
def test_first_line_and_colour(view: TrayView, health: Health, first: str) -> None:
    entries = menu(view)
    assert overall_health(view) is health
    head = entries[0]
    assert head.text == first
    assert (head.action, head.default, head.enabled) == (act(ActionKind.CHECK_NOW), True, True)
    assert sum(e.default for e in walk(entries)) == 1


def test_marks_are_distinct_and_not_colour_words() -> None:
    assert len(set(MARKS.values())) == 4
    assert MARKS == {Health.GREEN: "✓", Health.AMBER: "!", Health.RED: "×", Health.GREY: "?"}


# ==== nodes: title, link and latency ==========================================


@pytest.mark.parametrize(
    ("status", "title", "link_line"),
    [
        pytest.param(
            ns(DESK, link=Link.SELF, is_self=True),
            "✓ Desktop — GPU Worker (this machine) · OK",
            "This machine",
            id="self",
        ),
        pytest.param(ns(MAC), "✓ Mac mini — Backend Server · OK", "Link: direct", id="direct"),
        pytest.param(
            ns(MAC, link=Link.RELAY, relay="tok", health=Health.AMBER),
            "! Mac mini — Backend Server · relayed",
            "Link: relayed via DERP 'tok' — slower than direct",
            id="relayed-with-region",
        ),
        pytest.param(
            ns(MAC, link=Link.RELAY, health=Health.AMBER),
            "! Mac mini — Backend Server · relayed",
            "Link: relayed via DERP — slower than direct",
            id="relayed-no-region",
        ),
        pytest.param(
            ns(MAC, link=Link.PEER_RELAY),
            "✓ Mac mini — Backend Server · OK",
            "Link: via a peer relay",
            id="peer-relay",
        ),
        pytest.param(
            ns(MAC, link=Link.IDLE),
            "✓ Mac mini — Backend Server · OK",
            "Link: idle (no recent traffic)",
            id="idle",
        ),
        pytest.param(
            ns(
                MAC,
                *(ss(s, TIMEOUT, MAC.ip) for s in MAC.services),
                link=Link.OFFLINE,
                latency=None,
                health=Health.RED,
            ),
            "× Mac mini — Backend Server · offline",
            "Link: offline — run `tailscale up` on woosuns-mac-mini",
            id="offline-always-on",
        ),
        pytest.param(
            ns(
                LAPTOP,
                ss(NEXT, OFFLINE_DOWN, LAPTOP.ip),
                link=Link.OFFLINE,
                latency=None,
                health=Health.GREY,
            ),
            "? Laptop — Frontend Dev · offline",
            "Link: offline (not an always-on node)",
            id="offline-laptop",
        ),
        pytest.param(
            ns(MAC, link=Link.OFFLINE),
            "✓ Mac mini — Backend Server · OK",
            "Link: offline — run `tailscale up` on woosuns-mac-mini",
            id="offline-but-answering",
        ),
        pytest.param(
            ns(
                MAC,
                *(ss(s, TIMEOUT) for s in MAC.services),
                link=Link.UNKNOWN,
                latency=None,
                health=Health.RED,
            ),
            "× Mac mini — Backend Server · FastAPI, Redis and MinIO Console down, not in tailnet",
            "Link: unknown — no peer with IP 100.123.51.5 in this tailnet",
            id="not-in-tailnet",
        ),
        pytest.param(
            ns(
                MAC,
                ss(FASTAPI, UP),
                ss(REDIS, REFUSED),
                ss(CONSOLE, UP),
                link=Link.RELAY,
                relay="fra",
                health=Health.AMBER,
            ),
            "! Mac mini — Backend Server · Redis down, relayed",
            "Link: relayed via DERP 'fra' — slower than direct",
            id="one-down-and-relayed",
        ),
        pytest.param(
            ns(LAPTOP, ss(NEXT, REFUSED, LAPTOP.ip), link=Link.IDLE),
            "✓ Laptop — Frontend Dev · Next.js down (info)",
            "Link: idle (no recent traffic)",
            id="info-service-down-never-colours-but-is-said",
        ),
        pytest.param(
            ns(
                MAC,
                ss(FASTAPI, REFUSED),
                ss(REDIS, REFUSED, health=Health.GREY),
                ss(CONSOLE, REFUSED, health=Health.GREY),
                health=Health.RED,
            ),
            "× Mac mini — Backend Server · FastAPI down, 2 info services down",
            "Link: direct",
            id="critical-and-info-down",
        ),
        pytest.param(
            ns(MAC, latency=250.0, health=Health.AMBER),
            "! Mac mini — Backend Server · slow link",
            "Link: direct",
            id="slow",
        ),
    ],
)
def test_node_title_and_link(status: NodeStatus, title: str, link_line: str) -> None:
    view = view_of(snap(status, overall=status.health))
    entry = node_menu(view, status.node.name)
    assert entry.text == title
    assert entry.action is None and entry.enabled
    first = entry.children[0]
    assert (first.text, first.enabled, first.action) == (link_line, False, None)


def test_node_when_tailscale_is_down_here() -> None:
    status = ns(MAC, *(ss(s, SKIPPED) for s in MAC.services), link=Link.UNKNOWN, latency=None,
                health=Health.GREY)  # fmt: skip
    view = view_of(snap(status, overall=Health.RED, tailnet=STOPPED, summary="Tailscale down"))
    entry = node_menu(view, "Mac mini")
    assert entry.text == "? Mac mini — Backend Server · unknown"
    assert texts(entry.children)[:3] == [
        "Link: unknown (Tailscale is not running here)",
        "Latency: — (no service answered)",
        "? FastAPI :8000 — not checked — Tailscale is not running here",
    ]


@pytest.mark.parametrize(
    ("latency", "line"),
    [
        pytest.param(1.24, "Latency: 1.2 ms", id="lan"),
        pytest.param(0.04, "Latency: <0.1 ms", id="tiny"),
        pytest.param(99.9, "Latency: 100 ms", id="at-limit"),
        pytest.param(180.4, "Latency: 180 ms (slow: warn above 100 ms)", id="slow"),
        pytest.param(None, "Latency: — (no service answered)", id="none"),
    ],
)
def test_latency_line(latency: float | None, line: str) -> None:
    view = view_of(snap(ns(MAC, latency=latency)))
    assert node_menu(view, "Mac mini").children[1].text == line


def test_self_has_no_latency_line() -> None:
    view = view_of(snap(ns(DESK, link=Link.SELF, is_self=True, latency=0.05)))
    children = texts(node_menu(view, "Desktop").children)
    assert children[0] == "This machine"
    assert not any(t.startswith("Latency") for t in children)


# ==== services =================================================================


@pytest.mark.parametrize(
    ("status", "uptime", "since", "line"),
    [
        pytest.param(ss(FASTAPI), 0.998, None, "✓ FastAPI :8000 — up · 99.8% 24 h", id="up"),
        pytest.param(ss(FASTAPI), 1.0, None, "✓ FastAPI :8000 — up · 100% 24 h", id="up-100"),
        pytest.param(
            ss(FASTAPI),
            0.99999,
            None,
            "✓ FastAPI :8000 — up · 99.9% 24 h",
            id="up-never-rounds-to-100",
        ),
        pytest.param(ss(FASTAPI), None, None, "✓ FastAPI :8000 — up", id="up-no-history"),
        pytest.param(
            ss(FASTAPI, REFUSED),
            0.5,
            642.0,
            "× FastAPI :8000 — down since T642 — connection refused (service not running?)",
            id="down-since",
        ),
        pytest.param(
            ss(REDIS, TIMEOUT),
            None,
            None,
            "! Redis :6379 — down — no answer within 3 s (firewall or host unreachable?)",
            id="degraded-down-no-since",
        ),
        pytest.param(
            ss(NEXT, REFUSED),
            None,
            7.0,
            "– Next.js :3000 — down since T7 — connection refused (service not running?) "
            "(info only)",
            id="info-down",
        ),
        pytest.param(
            ss(NEXT, OFFLINE_DOWN),
            None,
            None,
            "– Next.js :3000 — down — peer offline in Tailscale (info only)",
            id="peer-offline",
        ),
        pytest.param(
            ss(FASTAPI, SKIPPED),
            None,
            None,
            "? FastAPI :8000 — not checked — Tailscale is not running here",
            id="skipped",
        ),
        pytest.param(
            ss(FASTAPI, UNKNOWN),
            None,
            None,
            "? FastAPI :8000 — unknown — internal error: boom (see the log)",
            id="unknown",
        ),
        pytest.param(
            ss(FASTAPI, ProbeResult(ProbeState.DOWN, Reason.HTTP_STATUS, "HTTP 503\n" + "x" * 200)),
            None,
            None,
            "× FastAPI :8000 — down — HTTP 503 " + "x" * 61 + "…",
            id="long-detail-is-one-clipped-line",
        ),
    ],
)
def test_service_line(
    status: ServiceStatus, uptime: float | None, since: float | None, line: str
) -> None:
    key = (MAC.id, status.service.name)
    view = view_of(
        snap(ns(MAC, status)),
        uptime={key: uptime},
        since={} if since is None else {key: since},
    )
    entry = find(menu(view), line.split(" — ")[0])
    assert entry.text == line
    assert len(entry.text) <= 96
    assert entry.action is None  # a submenu: why, and "Snooze alerts"
    assert entry.children[-1].text == "Snooze alerts"


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "100%"), (0.9999, "99.9%"), (0.998, "99.8%"), (0.5, "50.0%"), (0.0, "0.0%"),
     (-0.1, "0.0%"), (0.0004, "<0.1%")],
    ids=["one", "almost", "typical", "half", "zero", "negative", "up-a-moment-is-not-zero"],
)  # fmt: skip
def test_format_uptime(value: float, text: str) -> None:
    assert format_uptime(value) == text


@pytest.mark.parametrize(
    ("over", "line"),
    [
        (None, "✓ FastAPI :8000 — up · 100% 24 h"),
        (60.0, "✓ FastAPI :8000 — up · 100% over 1 min"),
        (5 * 3600 + 120.0, "✓ FastAPI :8000 — up · 100% over 5 h 2 min"),
        (12.0, "✓ FastAPI :8000 — up · 100% over 12 s"),
        # just after start: no figure over less than a sweep interval ("100% over 0 s")
        (0.0, "✓ FastAPI :8000 — up"),
        (0.9, "✓ FastAPI :8000 — up"),
    ],
    ids=["a-full-day", "one-minute-of-data", "hours", "seconds", "at-start", "under-a-sweep"],
)
def test_uptime_names_the_window_its_data_covers(over: float | None, line: str) -> None:
    key = (MAC.id, FASTAPI.name)
    view = view_of(
        snap(ns(MAC, ss(FASTAPI))),
        uptime={key: 1.0},
        uptime_over={} if over is None else {key: over},
    )
    assert find(menu(view), "✓ FastAPI :8000").text == line


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0.0, "<0.1 ms"), (0.1, "0.1 ms"), (9.94, "9.9 ms"), (10.0, "10 ms"), (1234.5, "1234 ms")],
    ids=["zero", "tenth", "below-ten", "ten", "large"],
)
def test_format_latency(ms: float, text: str) -> None:
    assert format_latency(ms) == text


# ==== node actions =============================================================


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        pytest.param(
            ns(MAC, ss(FASTAPI, UP, MAC.ip), ss(REDIS, UP, MAC.ip), ss(CONSOLE, UP, MAC.ip)),
            [
                (
                    "Open FastAPI in browser",
                    act(ActionKind.OPEN_URL, "http://100.123.51.5:8000/health"),
                ),
                (
                    "Open MinIO Console in browser",
                    act(ActionKind.OPEN_URL, "http://100.123.51.5:9001/console"),
                ),
                ("Copy address 100.123.51.5", act(ActionKind.COPY_ADDRESS, "100.123.51.5")),
            ],
            id="http-open-only",
        ),
        pytest.param(
            ns(
                DESK,
                ss(OLLAMA, UP, "127.0.0.1"),
                ss(COMFY_WS, UP, "127.0.0.1"),
                link=Link.SELF,
                is_self=True,
            ),
            [("Copy address 100.120.180.42", act(ActionKind.COPY_ADDRESS, "100.120.180.42"))],
            id="no-open-for-websocket-or-open-false",
        ),
        pytest.param(
            ns(MAC, ss(FASTAPI, REFUSED, "127.0.0.1"), link=Link.SELF, is_self=True),
            [
                (
                    "Open FastAPI in browser",
                    act(ActionKind.OPEN_URL, "http://127.0.0.1:8000/health"),
                ),
                ("Copy address 100.123.51.5", act(ActionKind.COPY_ADDRESS, "100.123.51.5")),
            ],
            id="self-uses-the-probed-address",
        ),
        pytest.param(
            ns(MAC, ss(FASTAPI, SKIPPED)),
            [
                (
                    "Open FastAPI in browser",
                    act(ActionKind.OPEN_URL, "http://100.123.51.5:8000/health"),
                ),
                ("Copy address 100.123.51.5", act(ActionKind.COPY_ADDRESS, "100.123.51.5")),
            ],
            id="no-address-falls-back-to-the-node-ip",
        ),
    ],
)
def test_node_actions(status: NodeStatus, actions: list[tuple[str, str]]) -> None:
    entry = node_menu(view_of(snap(status)), status.node.name)
    clickable = [(c.text, c.action) for c in entry.children if c.action is not None]
    assert clickable == actions
    assert all(c.enabled for c in entry.children if c.action is not None)


def test_actions_appear_only_inside_their_node() -> None:
    entries = menu(view_of(healthy()))
    for entry in walk(entries):
        if entry.action and entry.action.kind in (ActionKind.OPEN_URL, ActionKind.COPY_ADDRESS):
            owners = [e for e in entries if entry in e.children]
            assert len(owners) == 1, entry
            assert owners[0].text.split(" ", 1)[1].startswith(("Mac mini", "Desktop", "Laptop")), (
                owners[0].text
            )
    laptop = node_menu(view_of(healthy()), "Laptop")
    assert [c.action for c in laptop.children if c.action] == [
        act(ActionKind.OPEN_URL, "http://100.101.68.23:3000/"),
        act(ActionKind.COPY_ADDRESS, "100.101.68.23"),
    ]


# ==== the fixed part: check, pause, autostart, files, about, quit ==============

WITH_PAYLOAD = {  # the URL, the address, the subject snoozed
    ActionKind.OPEN_URL,
    ActionKind.COPY_ADDRESS,
    ActionKind.SNOOZE_1H,
    ActionKind.SNOOZE_TOMORROW,
    ActionKind.SNOOZE_UNTIL_BACK,
    ActionKind.UNSNOOZE,
}


def test_fixed_tail_in_order() -> None:
    entries = menu(view_of(healthy(), version="0.1.0", autostart=False))
    tail = entries[-9:]
    assert [(e.text, e.action, e.separator) for e in tail] == [
        ("", None, True),
        ("Check now", act(ActionKind.CHECK_NOW), False),
        ("Pause notifications", None, False),
        ("Start at login", act(ActionKind.TOGGLE_AUTOSTART), False),
        ("Open topology file", act(ActionKind.OPEN_TOPOLOGY), False),
        ("Open log folder", act(ActionKind.OPEN_LOGS), False),
        ("About tailnet-agent 0.1.0", act(ActionKind.ABOUT), False),
        ("", None, True),
        ("Quit", act(ActionKind.QUIT), False),
    ]
    # the nodes sit between the first line and the fixed part, each as a submenu
    assert [e.text.split(" · ")[0] for e in entries[2:-9]] == [
        "✓ Desktop — GPU Worker (this machine)",
        "✓ Laptop — Frontend Dev",
        "✓ Mac mini — Backend Server",
    ]
    assert entries[1].separator


def test_every_action_is_known() -> None:
    view = view_of(healthy(), topology_error="x.toml: bad", autostart=True, paused_until=2e9)
    for entry in walk(menu(view)):
        if entry.action is not None:
            assert bool(entry.action.payload) is (entry.action.kind in WITH_PAYLOAD)
            assert not entry.children and not entry.separator
        if entry.separator:
            assert (entry.text, entry.action, entry.children) == ("", None, ())


def test_separators_never_lead_trail_or_double() -> None:
    for view in (view_of(None), view_of(healthy(), topology_error="bad")):
        for entries in [menu(view), *(e.children for e in walk(menu(view)) if e.children)]:
            assert not entries[0].separator and not entries[-1].separator
            pairs = itertools.pairwise(entries)
            assert not any(a.separator and b.separator for a, b in pairs)


def test_no_data_menu_has_no_nodes_but_all_actions() -> None:
    entries = menu(view_of(None))
    assert texts(entries) == [
        "? Checking…",
        "Check now",
        "Pause notifications",
        "Start at login — not available here",  # the view says nothing of it: greyed
        "Open topology file",
        "Open log folder",
        "About tailnet-agent",
        "Quit",
    ]


@pytest.mark.parametrize(
    ("paused_until", "title", "resume_enabled"),
    [
        pytest.param(None, "Pause notifications", False, id="not-paused"),
        pytest.param(4600.0, "Notifications paused until T4600", True, id="paused"),
        pytest.param(1004.0, "Pause notifications", False, id="pause-expired"),
    ],
)
def test_pause_menu(paused_until: float | None, title: str, resume_enabled: bool) -> None:
    view = view_of(healthy(), paused_until=paused_until)
    entry = find(menu(view), title)
    assert entry.text == title and entry.action is None
    assert [(c.text, c.action, c.enabled) for c in entry.children] == [
        ("For 1 hour", act(ActionKind.PAUSE_1H), True),
        ("Until tomorrow", act(ActionKind.PAUSE_TOMORROW), True),
        ("Resume", act(ActionKind.RESUME), resume_enabled),
        ("", None, False),
        ("Critical alerts still show", None, False),
    ]
    assert ("notifications paused" in tooltip(view)) is resume_enabled


@pytest.mark.parametrize(
    ("autostart", "checked", "enabled"),
    [
        pytest.param(None, False, False, id="unsupported"),
        pytest.param(True, True, True, id="on"),
        pytest.param(False, False, True, id="off"),
    ],
)
def test_start_at_login(autostart: bool | None, checked: bool, enabled: bool) -> None:
    entry = find(menu(view_of(healthy(), autostart=autostart)), "Start at login")
    assert (entry.checked, entry.enabled, entry.action) == (
        checked,
        enabled,
        act(ActionKind.TOGGLE_AUTOSTART),
    )


@pytest.mark.parametrize(
    ("version", "text"),
    [("0.1.0", "About tailnet-agent 0.1.0"), ("", "About tailnet-agent")],
    ids=["versioned", "no-version"],
)
def test_about(version: str, text: str) -> None:
    assert find(menu(view_of(None, version=version)), "About").text == text


# ==== topology error ===========================================================

LONG_ERROR = (
    "/home/u/.config/tailnet-agent/topology.toml:12: nodes[1].services[0].port: "
    "70000 is out of range (1..65535)"
)


@pytest.mark.parametrize(
    ("snapshot", "title"),
    [
        pytest.param(healthy(), "! Topology error — using last good file", id="last-good"),
        pytest.param(None, "× Topology error — no usable topology", id="none-usable"),
    ],
)
def test_topology_error(snapshot: Snapshot | None, title: str) -> None:
    entries = menu(view_of(snapshot, topology_error=LONG_ERROR))
    assert entries[1].text == title
    lines = [c for c in entries[1].children if not c.separator]
    assert [c.text for c in lines] == [
        "/home/u/.config/tailnet-agent/topology.toml:12: nodes[1].services[0].port: 70000",
        "is out of range (1..65535)",
        "Open topology file",
    ]
    assert [c.enabled for c in lines] == [False, False, True]
    assert lines[-1].action == act(ActionKind.OPEN_TOPOLOGY)


def test_huge_topology_error_stays_a_few_lines() -> None:
    entries = menu(view_of(healthy(), topology_error="why " * 500))
    lines = [c for c in entries[1].children if not c.separator and c.action is None]
    assert len(lines) == TOPOLOGY_ERROR_LINES
    assert all(len(c.text) <= 80 for c in lines)
    assert lines[-1].text.endswith("…")


def test_no_topology_error_line_without_error() -> None:
    assert not any("Topology error" in t for t in texts(menu(view_of(healthy()))))


# ==== tooltip ==================================================================


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        pytest.param(view_of(None), "tailnet-agent: Checking…", id="no-data"),
        pytest.param(
            view_of(healthy()),
            "tailnet-agent (Sparklio): All good — 3 nodes, 6 of 6 services up",
            id="green",
        ),
        pytest.param(
            view_of(healthy(), paused_until=5000.0),
            "tailnet-agent (Sparklio): All good — 3 nodes, 6 of 6 services up · notifications "
            "paused",
            id="paused",
        ),
    ],
)
def test_tooltip(view: TrayView, expected: str) -> None:
    assert tooltip(view) == expected


@pytest.mark.parametrize(
    "summary",
    [
        pytest.param("Mac mini: FastAPI down — " + "refused " * 40, id="long-ascii"),
        pytest.param("🚨" * 100, id="astral-chars-count-twice-on-windows"),
        pytest.param("line one\nline two " * 30, id="newlines"),
    ],
)
def test_tooltip_fits_windows(summary: str) -> None:
    view = view_of(snap(ns(MAC), overall=Health.RED, summary=summary), paused_until=9e9)
    text = tooltip(view)
    assert len(text.encode("utf-16-le")) // 2 <= TOOLTIP_MAX
    assert text.endswith("… · notifications paused") and text.startswith(
        "tailnet-agent (Sparklio): "
    )
    assert "\n" not in text


def test_tooltip_uses_the_given_name() -> None:
    assert tooltip(view_of(None), name="agent (dev)") == "agent (dev): Checking…"


def test_tooltip_says_until_when_notifications_are_paused() -> None:
    view = view_of(healthy(), paused_until=4600.0)
    assert tooltip(view, local_time=clock) == (
        "tailnet-agent (Sparklio): All good — 3 nodes, 6 of 6 services up"
        " · notifications paused until T4600"
    )
    assert "paused" not in tooltip(view_of(healthy(), paused_until=1004.0), local_time=clock)


def test_a_long_summary_never_cuts_the_pause_off_the_tooltip() -> None:
    view = view_of(snap(ns(MAC), overall=Health.RED, summary="refused " * 40), paused_until=9e9)
    text = tooltip(view, local_time=clock)
    assert len(text.encode("utf-16-le")) // 2 <= TOOLTIP_MAX
    assert text.endswith("… · notifications paused until T9000000000"), text


# ==== whole menu, as read by a person ==========================================


def test_times_are_formatted_by_the_caller() -> None:
    at = time.mktime((2024, 5, 1, 10, 42, 0, 0, 0, -1))
    key = (MAC.id, FASTAPI.name)
    view = view_of(snap(ns(MAC, ss(FASTAPI, REFUSED))), since={key: at}, paused_until=at + 3600)
    entries = build_menu(view, local_time=lambda t: time.strftime("%H:%M", time.localtime(t)))
    assert find(entries, "× FastAPI").text.startswith("× FastAPI :8000 — down since 10:42 —")
    assert find(entries, "Notifications paused").text == "Notifications paused until 11:42"


def test_every_line_is_short_and_single() -> None:
    long_node = Node("n", "N" * 200, "h", "100.64.0.1", services=(FASTAPI,))
    status = ns(long_node, ss(FASTAPI, ProbeResult(ProbeState.DOWN, Reason.ERROR, "e" * 300)),
                health=Health.RED)  # fmt: skip
    view = view_of(snap(status, summary="S" * 300), topology_error="T" * 300)
    for entry in walk(menu(view)):
        assert len(entry.text) <= 96 and "\n" not in entry.text, entry.text


# ==== the topology's name =======================================================


def test_the_topology_name_heads_the_menu_and_the_tooltip() -> None:
    """The bundled file promises its `name` in the tooltip and the menu title."""
    view = view_of(healthy())
    assert menu(view)[0].text == "✓ Sparklio: All good — 3 nodes, 6 of 6 services up"
    assert tooltip(view) == "tailnet-agent (Sparklio): All good — 3 nodes, 6 of 6 services up"
    # Before the first sweep no topology is known yet: nothing to name.
    assert tooltip(view_of(None)) == "tailnet-agent: Checking…"


def test_several_topology_problems_one_per_line_not_run_together() -> None:
    error = (
        "t.toml:9: FastAPI on Mac mini: unknown key 'chek' — did you mean 'check'?\n"
        "t.toml:12: Redis on Mac mini: port: 70000 is out of range (1..65535)\n"
        't.toml:20: Desktop: ip: "1.2.3" is not an IPv4 or IPv6 address'
    )
    entries = menu(view_of(healthy(), topology_error=error))
    lines = [c.text for c in entries[1].children if not c.separator and c.action is None]
    assert lines == error.splitlines()


# ==== long names ==============================================================


def test_a_long_service_name_is_shortened_keeping_port_and_state() -> None:
    long = dataclasses.replace(REDIS, name="Redis cache for the background job queue " * 3)
    status = ss(long, REFUSED)
    view = view_of(snap(ns(MAC, status, health=Health.AMBER), overall=Health.AMBER))
    line = find(menu(view), "! Redis cache").text
    assert len(line) <= 96
    assert " :6379 — down — connection refused" in line, line
    assert "…" in line.split(" :6379")[0], line  # the name gave way, with a mark


def test_a_long_node_name_is_shortened_keeping_its_state() -> None:
    node = dataclasses.replace(MAC, name="Mac mini — the backend server in the office " * 3)
    view = view_of(snap(ns(node, link=Link.RELAY, relay="tok", health=Health.AMBER)))
    title = next(e for e in menu(view) if e.children and "Mac mini" in e.text).text
    assert len(title) <= 96 and title.endswith(" · relayed"), title
    assert "…" in title, title


@pytest.mark.parametrize(
    ("note", "text"),
    [("not on this system (no XDG desktop)",
      "Start at login — not on this system (no XDG desktop)"),
     ("", "Start at login — not available here")],
    ids=["with-why", "no-why"],
)  # fmt: skip
def test_start_at_login_greyed_says_why(note: str, text: str) -> None:
    entry = find(menu(view_of(healthy(), autostart=None, autostart_note=note)), "Start at login")
    assert (entry.text, entry.enabled, entry.checked) == (text, False, False)


def test_settling_names_the_known_problems_not_a_count() -> None:
    problems = ("A: x down", "B: relayed", "C: offline", "D: y down")
    view = view_of(
        healthy(), in_grace=True, settling=Settling(GraceReason.WAKE, Health.RED, problems)
    )
    assert menu(view)[0].text.endswith("known: A: x down; B: relayed and 2 other problems")


def test_last_checked_says_when_the_last_sweep_finished() -> None:
    entries = menu(view_of(healthy(), last_checked="14:05:09"))
    items = [e for e in entries if not e.separator]
    at = [e.text for e in items].index("Check now")
    assert items[at - 1] == MenuEntry("Last checked 14:05:09", enabled=False)
    assert not any(e.text.startswith("Last checked") for e in menu(view_of(None)))


# ==== credentials ==============================================================


def test_no_credential_of_a_probe_detail_or_a_path_reaches_a_menu_label() -> None:
    tokened = dataclasses.replace(FASTAPI, path="/health?token=q-token-7f3a")
    leaky = ProbeResult(
        ProbeState.DOWN,
        Reason.ERROR,
        "GET http://u:pw-9c1@127.0.0.1:8000/health?token=q-token-7f3a: password=pw-hunter2",
    )
    mac = dataclasses.replace(MAC, services=(tokened, REDIS, CONSOLE))
    view = view_of(
        snap(
            ns(DESK, is_self=True, link=Link.SELF),
            ns(LAPTOP),
            ns(mac, ss(tokened, leaky), ss(REDIS), ss(CONSOLE)),
            overall=Health.RED,
        )
    )
    labels = [entry.text for entry in walk(menu(view))] + [tooltip(view)]
    assert "FastAPI" in " ".join(labels)
    assert [t for t in labels if any(s in t for s in ("q-token", "pw-9c1", "hunter2"))] == []
