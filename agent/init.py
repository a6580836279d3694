"""`tailnet-agent init`: write a starter topology.toml from this machine's tailnet.

Wiring: reads `tailscale status --json` (edges.tailscale), turns it into TOML
(core.starter), with `--discover` probes the well-known ports of every online node with
the real probes (edges.probes) and names what answered, then writes the file — never over
an existing one without `force`. Discovery connects to the peers: it only runs when
asked for, and only to the Tailscale IPs the status lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from agent.core.model import CheckKind, ProbeState, ProbeTarget, Reason, Service, TailnetView
from agent.core.starter import (
    WELL_KNOWN_PORTS,
    Found,
    KnownPort,
    StarterNode,
    known_port,
    starter_nodes,
    starter_topology,
)
from agent.core.topology import parse_topology
from agent.edges import event_loop, paths
from agent.edges.probes import make_http_client, run_probes
from agent.edges.tailscale import read_status
from agent.errors import AgentError

__all__ = ["DISCOVERY_TIMEOUT_S", "InitResult", "discover", "init_topology", "write_new"]

DISCOVERY_TIMEOUT_S = 2.0
TAILSCALE_TIMEOUT_S = 10.0

# After the port's usual kind, the others in the order that fails fast on the wrong server:
# an HTTP request or a Redis PING is answered or dropped at once by the others, while a
# PostgreSQL startup packet makes an HTTP server wait for the end of its request line.
_TRY_ORDER = (CheckKind.HTTP, CheckKind.REDIS, CheckKind.POSTGRES)
_SPEAKS_HTTP = (Reason.HTTP_STATUS, Reason.BODY_MISMATCH)


@dataclass(frozen=True, slots=True)
class InitResult:
    """What init wrote: the file, its nodes, and what discovery found and left out."""

    path: Path
    nodes: tuple[StarterNode, ...]
    skipped: tuple[str, ...]
    found: dict[str, list[Found]] | None
    not_probed: tuple[str, ...]


def init_topology(
    path: Path,
    *,
    tailscale_cli: str | None,
    discover_ports: Sequence[int] | None,
    force: bool,
) -> InitResult:
    """Write the starter topology to `path`; `discover_ports` None: no discovery.

    AgentError (exit 3) when Tailscale cannot be read, lists no machine with an address,
    or `path` exists and `force` is false (checked first, so nothing is probed in vain)."""
    if path.exists() and not force:
        raise AgentError(
            f"{path} already exists; not overwritten (use --force to replace it, or give "
            "another PATH)"
        )
    view = event_loop.run(read_status(tailscale_cli, TAILSCALE_TIMEOUT_S), probes=0)
    if view.problem is not None and view.backend_state is None:
        raise AgentError(f"cannot read this machine's tailnet: {view.detail}")
    nodes, skipped = starter_nodes(view)
    if not nodes:
        why = view.detail or "no machine in `tailscale status` has a Tailscale IP"
        raise AgentError(f"nothing to write: {why}")
    found: dict[str, list[Found]] | None = None
    not_probed: tuple[str, ...] = ()
    if discover_ports is not None:
        probes = len(nodes) * len(discover_ports)  # the same loop policy as a sweep's
        found, not_probed = event_loop.run(discover(view, nodes, discover_ports), probes=probes)
    text = starter_topology(view, found, notes=not_probed)
    parse_topology(text, str(path))  # a starter that does not validate is a bug: fail loudly
    write_new(path, text, force=force)
    return InitResult(path, nodes, skipped, found, not_probed)


async def discover(
    view: TailnetView, nodes: Sequence[StarterNode], extra_ports: Sequence[int]
) -> tuple[dict[str, list[Found]], tuple[str, ...]]:
    """Probe the well-known ports and `extra_ports` on every online node; what answered, by
    node id, and one line per node not probed (and why)."""
    ports = [
        known_port(p) for p in dict.fromkeys([*(k.port for k in WELL_KNOWN_PORTS), *extra_ports])
    ]
    if not view.running:
        return {}, (f"Not probed: Tailscale is not running here ({view.detail})",)
    probed = [n for n in nodes if n.is_self or n.online]
    not_probed = tuple(
        f"Not probed: {n.id} (offline in Tailscale)" for n in nodes if n not in probed
    )
    opening = [
        ProbeTarget(
            node.id, Service(known.name, known.port, CheckKind.TCP), node.ip, DISCOVERY_TIMEOUT_S
        )
        for node in probed
        for known in ports
    ]
    async with make_http_client() as client:
        connected = await run_probes(opening, client)
        open_ports = [
            (target, known_port(target.service.port))
            for target, result in zip(opening, connected, strict=True)
            if result.state is ProbeState.UP
        ]
        identified = await asyncio.gather(
            *(_identify(target, known, client) for target, known in open_ports)
        )
    found: dict[str, list[Found]] = {n.id: [] for n in probed}
    for (target, _), item in zip(open_ports, identified, strict=True):
        found[target.node_id].append(item)
    return found, not_probed


async def _identify(target: ProbeTarget, known: KnownPort, client: httpx.AsyncClient) -> Found:
    """What answers on an open port: the first of http, redis, postgres whose real probe
    says up (the port's usual kind first), else tcp."""
    order = (known.check, *(k for k in _TRY_ORDER if k is not known.check))
    http_answer = ""
    for kind in order:
        name = known.name if kind is known.check else f"Port {known.port}"
        paths = known.paths if kind is CheckKind.HTTP else ("/",)
        for path in paths:
            service = Service(name, known.port, kind, path=path)
            (result,) = await run_probes([_with(target, service)], client)
            if result.state is ProbeState.UP:
                what = f"GET {path}" if kind is CheckKind.HTTP else kind.value
                return Found(service, f"found by --discover: {what} answered")
            if kind is CheckKind.HTTP and result.reason in _SPEAKS_HTTP:
                http_answer = http_answer or f"{result.detail} at {path}"
            elif kind is CheckKind.HTTP:
                break  # not HTTP at all: no other path will be
    note = "found by --discover: it accepts connections"
    if http_answer:
        note += f"; HTTP, but {http_answer}: set an http check with a path that answers"
    return Found(Service(f"Port {known.port}", known.port, CheckKind.TCP), note)


def _with(target: ProbeTarget, service: Service) -> ProbeTarget:
    return ProbeTarget(target.node_id, service, target.host, target.timeout_s)


def write_new(path: Path, text: str, *, force: bool) -> None:
    """Write `text` to `path` (its folder created). Without `force` an existing file is
    refused (AgentError), even one that appeared a moment ago; with it the file is replaced
    at once, never left half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not force:
        try:
            with path.open("x", encoding="utf-8", newline="\n") as out:
                out.write(text)
        except FileExistsError:
            raise AgentError(f"{path} already exists; not overwritten (use --force)") from None
        return
    paths.write_atomically(path, text)
