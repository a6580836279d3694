"""The starter topology `tailnet-agent init` writes: TOML text from a TailnetView (pure).

One node per machine Tailscale lists (this one first, then its peers), with the id, name,
hostname, Tailscale IPv4 and OS Tailscale reports, and services found by discovery (or
commented examples). It owns the rules that turn real status documents into valid nodes:

- id: a slug of the MagicDNS name (Tailscale already made it unique in the tailnet and
  spells "Borja’s MacBook Air" as borjas-macbook-air), else of the HostName;
- name: the HostName, but the MagicDNS name where the HostName says nothing (several
  phones all report "localhost");
- always_on: false only where Tailscale's own data says phone or laptop (OS iOS or
  android; a HostName or MagicDNS name naming a MacBook, macOS's default for its
  laptops), else true with a comment saying it is a guess;
- skipped, with the reason in the file: machines with no Tailscale IP (signed out, or
  expired) and Mullvad exit nodes (not the user's machines).

It also holds the well-known ports `init --discover` tries (WELL_KNOWN_PORTS). The rules
the drift check shares (the id's slug, the preferred IP, a Mullvad exit node) are
agent.core.tailnet's: `check` does not load this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent.core.model import CheckKind, Defaults, PeerView, Service, TailnetView
from agent.core.tailnet import dns_label, is_mullvad, node_slug, preferred_ip
from agent.core.topology import (
    NODE_ID_PATTERN,
    SUPPORTED_VERSION,
    format_topology_duration,
    toml_string,
)

__all__ = [
    "WELL_KNOWN_PORTS",
    "Found",
    "KnownPort",
    "StarterNode",
    "known_port",
    "starter_nodes",
    "starter_topology",
]

MOBILE_OSES = ("ios", "android")
LAPTOP_WORD = "macbook"
UNNAMED_HOSTS = ("", "localhost")

_OS_NAMES = {
    "windows": "windows",
    "macos": "macos",
    "linux": "linux",
    "ios": "ios",
    "android": "android",
    "freebsd": "freebsd",
}


@dataclass(frozen=True, slots=True)
class KnownPort:
    """A port worth trying, what usually answers there and how to check it."""

    port: int
    name: str
    check: CheckKind
    paths: tuple[str, ...] = ("/",)  # http: paths to try, best first


WELL_KNOWN_PORTS = (
    KnownPort(11434, "Ollama", CheckKind.HTTP, ("/api/tags", "/")),
    KnownPort(8188, "ComfyUI", CheckKind.HTTP, ("/system_stats", "/")),
    KnownPort(3000, "Next.js", CheckKind.HTTP),
    KnownPort(8000, "FastAPI", CheckKind.HTTP, ("/health", "/docs", "/")),
    KnownPort(5432, "PostgreSQL", CheckKind.POSTGRES),
    KnownPort(6379, "Redis", CheckKind.REDIS),
    KnownPort(9000, "MinIO API", CheckKind.HTTP, ("/minio/health/live", "/")),
    KnownPort(9001, "MinIO Console", CheckKind.HTTP),
)


def known_port(port: int) -> KnownPort:
    """The WELL_KNOWN_PORTS entry for `port`, else an unnamed one tried as HTTP at "/"."""
    for known in WELL_KNOWN_PORTS:
        if known.port == port:
            return known
    return KnownPort(port, f"Port {port}", CheckKind.HTTP)


@dataclass(frozen=True, slots=True)
class Found:
    """A service discovery found, and what it saw there (written as a comment)."""

    service: Service
    note: str


@dataclass(frozen=True, slots=True)
class StarterNode:
    """One machine as the starter topology writes it."""

    id: str
    name: str
    hostname: str
    ip: str
    os: str
    always_on: bool
    always_on_why: str
    is_self: bool
    online: bool


def starter_nodes(view: TailnetView) -> tuple[tuple[StarterNode, ...], tuple[str, ...]]:
    """This machine and its peers as nodes, and one line per machine left out (and why)."""
    me = PeerView(
        hostname=view.self_hostname,
        dns_name=view.self_dns_name,
        ips=view.self_ips,
        os=view.self_os,
        online=True,
    )
    peers = sorted(view.peers, key=lambda p: (p.dns_name.casefold(), p.hostname.casefold()))
    hostnames = [p.hostname.casefold() for p in (me, *peers)]
    nodes: list[StarterNode] = []
    skipped: list[str] = []
    mullvad = 0
    used_ids: set[str] = set()
    used_ips: set[str] = set()
    sharees = 0
    for peer, is_self in ((me, True), *((p, False) for p in peers)):
        if is_mullvad(peer):
            mullvad += 1
            continue
        if peer.sharee:
            sharees += 1
            continue
        label = dns_label(peer.dns_name)
        shown = _one_line(peer.hostname) or label or "?"
        ip = preferred_ip(peer.ips)
        if ip is None or ip in used_ips:
            what = "this machine" if is_self else shown
            skipped.append(f"{what}: no Tailscale IP (signed out, or not yet approved)")
            continue
        used_ips.add(ip)
        node_id = _unique_id(node_slug(label or peer.hostname), used_ids)
        unnamed = peer.hostname.casefold() in UNNAMED_HOSTS
        ambiguous = hostnames.count(peer.hostname.casefold()) > 1
        always_on, why = _always_on(peer)
        nodes.append(
            StarterNode(
                id=node_id,
                name=(label or node_id) if unnamed or ambiguous else shown,
                hostname=_one_line(peer.hostname) or label or node_id,
                ip=ip,
                os=_OS_NAMES.get(peer.os.casefold(), "other"),
                always_on=always_on,
                always_on_why=why,
                is_self=is_self,
                online=peer.online,
            )
        )
    if mullvad:
        skipped.append(f"{mullvad} Mullvad exit node(s): not machines of this network")
    if sharees:
        skipped.append(
            f"{sharees} machine(s) of people you shared a machine with: not of this network"
        )
    return tuple(nodes), tuple(skipped)


def starter_topology(
    view: TailnetView,
    found: Mapping[str, Sequence[Found]] | None = None,
    *,
    notes: Iterable[str] = (),
) -> str:
    """The starter topology.toml for `view`; `found` maps node ids to discovered services
    (None: no discovery ran, so every node gets a commented example). `notes` are extra
    header lines (what discovery did not probe). Parses with core.topology.parse_topology
    whenever starter_nodes(view) finds at least one node."""
    nodes, skipped = starter_nodes(view)
    defaults = Defaults()
    seen_from = view.self_hostname or "this machine"
    out = [
        "# tailnet-agent topology: a starter written by `tailnet-agent init` from",
        f"# `tailscale status --json` on {_one_line(seen_from)}"
        + (f" (Tailscale {_one_line(view.version)})." if view.version else "."),
        "#",
        "# Share it: put this same file on every machine of the network (topology.toml in",
        "# each one's tailnet-agent config folder); each agent finds which node it is from",
        "# Tailscale's own status. Check a copy with `tailnet-agent topology validate PATH`.",
        "#",
        "# Each [[nodes.services]]: name, port and check (http | tcp | redis | postgres |",
        '# websocket) are required; path = "/" (http, websocket), expect_status, expect_body,',
        '# impact = "degraded" (critical = red | degraded = amber | info = no alarm),',
        '# access = "tailscale" (or "localhost+tailscale") and open = false are optional.',
    ]
    if found is None:
        out.append("# No services yet: `tailnet-agent init --discover --force` looks for some.")
    out += [f"# Left out: {line}" for line in skipped]
    out += [f"# {line}" for line in notes]
    out += [
        "",
        f"version = {SUPPORTED_VERSION}",
        f"name = {toml_string(_tailnet_name(view))}",
        "",
        "[defaults]                 # the built-in values",
        f"interval = {toml_string(format_topology_duration(defaults.interval_s))}",
        f"timeout = {toml_string(format_topology_duration(defaults.timeout_s))}",
    ]
    for node in nodes:
        out += ["", "[[nodes]]" + ("                  # this machine" if node.is_self else "")]
        out += [
            f"id = {toml_string(node.id)}",
            f"name = {toml_string(node.name)}",
            f"hostname = {toml_string(node.hostname)}",
            f"ip = {toml_string(node.ip)}",
            f"os = {toml_string(node.os)}",
            f"always_on = {'true' if node.always_on else 'false'}  # {node.always_on_why}",
        ]
        services = None if found is None else found.get(node.id, ())
        if services:
            for item in services:
                out += ["", *_service_lines(item)]
        elif services is None:
            out += ["", *_EXAMPLE]
    return "\n".join(out) + "\n"


_EXAMPLE = (
    "  # [[nodes.services]]     # an example: uncomment and adjust",
    '  # name = "Web app"',
    "  # port = 8080",
    '  # check = "http"',
    '  # path = "/health"',
)


def _service_lines(item: Found) -> list[str]:
    s = item.service
    lines = [
        f"  [[nodes.services]]       # {item.note}",
        f"  name = {toml_string(s.name)}",
        f"  port = {s.port}",
        f"  check = {toml_string(s.check.value)}",
    ]
    if s.check in (CheckKind.HTTP, CheckKind.WEBSOCKET):
        lines.append(f"  path = {toml_string(s.path)}")
    return lines


def _always_on(peer: PeerView) -> tuple[bool, str]:
    if peer.os.casefold() in MOBILE_OSES:
        return False, f"Tailscale reports OS {peer.os}: a phone or tablet, offline is no alarm"
    for name in (peer.hostname, dns_label(peer.dns_name)):
        if LAPTOP_WORD in name.casefold():
            return False, "its name says MacBook: a laptop, offline (lid closed) is no alarm"
    return True, "a guess: Tailscale cannot tell; set false for a laptop"


def _unique_id(base: str, used: set[str]) -> str:
    candidate, n = base, 1
    while candidate in used:
        n += 1
        suffix = f"-{n}"
        candidate = base[: 32 - len(suffix)].rstrip("-_") + suffix
    assert NODE_ID_PATTERN.fullmatch(candidate)  # noqa: S101 — narrows a type the lines above guarantee; not an input check
    used.add(candidate)
    return candidate


def _tailnet_name(view: TailnetView) -> str:
    """The MagicDNS domain ("tail4c2e9a.ts.net"), else "tailnet"."""
    suffix = view.self_dns_name.rstrip(".").partition(".")[2]
    return suffix or "tailnet"


def _one_line(text: str) -> str:
    """Control characters (refused in a hostname) become spaces; blanks collapse."""
    return " ".join("".join(" " if ord(c) < 0x20 or c == "\x7f" else c for c in text).split())
