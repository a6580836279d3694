"""The suite's one Snapshot builder, terse sweeps, and a stepping driver for the monitor.

`service_status`, `node_status` and `snapshot` build the model's status types with the
suite's defaults (a service's colour from its state and impact, a node DIRECT and online,
this machine "desktop"); every test that needs a Snapshot without the health rules builds
it with them (tests/core/sample_network.py judges with the real rules instead).
`sweep(...)` builds one Snapshot of the Sparklio topology: every peer DIRECT and every
service UP unless told otherwise. `Driver` feeds Snapshots to `confirm.step` with a fake
pair of clocks that the test moves by hand (sweep interval, a 1 s recheck, a sleep, a clock
jump).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import EllipsisType

from agent.core.confirm import MonitorState, StepResult, initial_state, step
from agent.core.events import Event
from agent.core.model import (
    BackendState,
    CheckKind,
    FleetView,
    Health,
    Impact,
    Link,
    Node,
    NodeStatus,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    ServiceKey,
    ServiceStatus,
    Snapshot,
    TailnetView,
    TailscaleProblem,
    Topology,
)

__all__ = [
    "DESKTOP",
    "FASTAPI",
    "LAPTOP",
    "MACMINI",
    "NEXT",
    "OLLAMA",
    "POSTGRES",
    "REDIS",
    "TOPOLOGY",
    "VITE",
    "Driver",
    "node_status",
    "result",
    "service_status",
    "snapshot",
    "sweep",
    "with_defaults",
]

FASTAPI = Service("FastAPI", 8000, CheckKind.HTTP, "/health", impact=Impact.CRITICAL)
POSTGRES = Service("PostgreSQL", 5432, CheckKind.POSTGRES, impact=Impact.CRITICAL)
REDIS = Service("Redis", 6379, CheckKind.REDIS, impact=Impact.DEGRADED)
OLLAMA = Service("Ollama", 11434, CheckKind.HTTP, "/api/tags", impact=Impact.DEGRADED)
NEXT = Service("Next.js", 3000, CheckKind.HTTP, impact=Impact.INFO)
VITE = Service("Vite", 5173, CheckKind.HTTP, impact=Impact.DEGRADED)

DESKTOP = Node("desktop", "Desktop — GPU Worker", "sweetlife", "100.120.180.42", "windows",
               services=(OLLAMA,))  # fmt: skip
LAPTOP = Node("laptop", "Laptop — Frontend Dev", "desktop-ecmkau8", "100.101.68.23", "windows",
              always_on=False, services=(NEXT, VITE))  # fmt: skip
MACMINI = Node("macmini", "Mac mini — Backend Server", "woosuns-mac-mini", "100.123.51.5",
               "macos", services=(FASTAPI, POSTGRES, REDIS))  # fmt: skip
TOPOLOGY = Topology("Sparklio", (DESKTOP, LAPTOP, MACMINI), source="topology.toml")
SELF = "desktop"

_RESULTS = {
    "up": ProbeResult(ProbeState.UP, None, "HTTP 200", 1.0),
    "down": ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused"),
    "timeout": ProbeResult(ProbeState.DOWN, Reason.TIMEOUT, "no answer within 3 s"),
    "offline": ProbeResult(ProbeState.DOWN, Reason.PEER_OFFLINE, "peer offline; no answer"),
    "unknown": ProbeResult(ProbeState.UNKNOWN, Reason.ERROR, "internal error"),
    "skipped": ProbeResult(ProbeState.SKIPPED, Reason.TAILSCALE_DOWN, "not probed"),
}


_HEALTH_OF_DOWN = {Impact.CRITICAL: Health.RED, Impact.DEGRADED: Health.AMBER}


def service_status(
    service: Service,
    result: ProbeResult = _RESULTS["up"],
    host: str = "",
    *,
    health: Health | None = None,
) -> ServiceStatus:
    """A service's status; its colour (unless given) green when up, red/amber/grey when down
    by its impact, grey otherwise; its address `host:port` when a host is given."""
    if health is None:
        if result.state is ProbeState.UP:
            health = Health.GREEN
        elif result.state is ProbeState.DOWN:
            health = _HEALTH_OF_DOWN.get(service.impact, Health.GREY)
        else:
            health = Health.GREY
    return ServiceStatus(service, result, health, f"{host}:{service.port}" if host else "")


def node_status(
    node: Node,
    *services: ServiceStatus,
    is_self: bool = False,
    link: Link = Link.DIRECT,
    relay: str = "",
    online: bool | EllipsisType | None = ...,
    latency: float | None = 1.2,
    health: Health = Health.GREEN,
) -> NodeStatus:
    """A node's status; without `services`, each of its services up at its IP; online
    (unless given, None included) unless the link is OFFLINE."""
    if not services:
        services = tuple(service_status(s, host=node.ip) for s in node.services)
    if online is ...:
        online = link is not Link.OFFLINE
    return NodeStatus(node, is_self, link, relay, online, latency, health, (), services)


def snapshot(
    *nodes: NodeStatus,
    topology: Topology | None = None,
    tailnet: TailnetView | None = None,
    self_id: str | None = SELF,
    overall: Health = Health.GREEN,
    summary: str = "",
    at: float = 0.0,
    snoozed: frozenset[ServiceKey] = frozenset(),
    fleet: FleetView | None = None,
) -> Snapshot:
    """A Snapshot of these node statuses (its topology, unless given, their nodes; Tailscale
    running unless `tailnet` says otherwise); `snoozed` and `fleet` as `judge` records them."""
    if topology is None:
        topology = Topology("Sparklio", tuple(n.node for n in nodes))
    if tailnet is None:
        tailnet = TailnetView(backend_state=BackendState.RUNNING, self_hostname="sweetlife")
    return Snapshot(
        topology, tailnet, self_id, nodes, overall, summary, at, fleet=fleet, snoozed=snoozed
    )


def result(word: str) -> ProbeResult:
    """ "up" | "down" (refused) | "timeout" | "offline" | "unknown" | "skipped"."""
    return _RESULTS[word]


def with_defaults(topology: Topology = TOPOLOGY, **kw: float) -> Topology:
    """The topology with some defaults changed (failure_threshold=3, interval_s=5, ...)."""
    return replace(topology, defaults=replace(topology.defaults, **kw))  # type: ignore[arg-type]


def sweep(
    *,
    topology: Topology = TOPOLOGY,
    self_id: str | None = SELF,
    running: bool = True,
    problem: TailscaleProblem = TailscaleProblem.NOT_RUNNING,
    links: Mapping[str, Link] | None = None,
    relay: str = "tok",
    services: Mapping[str, str | ProbeResult] | None = None,
    at: float = 0.0,
    snoozed: frozenset[ServiceKey] = frozenset(),
    fleet: FleetView | None = None,
) -> Snapshot:
    """One judged sweep.

    links: node id -> Link for peers (default DIRECT). services: service name (or
    "node/name") -> a `result` word or a ProbeResult (default "up"; "offline" on a peer
    whose link is OFFLINE; "skipped" on peers while Tailscale is not running). snoozed: the
    (node id, service name or "") keys snoozed; fleet: the peers' views (--share-view).
    """
    links = links or {}
    services = services or {}
    if running:
        tailnet = TailnetView(backend_state=BackendState.RUNNING, self_hostname="sweetlife")
    else:
        tailnet = TailnetView(
            backend_state=BackendState.STOPPED,
            problem=problem,
            detail="Tailscale is stopped on this machine (run `tailscale up`)",
        )
    nodes: list[NodeStatus] = []
    for node in topology.nodes:
        is_self = node.id == self_id
        if is_self:
            link = Link.SELF
        elif not running:
            link = Link.UNKNOWN
        else:
            link = links.get(node.id, Link.DIRECT)
        statuses: list[ServiceStatus] = []
        for service in node.services:
            default = "up"
            if not is_self and not running:
                default = "skipped"
            elif link is Link.OFFLINE:
                default = "offline"
            spec = services.get(f"{node.id}/{service.name}", services.get(service.name, default))
            res = result(spec) if isinstance(spec, str) else spec
            health = Health.GREEN if res.state is ProbeState.UP else Health.GREY
            statuses.append(service_status(service, res, node.ip, health=health))
        nodes.append(
            node_status(
                node,
                *statuses,
                is_self=is_self,
                link=link,
                relay=relay if link is Link.RELAY else "",
                online=None if link is Link.UNKNOWN else link is not Link.OFFLINE,
                latency=None,
            )
        )
    return snapshot(
        *nodes,
        topology=topology,
        tailnet=tailnet,
        self_id=self_id,
        at=at,
        snoozed=snoozed,
        fleet=fleet,
    )


@dataclass
class Driver:
    """Feeds sweeps to `confirm.step`, moving a wall and a monotonic clock by hand."""

    wall: float = 1_750_000_000.0
    mono: float = 5_000.0
    state: MonitorState = field(default_factory=initial_state)
    log: list[Event] = field(default_factory=list)
    grace_s: float = 30.0
    boot: float | None = None  # a clock that counts suspend (None: the platform has none)

    def step(
        self,
        snapshot: Snapshot | None = None,
        *,
        after: float = 10.0,
        wall_after: float | None = None,
        topology_error: str | None = None,
        network_changed: bool = False,
        boot_after: float | None = None,
        busy_s: float = 0.0,
    ) -> StepResult:
        """Advance the clocks by `after` (the wall by `wall_after`, the boot clock by
        `boot_after` when given), then step."""
        self.mono += after
        self.wall += after if wall_after is None else wall_after
        if self.boot is not None:
            self.boot += after if boot_after is None else boot_after
        res = step(
            self.state,
            snapshot if snapshot is not None else sweep(),
            self.wall,
            self.mono,
            topology_error=topology_error,
            network_changed=network_changed,
            grace_s=self.grace_s,
            now_boot=self.boot,
            busy_s=busy_s,
        )
        self.state = res.state
        self.log.extend(res.events)
        return res

    def hold(self, snapshot: Snapshot, seconds: float, *, every: float = 10.0) -> list[Event]:
        """Sweep the same picture on schedule for `seconds`; the events it produced."""
        events: list[Event] = []
        steps = round(seconds / every)
        for _ in range(steps):
            events.extend(self.step(snapshot, after=every).events)
        return events
