"""Reading Tailscale's status: `tailscale status --json` -> TailnetView, the link rule, matching.

Pure: it turns the decoded JSON object into a TailnetView, tolerating missing keys, nulls
and values of the wrong type everywhere (the CLI warns the JSON changes between releases;
tailscale-facts.md sections 2-3). It also holds the agent's direct/relay rule (section 4)
and the matching of topology nodes to Tailscale peers and to this machine, and how a
machine is written in a topology (its id's slug, its preferred IP; a Mullvad exit node is
none of the network's machines): `init`'s starter and the drift check share these.

Real tailnets as they are (tests/fixtures/tailscale/real/): clients before 1.0 print
`BackendState ""`, a peer's address as `TailAddr` and no `Online`; several phones can all
report HostName "localhost"; a signed-out machine has no IPs. So a hostname matches only
when it is unambiguous, and Self is also known by its MagicDNS name.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from agent.core.decoding import load_json
from agent.core.hints import state_detail, tailscale_detail
from agent.core.model import (
    BackendState,
    Link,
    Node,
    PeerView,
    TailnetView,
    TailscaleProblem,
    Topology,
)

__all__ = [
    "dns_label",
    "find_peer",
    "identify_self",
    "identify_self_by",
    "is_mullvad",
    "link_of",
    "node_slug",
    "parse_status",
    "parse_status_json",
    "preferred_ip",
    "self_node_line",
]

MULLVAD_SUFFIX = ".mullvad.ts.net"

_UNSET_TIME_PREFIX = "0001-01-01"  # Go's zero time.Time: "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(
    r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)$"
)


def _bad_output(fact: str) -> TailnetView:
    return TailnetView(
        problem=TailscaleProblem.BAD_OUTPUT,
        detail=tailscale_detail(TailscaleProblem.BAD_OUTPUT, fact),
    )


# ==== parsing ==================================================================


def parse_status_json(text: str) -> TailnetView:
    """Decode the CLI's stdout and parse it; text that is not JSON gives BAD_OUTPUT."""
    try:
        data = load_json(text)
    except ValueError:
        # What it printed tells a person more than the JSON decoder's position does.
        snippet = " ".join(text.split())[:60]
        shown = json.dumps(snippet, ensure_ascii=False) if snippet else "nothing"
        return _bad_output(f"`tailscale status --json` printed something that is not JSON: {shown}")
    return parse_status(data)


def parse_status(data: object) -> TailnetView:
    """Turn a decoded `tailscale status --json` object into a TailnetView.

    A backend state other than Running gives problem NOT_RUNNING with a hint a person can
    act on; self and peers are still filled from whatever the status holds.
    """
    if not isinstance(data, Mapping):
        return _bad_output(
            f"`tailscale status --json` printed {_kind(data)} where a JSON object was expected"
        )
    raw_state = _str(data.get("BackendState"))
    self_obj = data.get("Self")
    self_map: Mapping[str, object] = self_obj if isinstance(self_obj, Mapping) else {}
    self_ips = _strs(data.get("TailscaleIPs")) or _ips(self_map)
    peer_obj = data.get("Peer")
    peers: tuple[PeerView, ...] = ()
    if isinstance(peer_obj, Mapping):
        peers = tuple(_peer(p) for p in peer_obj.values() if isinstance(p, Mapping))
    state = _backend_state(raw_state)
    # Clients before about 1.0 print "" (or nothing) connected or not (ts #714). One that
    # holds addresses is taken as running: the probes then say what answers.
    old_client = data.get("BackendState", "") == ""
    if old_client and (self_ips or any(p.ips for p in peers)):
        state = BackendState.RUNNING
    problem: TailscaleProblem | None = None
    detail = ""
    if state is not BackendState.RUNNING:
        problem = TailscaleProblem.NOT_RUNNING
        detail = state_detail(state, raw_state)
    return TailnetView(
        backend_state=state,
        problem=problem,
        detail=detail,
        version=_str(data.get("Version")),
        self_hostname=_str(self_map.get("HostName")),
        self_dns_name=_str(self_map.get("DNSName")),
        self_os=_str(self_map.get("OS")),
        self_ips=self_ips,
        peers=peers,
        health_warnings=_strs(data.get("Health")),
        self_key_expiry=_timestamp(self_map.get("KeyExpiry")),
    )


def _backend_state(raw: str) -> BackendState:
    try:
        state = BackendState(raw)
    except ValueError:
        return BackendState.UNKNOWN
    return state


def _time(value: object) -> str:
    """An RFC 3339 time as Tailscale wrote it; "" for Go's zero time or anything else."""
    text = _str(value)
    return "" if text.startswith(_UNSET_TIME_PREFIX) else text


def _timestamp(value: object) -> float | None:
    """An RFC 3339 time (Go writes up to 9 fraction digits) in wall seconds; None when unset
    or unreadable."""
    match = _RFC3339.match(_time(value))
    if match is None:
        return None
    fraction = (match.group("frac") or "")[:6]
    text = f"{match.group('base')}{'.' + fraction if fraction else ''}{match.group('zone')}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _peer(obj: Mapping[str, object]) -> PeerView:
    return PeerView(
        hostname=_str(obj.get("HostName")),
        dns_name=_str(obj.get("DNSName")),
        ips=_ips(obj),
        os=_str(obj.get("OS")),
        # Before 1.0 there was no Online at all: absent is not offline (null still is).
        online=obj.get("Online", True) is True,
        active=obj.get("Active") is True,
        cur_addr=_str(obj.get("CurAddr")),
        relay=_str(obj.get("Relay")),
        peer_relay=_str(obj.get("PeerRelay")),
        last_seen=_time(obj.get("LastSeen")),
        key_expiry=_timestamp(obj.get("KeyExpiry")),
        tags=_strs(obj.get("Tags")),
        sharee=obj.get("ShareeNode") is True,
        exit_node_option=obj.get("ExitNodeOption") is True,
    )


def _ips(obj: Mapping[str, object]) -> tuple[str, ...]:
    """A peer's (or Self's) Tailscale IPs; clients before 1.0 had one, in TailAddr."""
    ips = _strs(obj.get("TailscaleIPs"))
    if ips:
        return ips
    old = _str(obj.get("TailAddr"))
    return (old,) if old else ()


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


# ==== the link rule ============================================================


def link_of(peer: PeerView) -> tuple[Link, str]:
    """How this machine reaches `peer`, and the DERP region code when relayed.

    tailscale-facts.md section 4: offline when not Online; the path is known only for
    Active peers (idle otherwise). Relay names the home DERP and is set on direct peers
    too, so it counts only when neither CurAddr nor PeerRelay is set.
    """
    if not peer.online:
        return Link.OFFLINE, ""
    if not peer.active:
        return Link.IDLE, ""
    if peer.cur_addr:
        return Link.DIRECT, ""
    if peer.peer_relay:
        return Link.PEER_RELAY, ""
    if peer.relay:
        return Link.RELAY, peer.relay
    return Link.UNKNOWN, ""


# ==== matching =================================================================


def find_peer(node: Node, view: TailnetView) -> PeerView | None:
    """The peer that is `node`: by Tailscale IP first, then by hostname (case-insensitive).

    The hostname matches a peer's HostName or the first label of its DNSName, and only when
    exactly one peer has it: several phones all called "localhost" match none of them.
    """
    if node.ip:
        for peer in view.peers:
            if node.ip in peer.ips:
                return peer
    wanted = node.hostname.casefold()
    if not wanted:
        return None
    named = [peer for peer in view.peers if wanted in _peer_names(peer)]
    return named[0] if len(named) == 1 else None


def identify_self(topology: Topology, view: TailnetView) -> str | None:
    """The id of the topology node this machine is, from Tailscale's Self; None if none fits."""
    return identify_self_by(topology, view)[0]


def identify_self_by(topology: Topology, view: TailnetView) -> tuple[str | None, str]:
    """identify_self, and how: ("desktop", "its Tailscale IP 100.120.180.42"), ("desktop",
    "its hostname sweetlife"), or (None, why no node fits) — for the debug log.

    After the IPs (a signed-out machine has none) come its HostName and its MagicDNS name,
    each only when exactly one node has it. The MagicDNS name also matches a node's id: init
    writes ids from it, and a phone's HostName ("localhost") is often shared by others."""
    for node in topology.nodes:
        if node.ip and node.ip in view.self_ips:
            return node.id, f"its Tailscale IP {node.ip}"
    for own, how, by_id in (
        (view.self_hostname, "its hostname", False),
        (dns_label(view.self_dns_name), "its MagicDNS name", True),
    ):
        wanted = own.casefold()
        if not wanted:
            continue
        nodes = [
            n
            for n in topology.nodes
            if n.hostname.casefold() == wanted or (by_id and n.id.casefold() == wanted)
        ]
        if len(nodes) == 1:
            return nodes[0].id, f"{how} {own}"
    if not view.running:
        return None, _UNTOLD
    ips = ", ".join(view.self_ips) or "none"
    names = ", ".join(repr(n) for n in (view.self_hostname, view.self_dns_name) if n) or "none"
    return None, f"no single node has its Tailscale IPs ({ips}) or names ({names})"


_UNTOLD = "which node this machine is cannot be told while Tailscale is unusable"


def self_node_line(found: tuple[str | None, str]) -> str:
    """The log's line for identify_self_by's answer (or `--node`'s): "this machine is node
    desktop (its hostname sweetlife)", "this machine is no node of the topology: why" —
    never that while Tailscale is unusable, when nothing is known either way."""
    node_id, how = found
    if node_id is not None:
        return f"this machine is node {node_id} ({how})"
    if how == _UNTOLD:
        return _UNTOLD
    return f"this machine is no node of the topology: {how}"


def dns_label(dns_name: str) -> str:
    """ "borjas-macbook-air.tail4c2e9a.ts.net." -> "borjas-macbook-air" ("" for "")."""
    return dns_name.split(".", 1)[0]


def _peer_names(peer: PeerView) -> set[str]:
    names = {peer.hostname.casefold(), dns_label(peer.dns_name).casefold()}
    names.discard("")
    return names


# ==== a machine as a topology writes it (init's starter and the drift check) ======


def is_mullvad(peer: PeerView) -> bool:
    """A Mullvad exit node of Tailscale's add-on: listed as a peer, no machine of this
    network."""
    return peer.dns_name.rstrip(".").endswith(MULLVAD_SUFFIX)


def preferred_ip(ips: Sequence[str]) -> str | None:
    """A machine's Tailscale IP as a topology writes it: the first IPv4 (newer clients may
    list IPv6 first), else the first valid IP."""
    valid = []
    for text in ips:
        try:
            valid.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    for ip in valid:
        if ip.version == 4:
            return str(ip)
    return str(valid[0]) if valid else None


def node_slug(text: str) -> str:
    """A node id made from a machine's name: "Borja’s MacBook Air" -> "borjas-macbook-air"."""
    slug = re.sub(r"[^a-z0-9_]+", "-", text.casefold().replace("’", "").replace("'", ""))
    slug = slug.strip("-_")[:32].rstrip("-_")
    return slug or "node"
