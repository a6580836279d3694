#!/usr/bin/env python3
"""tailnet-agent's sweep as a peer of ../shared/bench (the loopback fleet benchmark).

    ../shared/bench/run_peers.sh --agent-name tailnet-agent \
        --agent-cmd '.venv/bin/python tests/bench/peer_adapter.py {manifest}'

Reads the fleet's manifest, turns its endpoints into a topology (one node per
loopback host; http and tcp checks as the manifest says), plans and probes them
with the agent's own planner and probes on the loop `agent.edges.event_loop.run`
picks (uvloop from UVLOOP_MIN_PROBES probes, where installed), and prints one JSON line
{"id": ..., "state": up|timeout|refused|...} as each verdict becomes known.
The harness times it from spawn to exit, interpreter start-up included.
Figures and how to read them: docs/benchmarks.md.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.core.model import (
    BackendState,
    CheckKind,
    Defaults,
    Node,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    TailnetView,
    Topology,
)
from agent.core.plan import SweepPlan, plan_sweep
from agent.edges.event_loop import run
from agent.edges.probes import make_http_client, run_probes


def topology_from(manifest: dict) -> tuple[Topology, dict[tuple[str, str], str]]:  # type: ignore[type-arg]
    by_host: dict[str, list[Service]] = {}
    ids: dict[tuple[str, str], str] = {}
    for ep in manifest["endpoints"]:
        if not ipaddress.ip_address(ep["host"]).is_loopback:
            raise SystemExit(f"refusing a non-loopback endpoint: {ep['host']}")
        check = CheckKind.HTTP if ep["check"] == "http" else CheckKind.TCP
        path = ep.get("path") or "/"
        service = Service(
            ep["id"], int(ep["port"]), check, path if check is CheckKind.HTTP else "/"
        )
        by_host.setdefault(ep["host"], []).append(service)
    nodes = []
    for index, (host, services) in enumerate(sorted(by_host.items())):
        node_id = f"n{index}"
        nodes.append(Node(node_id, node_id, node_id, host, services=tuple(services)))
        ids.update({(node_id, s.name): s.name for s in services})
    timeout = float(manifest.get("timeout_hint_s", 2.0))
    return Topology("bench", tuple(nodes), Defaults(timeout_s=timeout)), ids


def verdict(result: ProbeResult) -> str:
    if result.state is ProbeState.UP:
        return "up"
    return {Reason.TIMEOUT: "timeout", Reason.REFUSED: "refused"}.get(
        result.reason,  # type: ignore[arg-type]
        str(result.reason),
    )


def main(manifest_path: str) -> None:
    manifest = json.loads(Path(manifest_path).read_text())
    topology, ids = topology_from(manifest)
    plan = plan_sweep(topology, None, TailnetView(backend_state=BackendState.RUNNING))
    # As the agent's entry points run a sweep (uvloop for a sweep big enough to pay for it).
    run(probe_all(plan, ids), probes=len(plan.targets))


async def probe_all(plan: SweepPlan, ids: dict[tuple[str, str], str]) -> None:
    out = sys.stdout

    def emit(index: int, result: ProbeResult) -> None:
        target = plan.targets[index]
        line = {"id": ids[(target.node_id, target.service.name)], "state": verdict(result)}
        out.write(json.dumps(line) + "\n")
        out.flush()

    async with make_http_client() as client:
        await run_probes(plan.targets, client, on_result=emit)


if __name__ == "__main__":
    main(sys.argv[1])
