"""Topology drift: where the shared topology no longer matches the live tailnet.

Pure: `detect_drift(topology, tailnet, self_node_id)` compares each node with the machine
Tailscale reports for it and returns one Finding per difference, each with the exact edit
that brings the file back in line:

- a node whose Tailscale IP changed (the machine is found by its hostname): its `ip` line;
- a node renamed (the machine is found by its IP, under another hostname): its `hostname`;
- a node with no machine at all in the tailnet: remove its table, or sign the machine in;
- a tailnet peer that no node describes: the `[[nodes]]` lines to add. This one is a
  warning without colour: real tailnets hold phones, shared machines and exit nodes that
  no topology lists (tests/fixtures/tailscale/real/), and an icon amber for ever for them
  would teach the user to ignore amber. Its line says what Tailscale knows of it: its ACL
  tags (`Tags`) and whether it offers an exit node (`ExitNodeOption`).
  Two kinds of peer are no strays, and `init` leaves them out too (core.starter): Mullvad's
  exit nodes (tests/fixtures/tailscale/real/v1_50_mullvad_exit_nodes.json), and a sharee's
  machine (`ShareeNode`: in the netmap because someone this tailnet shared a node with owns
  it, and it may connect to us; ipnstate.PeerStatus in tailscale's ipn/ipnstate/ipnstate.go,
  which says `tailscale status` hides it): both belong to another person's network.

Nothing is said while Tailscale is not running here (nothing is known then). This machine
is compared too, by the same rules, but never reported missing: it runs this agent.
"""

from __future__ import annotations

from agent.core.health import short_name
from agent.core.model import Finding, FindingKind, Node, PeerView, TailnetView, Topology
from agent.core.tailnet import dns_label, is_mullvad, node_slug, preferred_ip
from agent.core.topology import toml_string

__all__ = ["detect_drift"]


def detect_drift(
    topology: Topology, tailnet: TailnetView, self_node_id: str | None
) -> tuple[Finding, ...]:
    """The differences between `topology` and the tailnet, nodes first, in file order."""
    if not tailnet.running:
        return ()
    own = PeerView(
        hostname=tailnet.self_hostname, dns_name=tailnet.self_dns_name, ips=tailnet.self_ips
    )
    machines = [own, *tailnet.peers]
    claimed: set[int] = set()  # machines found to be a node
    findings: list[Finding] = []
    for node in topology.nodes:
        is_self = node.id == self_node_id
        candidates = [0] if is_self else list(range(1, len(machines)))
        index, how = _match(node, machines, candidates, claimed)
        if index is None:
            if not is_self:
                findings.append(_missing(node))
            continue
        claimed.add(index)
        machine = machines[index]
        if how == "name":
            findings.append(_ip_changed(node, machine))
        elif node.hostname.casefold() not in _names(machine) and machine.hostname:
            findings.append(_renamed(node, machine))
    used_ids = {n.id for n in topology.nodes}
    for index, peer in enumerate(machines):
        # this machine (0) is no stray, whichever node it is; nor is another's machine
        if index and index not in claimed and not peer.sharee and not is_mullvad(peer):
            findings.append(_stray(peer, used_ids))
    return tuple(findings)


def _match(
    node: Node, machines: list[PeerView], candidates: list[int], claimed: set[int]
) -> tuple[int | None, str]:
    """The machine that is `node`: by its IP ("ip"), else by an unambiguous name ("name")."""
    for i in candidates:
        if node.ip in machines[i].ips:
            return i, "ip"
    wanted = node.hostname.casefold()
    named = [i for i in candidates if i not in claimed and wanted in _names(machines[i])]
    if len(named) == 1:
        return named[0], "name"
    return None, ""


def _names(machine: PeerView) -> set[str]:
    names = {machine.hostname.casefold(), dns_label(machine.dns_name).casefold()}
    names.discard("")
    return names


def _where(node: Node) -> str:
    return f"in the [[nodes]] table with id = {toml_string(node.id)}"


def _ip_changed(node: Node, machine: PeerView) -> Finding:
    new = preferred_ip(machine.ips) or "?"
    return Finding(
        FindingKind.DRIFT,
        f"drift:ip:{node.id}:{new}",
        node.id,
        "ip",
        f"{short_name(node)}'s Tailscale IP is now {new}; the topology says {node.ip}",
        f"{_where(node)}, change ip = {toml_string(node.ip)} to ip = {toml_string(new)}",
        colours=True,
    )


def _renamed(node: Node, machine: PeerView) -> Finding:
    return Finding(
        FindingKind.DRIFT,
        f"drift:hostname:{node.id}:{machine.hostname}",
        node.id,
        "hostname",
        f"{short_name(node)} ({node.ip}) is now called {toml_string(machine.hostname)}; "
        f"the topology says {toml_string(node.hostname)}",
        f"{_where(node)}, change hostname = {toml_string(node.hostname)} to "
        f"hostname = {toml_string(machine.hostname)}",
        colours=True,
    )


def _missing(node: Node) -> Finding:
    return Finding(
        FindingKind.DRIFT,
        f"drift:missing:{node.id}",
        node.id,
        "missing",
        f"{short_name(node)} is not in this tailnet "
        f"(no machine with IP {node.ip} or hostname {toml_string(node.hostname)})",
        f"if the machine left the tailnet, delete the [[nodes]] table with id = "
        f"{toml_string(node.id)}; else sign it in there (`tailscale up`) and correct its "
        "ip and hostname",
        colours=True,
    )


def _stray(peer: PeerView, used_ids: set[str]) -> Finding:
    ip = preferred_ip(peer.ips) or ""
    name = peer.hostname or dns_label(peer.dns_name) or ip
    node_id = node_slug(name)
    while node_id in used_ids:
        node_id = f"{node_id[:28]}-new"
    shown = f"{toml_string(name)} ({ip})" if ip else toml_string(name)
    what = _what_it_is(peer)
    add = (
        f"add [[nodes]] with id = {toml_string(node_id)}, hostname = {toml_string(name)}, "
        f"ip = {toml_string(ip)}"
    )
    if peer.exit_node_option:
        fix = f"nothing if it only routes traffic; to watch it, {add} (always_on = true)"
    else:
        fix = f"{add} (always_on = false for a laptop or phone)"
    return Finding(
        FindingKind.DRIFT,
        f"drift:stray:{ip or name}",
        None,
        name,
        f"tailnet peer {shown}{what} is not in the topology",
        fix,
        colours=False,
    )


def _what_it_is(peer: PeerView) -> str:
    """ ", an exit node tagged tag:x": what Tailscale says of a peer besides its name."""
    parts = []
    if peer.exit_node_option:
        parts.append("an exit node")
    if peer.tags:
        parts.append("tagged " + ", ".join(peer.tags))
    return f", {' '.join(parts)}," if parts else ""
