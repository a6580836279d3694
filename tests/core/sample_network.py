"""A small Sparklio-like network in plain data, for core tests."""

from __future__ import annotations

from agent.core.health import judge
from agent.core.model import (
    Access,
    BackendState,
    CheckKind,
    Impact,
    Node,
    NodeStatus,
    PeerView,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    ServiceKey,
    Snapshot,
    TailnetView,
    Topology,
)
from agent.core.plan import plan_sweep

FASTAPI = Service("FastAPI", 8000, CheckKind.HTTP, "/health", impact=Impact.CRITICAL)
REDIS = Service("Redis", 6379, CheckKind.REDIS, impact=Impact.DEGRADED)
OLLAMA = Service("Ollama", 11434, CheckKind.HTTP, "/api/tags", impact=Impact.DEGRADED)
NEXT = Service(
    "Next.js", 3000, CheckKind.HTTP, impact=Impact.INFO, access=Access.LOCALHOST_AND_TAILSCALE
)

DESKTOP = Node("desktop", "Desktop — GPU Worker", "sweetlife", "100.120.180.42", "windows",
               services=(OLLAMA,))  # fmt: skip
LAPTOP = Node("laptop", "Laptop — Frontend Dev", "desktop-ecmkau8", "100.101.68.23", "windows",
              always_on=False, services=(NEXT,))  # fmt: skip
MACMINI = Node("macmini", "Mac mini — Backend Server", "woosuns-mac-mini", "100.123.51.5",
               "macos", services=(FASTAPI, REDIS))  # fmt: skip
TOPOLOGY = Topology("Sparklio", (DESKTOP, LAPTOP, MACMINI))


def peer(node: Node, **kw: object) -> PeerView:
    fields: dict[str, object] = {
        "hostname": node.hostname,
        "ips": (node.ip,),
        "online": True,
        "active": True,
        "cur_addr": "192.168.0.9:41641",
        "relay": "tok",
    }
    fields.update(kw)
    return PeerView(**fields)  # type: ignore[arg-type]


def running(*peers: PeerView) -> TailnetView:
    return TailnetView(
        backend_state=BackendState.RUNNING,
        self_hostname="sweetlife",
        self_ips=(DESKTOP.ip,),
        peers=peers,
    )


UP = ProbeResult(ProbeState.UP, None, "HTTP 200", 1.2)
REFUSED = ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused")
TIMEOUT = ProbeResult(ProbeState.DOWN, Reason.TIMEOUT, "no answer within 3 s")


def sweep_of(tailnet: TailnetView, **outcomes: ProbeResult) -> dict[ServiceKey, ProbeResult]:
    """Results for every service: UP unless named (by service name) in outcomes."""
    return {
        (n.id, s.name): outcomes.get(s.name.replace(".", "_"), UP)
        for n in TOPOLOGY.nodes
        for s in n.services
    }


def judged(tailnet: TailnetView, **outcomes: ProbeResult) -> Snapshot:
    plan = plan_sweep(TOPOLOGY, "desktop", tailnet)
    results = sweep_of(tailnet, **outcomes)
    results.update(plan.skipped)
    return judge(TOPOLOGY, tailnet, "desktop", results, plan.addresses, now=1.0)


def node_of(snapshot: Snapshot, node_id: str) -> NodeStatus:
    return next(n for n in snapshot.nodes if n.node.id == node_id)


ALL_DIRECT = running(peer(LAPTOP), peer(MACMINI))
