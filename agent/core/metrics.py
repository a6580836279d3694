"""The Prometheus metrics as plain data: what a scrape of a running agent shows, and where.

Pure. `metric_families(status, sweeps, version=...)` turns the monitor's latest
MonitorStatus (and the sweep counters the wiring keeps) into MetricFamily values; the
metrics edge (agent.edges.metrics) only hands them to prometheus-client, which writes the
exposition format. The names follow Prometheus's conventions (base units, `_total` on
counters, `_timestamp_seconds`) and blackbox_exporter's shapes, so dashboards and habits
carry over: `tailnet_service_up` is its `probe_success`, `tailnet_probe_duration_seconds` its
`probe_duration_seconds`, the failure reason an info-style series worth 1 (as its
`probe_tls_version_info`), the build an `_build_info` series worth 1.

`tailnet_health` is the icon's colour (core.menu.status_health: confirmed, so a single
failed probe re-checked a second later never turns it red); the per-service and per-node
series are the last sweep's reading, as blackbox_exporter's `probe_success` is, and an
alert rule's `for:` does the confirming.

Each node's key expiry is `tailnet_node_key_expiry_timestamp_seconds` (absent for a node
whose key never expires), so an alert rule says "expires within 14 days" with `- time()`.

Labels are bounded by the topology: node (its id), service, port, check; a peer's `path` is
one of four words and a failure's `reason` one of core.model.Reason. No detail text, address
or body ever becomes a label.

`parse_metrics_address` reads `HOST:PORT` (`[::1]:PORT` for IPv6) and `refusal` says why an
address may not serve: only loopback or one of this node's Tailscale IPs may.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from agent.core.menu import MonitorStatus, status_health
from agent.core.model import Health, Link, NodeStatus, ProbeState, Snapshot
from agent.errors import UsageError

__all__ = [
    "PEER_PATHS",
    "SERVICE_LABELS",
    "MetricFamily",
    "MetricKind",
    "MetricsAddress",
    "SweepStats",
    "metric_families",
    "parse_metrics_address",
    "refusal",
]

SERVICE_LABELS = ("node", "service", "port", "check")
PEER_PATHS: tuple[Link, ...] = (Link.DIRECT, Link.RELAY, Link.PEER_RELAY, Link.IDLE)
"""The values of tailnet_peer_path's `path` label: every online peer has exactly one at 1."""

Labels = tuple[str, ...]


class MetricKind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One metric: its name, type, help text, label names and samples (label values, value)."""

    name: str
    kind: MetricKind
    help: str
    labels: Labels = ()
    samples: tuple[tuple[Labels, float], ...] = ()


@dataclass(frozen=True, slots=True)
class SweepStats:
    """What the wiring counts around the monitor's sweeps."""

    total: int = 0
    last_duration_s: float | None = None


# ==== the families =============================================================


def metric_families(
    status: MonitorStatus | None, sweeps: SweepStats, *, version: str, python_version: str
) -> tuple[MetricFamily, ...]:
    """Every family of one scrape. Before the first published status, only the agent's own."""
    families = [
        _gauge(
            "tailnet_agent_build_info",
            "The agent's version and Python, as labels; always 1.",
            ("version", "python_version"),
            [((version, python_version), 1)],
        ),
        MetricFamily(
            "tailnet_sweeps_total",
            MetricKind.COUNTER,
            "Sweeps run since the agent started (a confirming re-check counts too).",
            samples=(((), float(sweeps.total)),),
        ),
    ]
    if sweeps.last_duration_s is not None:
        families.append(
            _gauge(
                "tailnet_sweep_duration_seconds",
                "How long the last sweep took: Tailscale's status, every probe, the judgement.",
                (),
                [((), sweeps.last_duration_s)],
            )
        )
    snapshot = status.snapshot if status is not None else None
    # the icon's colour (confirmed), not the latest reading's: a blip must not page
    overall = status_health(status) if status is not None else Health.GREY
    families.append(
        _gauge(
            "tailnet_health",
            "The overall colour the tray icon shows, confirmed (a failure counts once "
            "re-checked), on the check command's exit-code scale: 0 green, 1 amber, 2 red, "
            "3 grey (no data, no usable topology).",
            (),
            [((), overall.exit_code)],
        )
    )
    if status is not None:
        families.append(
            _gauge(
                "tailnet_topology_last_reload_successful",
                "1 when the topology file in use was read without error, 0 when the last "
                "reload was refused (the last good topology stays in use).",
                (),
                [((), 0 if status.topology_error else 1)],
            )
        )
    if snapshot is not None:
        families.extend(_snapshot_families(snapshot))
    return tuple(families)


def _snapshot_families(snapshot: Snapshot) -> list[MetricFamily]:
    families = [
        _gauge(
            "tailnet_last_sweep_timestamp_seconds",
            "When the sweep shown was judged, in seconds since the Unix epoch.",
            (),
            [((), snapshot.at)],
        ),
        _gauge(
            "tailnet_tailscale_running",
            "1 when Tailscale runs on this machine (BackendState Running), else 0.",
            (),
            [((), 1 if snapshot.tailnet.running else 0)],
        ),
        _gauge(
            "tailnet_node_health",
            "Each node's colour in the last sweep, unconfirmed: 0 green, 1 amber, 2 red, 3 grey.",
            ("node",),
            [((n.node.id,), n.health.exit_code) for n in snapshot.nodes],
        ),
    ]
    expiring = [
        (n.node.id, n.key_expires_at) for n in snapshot.nodes if n.key_expires_at is not None
    ]
    families.append(
        _gauge(
            "tailnet_node_key_expiry_timestamp_seconds",
            "When the node's Tailscale key expires, in seconds since the Unix epoch (Tailscale's "
            "KeyExpiry); absent for a node whose key does not expire.",
            ("node",),
            [((node_id,), at) for node_id, at in expiring],
        )
    )
    families.extend(_service_families(snapshot.nodes))
    families.extend(_peer_families([n for n in snapshot.nodes if not n.is_self]))
    return families


def _service_families(nodes: Sequence[NodeStatus]) -> list[MetricFamily]:
    up: list[tuple[Labels, float]] = []
    duration: list[tuple[Labels, float]] = []
    reasons: list[tuple[Labels, float]] = []
    for node in nodes:
        for status in node.services:
            service = status.service
            labels = (node.node.id, service.name, str(service.port), service.check.value)
            result = status.result
            up.append((labels, 1 if result.state is ProbeState.UP else 0))
            if result.latency_ms is not None:
                duration.append((labels, result.latency_ms / 1000))
            if result.state is not ProbeState.UP and result.reason is not None:
                reasons.append(((*labels, result.reason.value), 1))
    return [
        _gauge(
            "tailnet_service_up",
            "1 when the service answered its check in the last sweep, else 0 (as "
            "blackbox_exporter's probe_success).",
            SERVICE_LABELS,
            up,
        ),
        _gauge(
            "tailnet_probe_duration_seconds",
            "How long the service's probe took, to its answer or its failure.",
            SERVICE_LABELS,
            duration,
        ),
        _gauge(
            "tailnet_service_failure_reason",
            "Why a service is not up, as the `reason` label (refused, timeout, no_answer, "
            "http_status, peer_offline, ...); 1 while it fails, absent while it is up.",
            (*SERVICE_LABELS, "reason"),
            reasons,
        ),
    ]


def _peer_families(peers: Sequence[NodeStatus]) -> list[MetricFamily]:
    online = [((p.node.id,), 1 if p.online else 0) for p in peers if p.online is not None]
    paths = [
        ((p.node.id, path.value), 1 if p.link is path else 0) for p in peers for path in PEER_PATHS
    ]
    latency = [((p.node.id,), p.latency_ms / 1000) for p in peers if p.latency_ms is not None]
    always_on = [((p.node.id,), 1 if p.node.always_on else 0) for p in peers]
    return [
        _gauge(
            "tailnet_peer_online",
            "Tailscale's Online flag for the peer (the control plane's view): 1 or 0.",
            ("node",),
            online,
        ),
        _gauge(
            "tailnet_peer_path",
            "How this machine reaches the peer: 1 on its path (direct, relay through DERP, "
            "peer-relay, idle: no traffic, path unknown), 0 on the others; all 0 when offline.",
            ("node", "path"),
            paths,
        ),
        _gauge(
            "tailnet_peer_latency_seconds",
            "The fastest answer of the peer's services in the last sweep.",
            ("node",),
            latency,
        ),
        _gauge(
            "tailnet_peer_always_on",
            "1 when the topology says the peer is always on (offline is an alarm), 0 for one "
            "that comes and goes (a laptop): join it to alert only on the former.",
            ("node",),
            always_on,
        ),
    ]


def _gauge(
    name: str, help_text: str, labels: Labels, samples: Iterable[tuple[Labels, float]]
) -> MetricFamily:
    return MetricFamily(
        name,
        MetricKind.GAUGE,
        help_text,
        labels,
        tuple((values, float(value)) for values, value in samples),
    )


# ==== the address ==============================================================


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    host: str  # an IP address, never a name
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self}/metrics"

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback


EXAMPLE = "127.0.0.1:9233"


def parse_metrics_address(text: str, *, where: str = "--metrics") -> MetricsAddress:
    """`HOST:PORT` with HOST an IP address (`[v6]:PORT`) or `localhost` (127.0.0.1).
    UsageError naming `where` and an example otherwise."""
    raw = text.strip()
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host:
        raise UsageError(f"{where} {raw}: give HOST:PORT, such as {EXAMPLE}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"{where} {raw}: write an IPv6 address in brackets, [::1]:9233")
    if host.lower() == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(
            f"{where} {raw}: {host!r} is not an IP address (use 127.0.0.1 or this node's "
            "Tailscale IP)"
        ) from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UsageError(f"{where} {raw}: the port must be a number from 1 to 65535")
    return MetricsAddress(str(address), int(port_text))


def refusal(address: MetricsAddress, self_ips: Sequence[str]) -> str:
    """Why `address` may not serve metrics, or "" when it may: loopback always, else only one
    of this node's Tailscale IPs (`self_ips`, read from a running Tailscale: while it is not
    running the caller waits for it instead of asking)."""
    if address.loopback:
        return ""
    ip = ipaddress.ip_address(address.host)
    if ip.is_unspecified:
        return (
            f"{address.host} would listen on every network of this machine: metrics are served "
            f"only on loopback ({EXAMPLE}) or on this node's Tailscale IP"
        )
    if any(ipaddress.ip_address(own) == ip for own in self_ips if _is_ip(own)):
        return ""
    if not self_ips:
        return (
            f"{address.host} is not loopback, and Tailscale names no IP of this node: metrics "
            "are served only on loopback or on this node's Tailscale IP"
        )
    return (
        f"{address.host} is neither loopback nor one of this node's Tailscale IPs "
        f"({', '.join(self_ips)}): metrics are served only there"
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
