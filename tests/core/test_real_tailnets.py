"""Real tailnets as they are: recorded `tailscale status --json` documents from public sources
(tests/fixtures/tailscale/real/, each with its source in `_fixture`) parse into a sensible
TailnetView, make a starter topology that validates, and match nodes the way they should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.core.model import BackendState, Node, TailnetView, Topology
from agent.core.starter import Found, starter_nodes, starter_topology
from agent.core.tailnet import find_peer, identify_self_by, parse_status
from agent.core.topology import OS_VALUES, parse_topology

REAL = Path(__file__).parents[1] / "fixtures" / "tailscale" / "real"
FIXTURES = sorted(p.stem for p in REAL.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((REAL / f"{name}.json").read_text(encoding="utf-8"))


def view_of(name: str) -> TailnetView:
    return parse_status(load(name))


def test_there_are_a_dozen_or_so_from_before_1_0_to_recent() -> None:
    assert len(FIXTURES) >= 12
    assert FIXTURES[0].startswith("v0_") and any(f.startswith("v1_98") for f in FIXTURES)


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_names_its_source_and_is_anonymised(name: str) -> None:
    data = load(name)
    assert {"source", "version", "anonymised", "shows"} <= data["_fixture"].keys()
    view = parse_status(data)
    for ip in (*view.self_ips, *(ip for p in view.peers for ip in p.ips)):
        assert ip.startswith(("100.64.", "fd7a:115c:a1e0:")), ip


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_parses_into_a_sensible_view(name: str) -> None:
    view = view_of(name)
    assert view.problem is None or view.backend_state is not None
    assert view.backend_state is not None
    assert all(isinstance(p.hostname, str) for p in view.peers)
    if view.running:
        assert view.self_ips or view.peers


@pytest.mark.parametrize("name", FIXTURES)
def test_init_over_every_fixture_validates(name: str) -> None:
    """A starter topology that validates, or (no machine has an address) nothing to write."""
    view = view_of(name)
    nodes, skipped = starter_nodes(view)
    has_address = bool(view.self_ips) or any(
        p.ips for p in view.peers if ".mullvad." not in p.dns_name
    )
    assert bool(nodes) == has_address
    if not nodes:
        assert skipped
        return
    no_services: dict[str, list[Found]] = {}
    for found in (None, no_services):
        topology = parse_topology(starter_topology(view, found), f"{name}.toml")
        assert [n.id for n in topology.nodes] == [n.id for n in nodes]
        assert {n.os for n in topology.nodes} <= set(OS_VALUES)
        # every written node is matched back to its machine by its IP
        for node in topology.nodes:
            me = next(n for n in nodes if n.id == node.id)
            if me.is_self:
                assert identify_self_by(topology, view)[0] == node.id
            else:
                assert find_peer(node, view) is not None


def test_before_1_0_empty_backend_state_tailaddr_and_no_online() -> None:
    view = view_of("v0_2020_no_self_tailaddr")
    assert view.backend_state is BackendState.RUNNING  # "" with addresses
    assert [p.ips for p in view.peers] == [("100.64.0.11",), ("100.64.0.12",)]
    assert all(p.online for p in view.peers)  # no Online key: not offline
    assert view.self_ips == ()
    nodes, _ = starter_nodes(view)
    assert [(n.id, n.always_on) for n in nodes] == [("alex-mbp", True), ("alex-phone", False)]


def test_1_0_self_with_tailaddr_and_empty_state_is_running() -> None:
    view = view_of("v1_0_2020_backend_state_empty_with_self")
    assert view.running
    assert view.self_ips == ("100.64.1.1",)


def test_signed_out_machine_has_nothing_to_write() -> None:
    view = view_of("v1_94_2_needs_login_signed_out")
    assert view.backend_state is BackendState.NEEDS_LOGIN
    assert view.self_ips == () and view.self_dns_name == ""
    nodes, skipped = starter_nodes(view)
    assert nodes == ()
    assert skipped == ("this machine: no Tailscale IP (signed out, or not yet approved)",)


def test_localhost_phones_are_named_from_magicdns_and_never_matched_by_hostname() -> None:
    view = view_of("v1_94_2_macos_apostrophe_three_ios_localhost")
    nodes, _ = starter_nodes(view)
    phones = {n.id: n for n in nodes if n.hostname == "localhost"}
    assert sorted(phones) == ["ipad-pro-11-gen-1", "iphone-12-mini", "iphone175"]
    assert {n.name for n in phones.values()} == set(phones)
    assert not any(n.always_on for n in phones.values())  # iOS
    topology = parse_topology(starter_topology(view), "t.toml")  # three "localhost": valid
    ipad = topology.node("ipad-pro-11-gen-1")
    assert ipad is not None
    found = find_peer(ipad, view)
    assert found is not None and found.dns_name.startswith("ipad-pro-11-gen-1.")
    moved = Node(id="x", name="x", hostname="localhost", ip="100.64.25.99")
    assert find_peer(moved, view) is None  # "localhost" is ambiguous: no guess


def test_a_phone_that_is_self_and_localhost_is_matched_by_its_magicdns_name() -> None:
    """headscale 1.48.1 on an iPhone: Self and two peers are all "localhost"; without its
    IPs (signed out, stopped) Self is still found by the id init wrote from MagicDNS."""
    data = load("v1_48_1_headscale_ios_self_localhost")
    view = parse_status(data)
    topology = parse_topology(starter_topology(view), "t.toml")
    assert [n.hostname for n in topology.nodes].count("localhost") == 3
    assert view.self_dns_name == "localhost-vint6y2y.default.example.com"  # no trailing dot
    assert topology.name == "default.example.com"
    data["TailscaleIPs"] = data["Self"]["TailscaleIPs"] = None
    no_ips = parse_status(data)
    assert identify_self_by(topology, no_ips) == (
        "localhost-vint6y2y",
        "its MagicDNS name localhost-vint6y2y",
    )


def test_an_unstamped_build_version_is_kept_as_printed() -> None:
    view = view_of("v1_76_1_err_buildinfo_router")
    assert view.version == "1.76.1-ERR-BuildInfo" and view.running
    assert "(Tailscale 1.76.1-ERR-BuildInfo)." in starter_topology(view)


def test_expired_peers_still_in_the_netmap_are_written_with_their_ips() -> None:
    nodes, skipped = starter_nodes(view_of("v1_84_0_android_localhost_expired_peers"))
    assert skipped == ()
    assert [(n.id, n.online) for n in nodes] == [
        ("ip-172-31-27-131", True),
        ("labserver", False),
        ("xiaomi-22031116ai", False),
    ]


def test_signed_out_documents_of_recent_clients_have_nothing_to_write() -> None:
    for name in ("v1_98_8_needs_login_stopped", "v1_102_4_macos_signed_out"):
        view = view_of(name)
        assert view.backend_state is BackendState.NEEDS_LOGIN
        assert view.health_warnings == ("Tailscale is stopped.",)
        assert starter_nodes(view) == (
            (),
            ("this machine: no Tailscale IP (signed out, or not yet approved)",),
        )


def test_mullvad_exit_nodes_are_left_out() -> None:
    nodes, skipped = starter_nodes(view_of("v1_50_mullvad_exit_nodes"))
    assert [n.id for n in nodes] == ["thinkpad-x1", "raspberrypi"]
    assert skipped == ("2 Mullvad exit node(s): not machines of this network",)


def test_self_is_matched_by_its_magicdns_name() -> None:
    view = view_of("v1_76_1_err_buildinfo_router")  # HostName iKuai, MagicDNS ikuai-1
    topology = Topology(
        name="t",
        nodes=(Node(id="router", name="Router", hostname="ikuai-1", ip="100.64.9.9"),),
    )
    assert identify_self_by(topology, view) == ("router", "its MagicDNS name ikuai-1")
    nodes, _ = starter_nodes(view)
    assert (nodes[0].id, nodes[0].name, nodes[0].hostname) == ("ikuai-1", "iKuai", "iKuai")


def test_a_macos_default_name_with_an_apostrophe_is_a_laptop_that_validates() -> None:
    view = view_of("v1_94_2_macos_apostrophe_three_ios_localhost")
    nodes, _ = starter_nodes(view)
    me = nodes[0]
    assert (me.id, me.name, me.is_self) == ("robins-macbook-air-1", "Robin’s MacBook Air", True)
    assert not me.always_on  # a MacBook
    topology = parse_topology(starter_topology(view), "t.toml")
    assert identify_self_by(topology, view)[0] == "robins-macbook-air-1"


def test_signed_out_self_with_an_apostrophe_hostname_is_matched_by_name() -> None:
    view = view_of("v1_8x_self_apostrophe_hostname")
    assert view.self_ips == ()
    text = '[[nodes]]\nid = "air"\nhostname = "Borja’s MacBook Air"\nip = "100.64.9.1"\n'
    topology = parse_topology("version = 1\n" + text, "t.toml")
    assert identify_self_by(topology, view) == ("air", "its hostname Borja’s MacBook Air")
    by_dns = Topology(
        name="t", nodes=(Node(id="air", name="a", hostname="BORJAS-MAC-AIR", ip="100.64.9.1"),)
    )
    assert identify_self_by(by_dns, view)[0] == "air"


def test_ipv4_is_chosen_when_ipv6_comes_first_and_a_peer_without_ips_is_left_out() -> None:
    view = view_of("v1_8x_android_localhost_ipv6_first")
    assert view.running  # no BackendState, but addresses
    nodes, skipped = starter_nodes(view)
    by_id = {n.id: n for n in nodes}
    assert by_id["macbook-air"].ip == "100.64.6.2"
    assert by_id["macbook-air"].hostname == "MacBook Air"
    assert by_id["mate-30-5g"].name == "mate-30-5g"
    assert skipped == ("no-ip: no Tailscale IP (signed out, or not yet approved)",)


def test_duplicate_windows_hostnames_get_their_magicdns_ids_and_names() -> None:
    nodes, _ = starter_nodes(view_of("v1_98_9_five_peers"))
    desktops = [n for n in nodes if n.hostname == "DESKTOP-3MF8T2Q"]
    assert sorted((n.id, n.name) for n in desktops) == [
        ("desktop-3mf8t2q", "desktop-3mf8t2q"),
        ("desktop-3mf8t2q-1", "desktop-3mf8t2q-1"),
    ]
    assert {n.id: n.always_on for n in nodes}["pats-macbook-pro"] is False


def test_freebsd_self_keeps_its_os() -> None:
    nodes, _ = starter_nodes(view_of("v1_80_freebsd_exit_node_ios_peer"))
    assert [(n.id, n.os, n.is_self) for n in nodes] == [
        ("ariel", "freebsd", True),
        ("iphone", "ios", False),
    ]
