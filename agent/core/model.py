"""The plain data every part of the agent speaks: topology, observations, health.

Everything here is a frozen dataclass or an enum, with no I/O. The edges
(probes, the tailscale reader, the tray, the notifier) produce or consume these
values; the pure core (topology validation, health rules, event diff) computes
on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from agent.core.constants import EXIT_UNKNOWN

__all__ = [
    "Access",
    "BackendState",
    "CheckKind",
    "Defaults",
    "DetailValue",
    "Finding",
    "FindingKind",
    "FleetView",
    "Health",
    "Impact",
    "Link",
    "Locus",
    "Node",
    "NodeStatus",
    "PathReading",
    "PeerView",
    "ProbeResult",
    "ProbeState",
    "ProbeTarget",
    "Reason",
    "Service",
    "ServiceKey",
    "ServiceStatus",
    "Sighting",
    "Snapshot",
    "TailnetView",
    "TailscaleProblem",
    "Topology",
]


# ==== topology =================================================================


class CheckKind(StrEnum):
    """How a service is probed."""

    HTTP = "http"
    TCP = "tcp"
    REDIS = "redis"
    POSTGRES = "postgres"
    WEBSOCKET = "websocket"


class Impact(StrEnum):
    """What a service being down does to the colour."""

    CRITICAL = "critical"  # red
    DEGRADED = "degraded"  # amber
    INFO = "info"  # shown, never colours, never alarms


class Access(StrEnum):
    """Where a service listens."""

    TAILSCALE = "tailscale"
    LOCALHOST_AND_TAILSCALE = "localhost+tailscale"


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    port: int
    check: CheckKind
    path: str = "/"  # http and websocket
    expect_status: tuple[int, ...] = ()  # empty: any 2xx or 3xx
    expect_body: str | None = None
    impact: Impact = Impact.DEGRADED
    access: Access | None = None  # None: not declared here (the defaults' access applies)
    open: bool = False  # offer "Open in browser"
    consumers: tuple[str, ...] | None = None  # node ids that use it; None: every other node


@dataclass(frozen=True, slots=True)
class Defaults:
    interval_s: float = 10.0
    timeout_s: float = 3.0
    failure_threshold: int = 2
    success_threshold: int = 1
    latency_warn_ms: float = 100.0
    access: Access | None = None  # None: no access policy declared for the network


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    hostname: str
    ip: str  # Tailscale IPv4
    os: str = "linux"  # windows | macos | linux | ios | android | freebsd | other
    role: str = ""
    always_on: bool = True
    services: tuple[Service, ...] = ()


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    nodes: tuple[Node, ...]
    defaults: Defaults = field(default_factory=Defaults)
    version: int = 1
    source: str = "<memory>"  # the file it came from, or "bundled default"

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    @property
    def service_count(self) -> int:
        """How many services all nodes have: a sweep's probe count."""
        return sum(len(n.services) for n in self.nodes)


ServiceKey = tuple[str, str]
"""(node id, service name): how a service is keyed across a sweep, its history and its
notifications (a service name is unique within its node)."""


# ==== tailscale ================================================================


class BackendState(StrEnum):
    """tailscaled's BackendState (ipn/backend.go); UNKNOWN for anything newer."""

    NO_STATE = "NoState"
    NEEDS_LOGIN = "NeedsLogin"
    NEEDS_MACHINE_AUTH = "NeedsMachineAuth"
    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"
    UNKNOWN = "Unknown"


class TailscaleProblem(StrEnum):
    """Why no usable Tailscale status could be read on this machine."""

    NOT_INSTALLED = "not_installed"  # no CLI found
    NOT_RUNNING = "not_running"  # BackendState other than Running
    CLI_FAILED = "cli_failed"  # non-zero exit (tailscaled unreachable, ...)
    TIMED_OUT = "timed_out"  # the CLI hung
    BAD_OUTPUT = "bad_output"  # not the JSON we expect


class Link(StrEnum):
    """How this machine reaches a node (tailscale-facts.md section 4)."""

    SELF = "self"
    DIRECT = "direct"
    RELAY = "relay"  # via a DERP server
    PEER_RELAY = "peer-relay"
    IDLE = "idle"  # not Active: path unknown, never "relayed"
    OFFLINE = "offline"
    UNKNOWN = "unknown"  # not in the tailnet, or no Tailscale here


@dataclass(frozen=True, slots=True)
class PeerView:
    """One peer as Tailscale reports it."""

    hostname: str
    dns_name: str = ""
    ips: tuple[str, ...] = ()
    os: str = ""
    online: bool = False
    active: bool = False
    cur_addr: str = ""
    relay: str = ""  # home DERP region code, set even on direct peers
    peer_relay: str = ""
    last_seen: str = ""  # RFC 3339, "" when unset
    key_expiry: float | None = None  # KeyExpiry (wall s); None when expiry is disabled
    tags: tuple[str, ...] = ()  # Tags: ACL tags ("tag:server"); a tagged node has no owner
    sharee: bool = False  # ShareeNode: a machine of someone this tailnet shared a node with
    exit_node_option: bool = False  # ExitNodeOption: it offers itself as an exit node


@dataclass(frozen=True, slots=True)
class TailnetView:
    """What `tailscale status --json` said, or why it could not say it."""

    backend_state: BackendState | None = None
    problem: TailscaleProblem | None = None
    detail: str = ""  # a sentence for people when there is a problem
    version: str = ""
    self_hostname: str = ""
    self_dns_name: str = ""  # MagicDNS FQDN with its trailing dot; "" when signed out
    self_os: str = ""  # as Tailscale spells it: "windows", "macOS", "iOS", ...
    self_ips: tuple[str, ...] = ()
    peers: tuple[PeerView, ...] = ()
    health_warnings: tuple[str, ...] = ()
    self_key_expiry: float | None = None  # Self's KeyExpiry (wall s); None when disabled

    @property
    def running(self) -> bool:
        return self.problem is None and self.backend_state is BackendState.RUNNING


# ==== observations =============================================================


class ProbeState(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"  # the probe could not decide (an internal error)
    SKIPPED = "skipped"  # not probed, and why is in the reason


class Reason(StrEnum):
    """Why a probe did not find its service up: each maps to a runbook hint."""

    REFUSED = "refused"
    TIMEOUT = "timeout"  # no connection in time: a firewall, or the host unreachable
    NO_ANSWER = "no_answer"  # connected, then silence: the host is up, the service hangs
    DNS = "dns"
    HTTP_STATUS = "http_status"
    BODY_MISMATCH = "body_mismatch"
    PROTOCOL_MISMATCH = "protocol_mismatch"
    TLS = "tls"
    PEER_OFFLINE = "peer_offline"
    TAILSCALE_DOWN = "tailscale_down"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One probe to send: which service, at which address, with what timeout."""

    node_id: str
    service: Service
    host: str
    timeout_s: float


DetailValue = str | int | float | tuple[str, ...]
"""One fact a service tells about itself beyond "up" (core.details names and renders them)."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    state: ProbeState
    reason: Reason | None = None
    detail: str = ""  # one human line: "HTTP 503", "connection refused", ...
    latency_ms: float | None = None
    at: float = 0.0  # wall-clock seconds when the result was known
    http_status: int | None = None  # the status an HTTP answer had, good or bad
    excerpt: str = ""  # the start of a failing answer's body, scrubbed (agent.core.redact)
    # Rich details of an UP service: (name, value) pairs, e.g. ("models", ("llama3:8b",)).
    details: tuple[tuple[str, DetailValue], ...] = ()


@dataclass(frozen=True, slots=True)
class PathReading:
    """One `tailscale ping` of a peer: the path the pong took and its round trip."""

    link: Link  # DIRECT, RELAY (DERP) or PEER_RELAY on a pong; UNKNOWN without one
    via: str = ""  # "192.168.219.100:64094", the DERP region code "fra", the peer relay
    latency_ms: float | None = None
    error: str = ""  # a fact when there was no pong: "no reply within 3 s"
    at: float = 0.0  # wall-clock seconds of the reading


# ==== who sees whom (--share-view) ==============================================


class Locus(StrEnum):
    """Where the peers' shared views place a failure seen from here."""

    EVERYWHERE = "everywhere"  # every node with a fresh view fails too: the service is down
    HERE = "here"  # only this node fails, the others reach it: this machine's link
    SPLIT = "split"  # some fail, some reach it


@dataclass(frozen=True, slots=True)
class Sighting:
    """One service as every node with a fresh view sees it, this node first."""

    seen: tuple[tuple[str, ProbeState], ...]  # (observer node id, its reading)
    locus: Locus | None  # None: nothing to place (up here, or no other view)
    waiting: tuple[str, ...] = ()  # failing here: peers whose fresh view predates the failure


@dataclass(frozen=True, slots=True)
class FleetView:
    """The peers' shared views of one sweep: each peer's view status and each service's
    sightings (agent.core.share_view)."""

    views: tuple[tuple[str, str], ...]  # (peer node id, fresh|stale|unreachable|malformed|off)
    sightings: Mapping[ServiceKey, Sighting]


# ==== health ===================================================================


class Health(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    GREY = "grey"  # no data, paused, no usable topology

    @property
    def exit_code(self) -> int:
        """The Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
        return {"green": 0, "amber": 1, "red": 2, "grey": EXIT_UNKNOWN}[self.value]


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    service: Service
    result: ProbeResult
    health: Health
    address: str  # host:port actually probed (or that would be)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node: Node
    is_self: bool
    link: Link
    relay: str  # DERP region when the link is relayed, else ""
    online: bool | None  # Tailscale's Online flag; None when unknown
    latency_ms: float | None
    health: Health
    reasons: tuple[str, ...]  # human lines explaining a non-green node
    services: tuple[ServiceStatus, ...]
    path: PathReading | None = None  # the last `tailscale ping` of this peer, if any
    key_expires_at: float | None = None  # its node key's expiry (wall s); None: never
    findings: tuple[Finding, ...] = ()  # exposure and drift found about this node


class FindingKind(StrEnum):
    """What a diagnosis found: a service exposed beyond Tailscale, or topology drift."""

    EXPOSURE = "exposure"
    DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a diagnosis found, with the exact edit that fixes it.

    `key` names this very finding ("drift:ip:macmini:100.123.51.9"): a different one (the
    IP changed again) is a new change to announce, the same one is never announced twice.
    """

    kind: FindingKind
    key: str
    node_id: str | None  # the topology node; None for a tailnet peer the topology lacks
    subject: str  # the service name, or what drifted
    text: str  # "PostgreSQL listens on 0.0.0.0:5432: reachable beyond Tailscale"
    fix: str  # "listen_addresses = '100.123.51.5' in postgresql.conf"
    colours: bool  # True: amber; False: a warning shown without colour


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One sweep, judged: what the tray, the CLI and the event diff read."""

    topology: Topology
    tailnet: TailnetView
    self_node_id: str | None
    nodes: tuple[NodeStatus, ...]
    overall: Health
    summary: str  # one line for a tooltip or a terminal
    at: float
    findings: tuple[Finding, ...] = ()  # every node's, and those about no node
    assessed: frozenset[FindingKind] = frozenset()  # the kinds this sweep could look for
    fleet: FleetView | None = None  # the peers' views, with --share-view
    snoozed: frozenset[ServiceKey] = frozenset()  # judged snoozed (core.snooze's keys)
