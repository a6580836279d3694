"""agent.core.tailnet: status JSON -> TailnetView, the link rule, node matching."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.core.hints import state_detail
from agent.core.model import (
    BackendState,
    Link,
    Node,
    PeerView,
    TailnetView,
    TailscaleProblem,
    Topology,
)
from agent.core.tailnet import (
    find_peer,
    identify_self,
    identify_self_by,
    link_of,
    parse_status,
    parse_status_json,
    self_node_line,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tailscale"

SWEETLIFE_IPS = ("100.120.180.42", "fd7a:115c:a1e0::4a01:b42a")
LOOPBACK_SELF_IPS = ("127.0.0.1",)
LAPTOP = "DESKTOP-ECMKAU8"
MAC = "Woosuns-Mac-mini"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def view_of(name: str) -> TailnetView:
    return parse_status(load(name))


def links(view: TailnetView) -> dict[str, tuple[Link, str]]:
    return {p.hostname: link_of(p) for p in view.peers}


# ==== fixtures, end to end through the parser ==================================

DIRECT = (Link.DIRECT, "")
RELAY_TOK = (Link.RELAY, "tok")
OFFLINE = (Link.OFFLINE, "")
RUN = BackendState.RUNNING
NOT_RUNNING = TailscaleProblem.NOT_RUNNING
TS = SWEETLIFE_IPS
LO = LOOPBACK_SELF_IPS

# name, backend state, problem, self ips, {peer hostname: (link, relay)}; self is "sweetlife"
FIXTURE_TABLE = [
    ("running_all_direct", RUN, None, TS, {LAPTOP: DIRECT, MAC: DIRECT}),
    ("running_mac_relayed", RUN, None, TS, {LAPTOP: DIRECT, MAC: RELAY_TOK}),
    ("running_laptop_offline", RUN, None, TS, {LAPTOP: OFFLINE, MAC: DIRECT}),
    ("running_mac_relayed_laptop_offline", RUN, None, TS, {LAPTOP: OFFLINE, MAC: RELAY_TOK}),
    ("running_idle_peer", RUN, None, TS, {LAPTOP: DIRECT, MAC: (Link.IDLE, "")}),
    ("running_peer_relay", RUN, None, TS, {LAPTOP: DIRECT, MAC: (Link.PEER_RELAY, "")}),
    ("running_health_warning", RUN, None, TS, {LAPTOP: DIRECT, MAC: DIRECT}),
    ("not_in_tailnet", RUN, None, TS, {LAPTOP: DIRECT}),
    ("stopped", BackendState.STOPPED, NOT_RUNNING, TS, {}),
    ("needs_login", BackendState.NEEDS_LOGIN, NOT_RUNNING, (), {}),
    ("old_version_missing_keys", RUN, None, TS, {LAPTOP: DIRECT, MAC: RELAY_TOK}),
    ("nulls", RUN, None, TS, {}),
    ("loopback_all_direct", RUN, None, LO, {LAPTOP: DIRECT, MAC: DIRECT}),
    ("loopback_mac_relayed", RUN, None, LO, {LAPTOP: DIRECT, MAC: RELAY_TOK}),
    # beside the two peers: a sharee's MacBook, a tagged NAS and a tagged exit node, all idle
    (
        "running_sharee_tagged_exit",
        RUN,
        None,
        TS,
        {
            LAPTOP: DIRECT,
            MAC: DIRECT,
            "minji-macbook-air": (Link.IDLE, ""),
            "nas-backup": (Link.IDLE, ""),
            "office-router": (Link.IDLE, ""),
        },
    ),
    # the Mac mini at a new IP, the laptop renamed, a phone the topology lacks (topology drift)
    (
        "loopback_drifted",
        RUN,
        None,
        LO,
        {"frontend-laptop": DIRECT, MAC: DIRECT, "pixel-7": DIRECT},
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "problem", "self_ips", "expected_links"),
    FIXTURE_TABLE,
    ids=[row[0] for row in FIXTURE_TABLE],
)
def test_fixture_parses(
    name: str,
    state: BackendState,
    problem: TailscaleProblem | None,
    self_ips: tuple[str, ...],
    expected_links: dict[str, tuple[Link, str]],
) -> None:
    view = view_of(name)
    assert view.backend_state is state
    assert view.problem is problem
    assert view.running is (problem is None)
    assert view.self_hostname == "sweetlife"
    assert view.self_ips == self_ips
    assert links(view) == expected_links
    assert (view.detail == "") is (problem is None)


def test_every_fixture_is_in_the_table() -> None:
    on_disk = {p.stem for p in FIXTURES.glob("*.json")}
    assert on_disk == {row[0] for row in FIXTURE_TABLE}


def test_tags_sharee_and_exit_node_option_are_read() -> None:
    view = view_of("running_sharee_tagged_exit")
    by_name = {p.hostname: p for p in view.peers}
    assert [by_name[h].sharee for h in ("minji-macbook-air", "nas-backup", MAC)] == [
        True,
        False,
        False,
    ]
    assert by_name["nas-backup"].tags == ("tag:server", "tag:backup")
    assert by_name["office-router"].tags == ("tag:exit",)
    assert by_name["office-router"].exit_node_option
    assert by_name[MAC].tags == () and not by_name[MAC].exit_node_option  # keys omitted


def test_peer_fields_are_read() -> None:
    view = view_of("running_all_direct")
    assert view.version == "1.102.3-t5f2a9c1e7-g0b3d6a8f1"
    assert view.health_warnings == ()
    mac = next(p for p in view.peers if p.hostname == MAC)
    assert mac == PeerView(
        hostname=MAC,
        dns_name="woosuns-mac-mini.tail4c2e9a.ts.net.",
        ips=("100.123.51.5", "fd7a:115c:a1e0::8b01:3305"),
        os="macOS",
        online=True,
        active=True,
        cur_addr="58.120.33.14:57124",
        relay="tok",
        peer_relay="",
        last_seen="",
        key_expiry=datetime(2026, 11, 3, 12, 2, 47, tzinfo=UTC).timestamp(),
    )


def test_direct_peer_has_a_home_derp_but_is_never_relayed() -> None:
    mac = next(p for p in view_of("running_all_direct").peers if p.hostname == MAC)
    assert mac.relay == "tok"
    assert link_of(mac) == (Link.DIRECT, "")


def test_idle_peer_with_relay_set_is_idle_not_relayed() -> None:
    mac = next(p for p in view_of("running_idle_peer").peers if p.hostname == MAC)
    assert (mac.online, mac.active, mac.cur_addr, mac.relay) == (True, False, "", "tok")
    assert link_of(mac) == (Link.IDLE, "")


def test_offline_peer_keeps_last_seen() -> None:
    laptop = next(p for p in view_of("running_laptop_offline").peers if p.hostname == LAPTOP)
    assert laptop.online is False
    assert laptop.last_seen == "2026-08-24T09:58:03Z"


def test_health_warnings_are_read() -> None:
    view = view_of("running_health_warning")
    assert len(view.health_warnings) == 1
    assert "'Tokyo' relay server" in view.health_warnings[0]
    assert view_of("needs_login").health_warnings == ("You are logged out.",)
    assert view_of("nulls").health_warnings == ()


def test_peer_relay_is_read() -> None:
    mac = next(p for p in view_of("running_peer_relay").peers if p.hostname == MAC)
    assert mac.peer_relay == "198.51.100.20:7777:vni:5"


def test_loopback_fixtures_hold_loopback_addresses_only() -> None:
    for name in ("loopback_all_direct", "loopback_mac_relayed"):
        text = (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
        assert "100." not in text.replace("nodekey", "")
        assert "fd7a:" not in text
        view = parse_status_json(text)
        ips = {ip for p in view.peers for ip in p.ips} | set(view.self_ips)
        assert ips == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}


# ==== backend states ===========================================================

STATE_TABLE = [
    ("NeedsLogin", BackendState.NEEDS_LOGIN, "log in here (run `tailscale up`)"),
    ("Stopped", BackendState.STOPPED, "stopped on this machine (run `tailscale up`)"),
    ("Starting", BackendState.STARTING, "starting"),
    ("NeedsMachineAuth", BackendState.NEEDS_MACHINE_AUTH, "waiting for an admin to approve"),
    ("NoState", BackendState.NO_STATE, "run `tailscale up`"),
    ("Hibernating", BackendState.UNKNOWN, "'Hibernating'"),
]


@pytest.mark.parametrize(
    ("raw", "state", "hint"), STATE_TABLE, ids=[r[0] or "empty" for r in STATE_TABLE]
)
def test_not_running_states_explain_themselves(raw: str, state: BackendState, hint: str) -> None:
    data = load("running_all_direct")
    data["BackendState"] = raw
    view = parse_status(data)
    assert view.backend_state is state
    assert view.problem is TailscaleProblem.NOT_RUNNING
    assert not view.running
    assert hint in view.detail
    assert view.detail == state_detail(state, raw)
    # self and peers are still filled when present
    assert view.self_hostname == "sweetlife"
    assert len(view.peers) == 2


def test_running_has_no_detail() -> None:
    assert state_detail(BackendState.RUNNING, "Running") == ""


@pytest.mark.parametrize("state", [None, 7, ["Running"]], ids=["null", "number", "list"])
def test_backend_state_of_wrong_type_is_unknown(state: object) -> None:
    data = load("running_all_direct")
    data["BackendState"] = state
    view = parse_status(data)
    assert view.backend_state is BackendState.UNKNOWN
    assert view.problem is TailscaleProblem.NOT_RUNNING


@pytest.mark.parametrize("absent", [False, True], ids=["empty", "missing"])
def test_old_client_without_backend_state_but_with_addresses_is_running(absent: bool) -> None:
    """Clients before about 1.0 print BackendState "" (ts #714): with addresses, running."""
    data = load("running_all_direct")
    if absent:
        del data["BackendState"]
    else:
        data["BackendState"] = ""
    view = parse_status(data)
    assert view.backend_state is BackendState.RUNNING
    assert view.running


@pytest.mark.parametrize("absent", [False, True], ids=["empty", "missing"])
def test_no_backend_state_and_no_addresses_is_unknown(absent: bool) -> None:
    data: dict[str, Any] = {"Self": {"HostName": "pve"}, "Peer": None}
    if not absent:
        data["BackendState"] = ""
    view = parse_status(data)
    assert view.backend_state is BackendState.UNKNOWN
    assert view.problem is TailscaleProblem.NOT_RUNNING
    assert "run `tailscale up`" in view.detail


# ==== bad output ===============================================================

BAD_TABLE = [
    ([], "a list"),
    ([{"BackendState": "Running"}], "a list"),
    ("Running", "a string"),
    (42, "a number"),
    (1.5, "a number"),
    (True, "a boolean"),
    (None, "null"),
]


@pytest.mark.parametrize(
    ("data", "kind"),
    BAD_TABLE,
    ids=["empty-list", "list-of-status", "str", "int", "float", "bool", "null"],
)
def test_top_level_not_an_object_is_bad_output(data: object, kind: str) -> None:
    view = parse_status(data)
    assert view.problem is TailscaleProblem.BAD_OUTPUT
    assert view.backend_state is None
    assert kind in view.detail
    assert not view.running


@pytest.mark.parametrize(
    "text",
    ["", "Tailscale is stopped.", '{"BackendState": ', "<html>", "[" * 100_000],
    ids=["empty", "text", "truncated", "html", "deeply-nested"],
)
def test_non_json_text_is_bad_output(text: str) -> None:
    view = parse_status_json(text)
    assert view.problem is TailscaleProblem.BAD_OUTPUT
    assert "not JSON" in view.detail
    assert len(view.detail) < 300


def test_json_text_is_parsed() -> None:
    text = (FIXTURES / "running_mac_relayed.json").read_text(encoding="utf-8")
    assert parse_status_json(text) == parse_status(json.loads(text))
    assert parse_status_json("[1, 2]").problem is TailscaleProblem.BAD_OUTPUT


# ==== tolerance: missing keys and nulls ========================================


def test_empty_object_is_tolerated() -> None:
    view = parse_status({})
    assert view.backend_state is BackendState.UNKNOWN
    assert view.problem is TailscaleProblem.NOT_RUNNING
    assert (view.self_hostname, view.self_ips, view.peers, view.version) == ("", (), (), "")


def test_running_with_only_backend_state() -> None:
    view = parse_status({"BackendState": "Running"})
    assert view.running
    assert view.peers == ()
    assert view.self_ips == ()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Peer", None),
        ("Peer", []),
        ("Peer", "x"),
        ("Self", None),
        ("Self", []),
        ("Health", None),
        ("Health", "broken"),
        ("TailscaleIPs", None),
        ("CurrentTailnet", None),
        ("User", None),
        ("Version", 3),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) else v,
)
def test_top_level_nulls_and_wrong_types_are_tolerated(key: str, value: object) -> None:
    data = load("running_all_direct")
    data[key] = value
    view = parse_status(data)
    assert view.running


def test_self_ips_fall_back_to_self_entry() -> None:
    data = load("running_all_direct")
    data["TailscaleIPs"] = None
    assert parse_status(data).self_ips == SWEETLIFE_IPS
    del data["TailscaleIPs"]
    assert parse_status(data).self_ips == SWEETLIFE_IPS


def test_missing_self_gives_empty_self() -> None:
    data = load("running_all_direct")
    del data["Self"]
    data["TailscaleIPs"] = None
    view = parse_status(data)
    assert (view.self_hostname, view.self_ips) == ("", ())
    assert len(view.peers) == 2


def test_peer_entries_that_are_not_objects_are_skipped() -> None:
    data = load("running_all_direct")
    data["Peer"]["nodekey:broken"] = None
    data["Peer"]["nodekey:list"] = [1, 2]
    assert {p.hostname for p in parse_status(data).peers} == {LAPTOP, MAC}


@pytest.mark.parametrize(
    "node_id", [None, "nR3vF8mPq911CNTRL", 6219045538123977, "absent"], ids=str
)
def test_node_id_of_any_shape_is_tolerated(node_id: object) -> None:
    data = load("running_all_direct")
    for peer in data["Peer"].values():
        if node_id == "absent":
            peer.pop("NodeID", None)
        else:
            peer["NodeID"] = node_id
    assert links(parse_status(data)) == {LAPTOP: DIRECT, MAC: DIRECT}


def test_peer_with_nulls_and_missing_keys() -> None:
    data = {
        "BackendState": "Running",
        "Peer": {
            "nodekey:a": {"HostName": None, "TailscaleIPs": None, "Online": None, "Active": True},
            "nodekey:b": {
                "HostName": "b",
                "TailscaleIPs": ["100.64.0.2", 5, None],
                "Online": "yes",
            },
            "nodekey:c": {},
        },
    }
    a, b, c = parse_status(data).peers
    assert a == PeerView(hostname="", active=True)
    assert link_of(a) == (Link.OFFLINE, "")  # Online null: not online
    assert b.ips == ("100.64.0.2",)
    assert b.online is False  # only JSON true counts
    assert c == PeerView(hostname="", online=True)  # no Online key (before 1.0): not offline


def test_old_version_without_peer_relay_key() -> None:
    data = load("old_version_missing_keys")
    assert all("PeerRelay" not in p for p in data["Peer"].values())
    assert "NodeID" not in data["Self"]
    view = parse_status(data)
    assert all(p.peer_relay == "" for p in view.peers)


def test_unset_last_seen_is_empty() -> None:
    view = view_of("running_all_direct")
    assert all(p.last_seen == "" for p in view.peers)


# ==== link rule ================================================================

LINK_TABLE = [
    ("offline", dict(online=False), (Link.OFFLINE, "")),
    (
        "offline-even-if-active-direct",
        dict(online=False, active=True, cur_addr="1.2.3.4:41641"),
        (Link.OFFLINE, ""),
    ),
    ("idle", dict(online=True), (Link.IDLE, "")),
    ("idle-with-home-derp", dict(online=True, relay="tok"), (Link.IDLE, "")),
    ("idle-with-stale-cur-addr", dict(online=True, cur_addr="1.2.3.4:41641"), (Link.IDLE, "")),
    ("direct", dict(online=True, active=True, cur_addr="1.2.3.4:41641"), (Link.DIRECT, "")),
    (
        "direct-with-home-derp",
        dict(online=True, active=True, cur_addr="1.2.3.4:1", relay="tok"),
        (Link.DIRECT, ""),
    ),
    (
        "direct-beats-peer-relay",
        dict(online=True, active=True, cur_addr="1.2.3.4:1", peer_relay="5.6.7.8:9:vni:1"),
        (Link.DIRECT, ""),
    ),
    (
        "peer-relay",
        dict(online=True, active=True, peer_relay="5.6.7.8:9:vni:1", relay="tok"),
        (Link.PEER_RELAY, ""),
    ),
    ("derp", dict(online=True, active=True, relay="tok"), (Link.RELAY, "tok")),
    ("derp-other-region", dict(online=True, active=True, relay="fra"), (Link.RELAY, "fra")),
    ("active-nothing-known", dict(online=True, active=True), (Link.UNKNOWN, "")),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [r[1:] for r in LINK_TABLE], ids=[r[0] for r in LINK_TABLE]
)
def test_link_rule(fields: dict[str, Any], expected: tuple[Link, str]) -> None:
    assert link_of(PeerView(hostname="p", **fields)) == expected


# ==== matching =================================================================


def node(
    node_id: str = "macmini", hostname: str = "woosuns-mac-mini", ip: str = "100.123.51.5"
) -> Node:
    return Node(id=node_id, name=node_id, hostname=hostname, ip=ip)


SPARKLIO = Topology(
    name="Sparklio",
    nodes=(
        node("desktop", "sweetlife", "100.120.180.42"),
        node("laptop", "desktop-ecmkau8", "100.101.68.23"),
        node("macmini", "woosuns-mac-mini", "100.123.51.5"),
    ),
)

FIND_TABLE = [
    ("by-ip", node(hostname="nomatch"), MAC),
    ("by-hostname-case-insensitive", node(ip="100.99.99.99"), MAC),
    ("by-hostname-upper", node(hostname="WOOSUNS-MAC-MINI", ip=""), MAC),
    ("by-dns-first-label", node(hostname="desktop-ecmkau8", ip="100.99.99.99"), LAPTOP),
    ("ip-wins-over-hostname", node(hostname="woosuns-mac-mini", ip="100.101.68.23"), LAPTOP),
    ("ipv6", node(hostname="x", ip="fd7a:115c:a1e0::8b01:3305"), MAC),
    ("no-match", node(hostname="printer", ip="100.99.99.99"), None),
    ("empty-hostname-never-matches", node(hostname="", ip="100.99.99.99"), None),
    ("self-is-not-a-peer", node(hostname="sweetlife", ip="100.120.180.42"), None),
]


@pytest.mark.parametrize(
    ("n", "expected"), [r[1:] for r in FIND_TABLE], ids=[r[0] for r in FIND_TABLE]
)
def test_find_peer(n: Node, expected: str | None) -> None:
    peer = find_peer(n, view_of("running_all_direct"))
    assert (peer.hostname if peer else None) == expected


def test_find_peer_dns_label_when_hostname_differs() -> None:
    view = TailnetView(
        backend_state=BackendState.RUNNING,
        peers=(PeerView(hostname="localhost", dns_name="mac-mini-2.tail4c2e9a.ts.net."),),
    )
    found = find_peer(node(hostname="Mac-Mini-2", ip="100.64.0.9"), view)
    assert found is not None
    assert found.dns_name.startswith("mac-mini-2.")


def test_find_peer_ignores_empty_peer_names() -> None:
    view = TailnetView(peers=(PeerView(hostname="", dns_name=""),))
    assert find_peer(node(hostname="", ip=""), view) is None


def test_find_peer_in_empty_view() -> None:
    assert find_peer(node(), TailnetView(problem=TailscaleProblem.NOT_INSTALLED)) is None


IDENTIFY_TABLE = [
    ("by-ip", TailnetView(self_ips=("100.123.51.5",), self_hostname="other"), "macmini"),
    ("by-ipv4-among-both", TailnetView(self_ips=SWEETLIFE_IPS), "desktop"),
    ("by-hostname", TailnetView(self_hostname="SweetLife"), "desktop"),
    ("by-hostname-upper", TailnetView(self_hostname="DESKTOP-ECMKAU8"), "laptop"),
    ("ip-wins", TailnetView(self_ips=("100.101.68.23",), self_hostname="sweetlife"), "laptop"),
    ("none", TailnetView(self_ips=("100.64.0.1",), self_hostname="printer"), None),
    ("empty", TailnetView(), None),
]


@pytest.mark.parametrize(
    ("view", "expected"), [r[1:] for r in IDENTIFY_TABLE], ids=[r[0] for r in IDENTIFY_TABLE]
)
def test_identify_self(view: TailnetView, expected: str | None) -> None:
    assert identify_self(SPARKLIO, view) == expected


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("running_all_direct", "desktop"), ("needs_login", "desktop"), ("stopped", "desktop")],
    ids=["running", "logged-out-by-hostname", "stopped"],
)
def test_identify_self_from_fixtures(fixture: str, expected: str) -> None:
    assert identify_self(SPARKLIO, view_of(fixture)) == expected


def test_identify_self_empty_node_hostname_never_matches() -> None:
    topo = Topology(name="t", nodes=(node("blank", "", "100.64.0.1"),))
    assert identify_self(topo, TailnetView(self_hostname="")) is None


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (TailnetView(backend_state=BackendState.RUNNING, self_ips=("100.123.51.5",)),
         ("macmini", "its Tailscale IP 100.123.51.5")),
        (TailnetView(backend_state=BackendState.RUNNING, self_hostname="SweetLife"),
         ("desktop", "its hostname SweetLife")),
        (TailnetView(backend_state=BackendState.RUNNING, self_ips=("100.64.0.1",),
                     self_hostname="printer"),
         (None, "no single node has its Tailscale IPs (100.64.0.1) or names ('printer')")),
        (TailnetView(problem=TailscaleProblem.NOT_INSTALLED),
         (None, "which node this machine is cannot be told while Tailscale is unusable")),
    ],
    ids=["ip", "hostname", "none", "no-tailscale"],
)  # fmt: skip
def test_identify_self_by_says_how(view: TailnetView, expected: tuple[str | None, str]) -> None:
    """For the debug log: which node, and what matched (or why nothing did)."""
    assert identify_self_by(SPARKLIO, view) == expected


@pytest.mark.parametrize(
    ("view", "line"),
    [
        (TailnetView(backend_state=BackendState.RUNNING, self_hostname="SweetLife"),
         "this machine is node desktop (its hostname SweetLife)"),
        (TailnetView(backend_state=BackendState.RUNNING, self_hostname="printer"),
         "this machine is no node of the topology: no single node has its Tailscale IPs "
         "(none) or names ('printer')"),
        *[
            (TailnetView(problem=problem),
             "which node this machine is cannot be told while Tailscale is unusable")
            for problem in TailscaleProblem
        ],
        (TailnetView(backend_state=BackendState.STOPPED),
         "which node this machine is cannot be told while Tailscale is unusable"),
    ],
)  # fmt: skip
def test_the_self_node_line_claims_no_node_only_when_tailscale_could_tell(
    view: TailnetView, line: str
) -> None:
    assert self_node_line(identify_self_by(SPARKLIO, view)) == line
    assert self_node_line(("laptop", "--node")) == "this machine is node laptop (--node)"
