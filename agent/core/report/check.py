"""`check`'s output: a Snapshot as a JSON-ready dict and as a text table.

Pure. The JSON keys are a contract (DESIGN.md): `overall`; `nodes[]` with `id`,
`health`, `online`, `link`, `relay`, `latency_ms`, `services[]` with `name`,
`port`, `state`, `reason`, `latency_ms`. More keys may be added, none removed.
`findings[]`: topology drift and services exposed beyond Tailscale, each with its fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from agent.core import cells
from agent.core.details import detail_line, details_dict
from agent.core.figures import format_latency
from agent.core.health import finding_line
from agent.core.hints import explain
from agent.core.keys import key_warning
from agent.core.model import (
    Finding,
    Health,
    Link,
    NodeStatus,
    PathReading,
    ProbeState,
    Reason,
    ServiceStatus,
    Snapshot,
)
from agent.core.path import describe_path
from agent.core.report.colour import paint
from agent.core.snooze import Snooze, SnoozeKey, covering

__all__ = ["render_table", "snapshot_to_dict"]

SCHEMA_VERSION = 1


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _snooze_dict(entry: Snooze | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"kind": entry.kind.value, "since": entry.since, "until": entry.until}


def _service_dict(s: ServiceStatus, entry: Snooze | None = None) -> dict[str, Any]:
    return {
        "name": s.service.name,
        "port": s.service.port,
        "check": s.service.check.value,
        "impact": s.service.impact.value,
        "address": s.address,
        "state": s.result.state.value,
        "reason": None if s.result.reason is None else s.result.reason.value,
        "detail": s.result.detail,
        "latency_ms": _ms(s.result.latency_ms),
        "health": s.health.value,
        "details": details_dict(s.result),
        "snoozed": _snooze_dict(entry),
    }


def _path_dict(path: PathReading | None) -> dict[str, Any] | None:
    if path is None:
        return None
    return {
        "link": path.link.value,
        "via": path.via or None,
        "latency_ms": _ms(path.latency_ms),
        "error": path.error or None,
        "text": describe_path(path),
    }


def _key_dict(n: NodeStatus, now: float) -> dict[str, Any] | None:
    if n.key_expires_at is None:
        return None
    return {
        "expires_at": n.key_expires_at,
        "seconds_left": round(n.key_expires_at - now),
        "warning": key_warning(n, now),
    }


def _node_dict(n: NodeStatus, now: float, snoozes: Mapping[SnoozeKey, Snooze]) -> dict[str, Any]:
    return {
        "id": n.node.id,
        "name": n.node.name,
        "hostname": n.node.hostname,
        "ip": n.node.ip,
        "is_self": n.is_self,
        "always_on": n.node.always_on,
        "health": n.health.value,
        "online": n.online,
        "link": n.link.value,
        "relay": n.relay or None,
        "latency_ms": _ms(n.latency_ms),
        "reasons": list(n.reasons),
        "path": _path_dict(n.path),
        "key_expiry": _key_dict(n, now),
        "snoozed": _snooze_dict(snoozes.get((n.node.id, ""))),
        "services": [
            _service_dict(s, covering(snoozes, n.node.id, s.service.name)) for s in n.services
        ],
    }


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "kind": f.kind.value,
        "key": f.key,
        "node": f.node_id,
        "subject": f.subject,
        "health": (Health.AMBER if f.colours else Health.GREEN).value,
        "text": f.text,
        "fix": f.fix,
    }


def snapshot_to_dict(
    snapshot: Snapshot, *, snoozes: Mapping[SnoozeKey, Snooze] | None = None
) -> dict[str, Any]:
    """`snoozes`: the monitor's snoozed subjects (core.snooze), `snoozed` in the JSON."""
    tailnet = snapshot.tailnet
    return {
        "schema": SCHEMA_VERSION,
        "overall": snapshot.overall.value,
        "exit_code": snapshot.overall.exit_code,
        "summary": snapshot.summary,
        "checked_at": snapshot.at,
        "topology": {"name": snapshot.topology.name, "source": snapshot.topology.source},
        "self_node": snapshot.self_node_id,
        "tailscale": {
            "running": tailnet.running,
            "backend_state": None if tailnet.backend_state is None else tailnet.backend_state.value,
            "problem": None if tailnet.problem is None else tailnet.problem.value,
            "detail": tailnet.detail,
            "version": tailnet.version,
            "health_warnings": list(tailnet.health_warnings),
        },
        "nodes": [_node_dict(n, snapshot.at, snoozes or {}) for n in snapshot.nodes],
        "findings": [_finding_dict(f) for f in snapshot.findings],
        "assessed": sorted(kind.value for kind in snapshot.assessed),
    }


# ==== text table ================================================================

_STATE_MARK = {
    ProbeState.UP: "✓",
    ProbeState.DOWN: "✗",
    ProbeState.UNKNOWN: "?",
    ProbeState.SKIPPED: "-",
}


def _link_text(n: NodeStatus) -> str:
    if n.path is not None and n.path.latency_ms is not None:
        return describe_path(n.path)
    if n.link is Link.RELAY:
        return f"relay via DERP '{n.relay}'"
    return n.link.value


def _latency_text(ms: float | None) -> str:
    return "" if ms is None else format_latency(ms)


def _snoozed_text(entry: Snooze | None) -> str:
    if entry is None:
        return ""
    if entry.until is None:
        return "  (snoozed until it is back)"
    return f"  (snoozed until {datetime.fromtimestamp(entry.until).strftime('%Y-%m-%d %H:%M')})"


def render_table(
    snapshot: Snapshot,
    *,
    color: bool = False,
    snoozes: Mapping[SnoozeKey, Snooze] | None = None,
) -> str:
    """A readable table grouped by node, ending with the overall verdict; snoozed nodes and
    services say so (their colour does not count: core.health.with_snoozes)."""
    snoozes = snoozes or {}
    lines: list[str] = []
    head = f"{snapshot.topology.name}: {snapshot.overall.value.upper()}"
    lines.append(paint(head, snapshot.overall, color) + f" — {snapshot.summary}")
    if snapshot.self_node_id is not None:
        me = snapshot.self_node_id
    elif snapshot.tailnet.running:
        me = "unknown: no node has its Tailscale IP or hostname (use --node ID)"
    else:
        me = "unknown until Tailscale works here (it tells which node this is)"
    lines.append(f"topology: {snapshot.topology.source}; this machine: {me}")
    detail = snapshot.tailnet.detail
    if not snapshot.tailnet.running and detail and detail != snapshot.summary:
        lines.append(paint(f"Tailscale: {snapshot.tailnet.detail}", Health.RED, color))
    for warning in snapshot.tailnet.health_warnings:  # Tailscale's own, about this machine
        lines.append(paint(f"Tailscale warns: {warning}", Health.AMBER, color))
    name_width = max(
        (cells.width(s.service.name) for n in snapshot.nodes for s in n.services), default=8
    )
    for n in snapshot.nodes:
        lines.append("")
        link = _link_text(n)
        latency = "" if link.endswith(" ms") else _latency_text(n.latency_ms)
        node_line = f"{n.node.id}  {n.node.name} ({n.node.hostname}, {n.node.ip})  {link}"
        if latency:
            node_line += f"  {latency}"
        node_line += _snoozed_text(snoozes.get((n.node.id, "")))
        lines.append(paint(f"[{n.health.value}]", n.health, color) + f" {node_line}")
        for reason in n.reasons:
            if not any(reason.startswith(f"{s.service.name} down") for s in n.services):
                lines.append(f"    ! {reason}")
        expiring = key_warning(n, snapshot.at)
        if expiring is not None:
            lines.append(f"    ! {expiring}")
        for s in n.services:
            mark = paint(_STATE_MARK[s.result.state], s.health, color)
            state = s.result.state.value
            if state == "up":
                tail = _latency_text(s.result.latency_ms)
            elif s.result.reason in (Reason.TAILSCALE_DOWN, Reason.PEER_OFFLINE):
                tail = s.result.detail  # the headline or the node's line carries the hint
            else:
                tail = explain(s.result, n.node.hostname)
            lines.append(
                f"    {mark} {cells.ljust(s.service.name, name_width)}  {s.service.port:>5}  "
                f"{s.service.check.value:<9} {state:<7} {tail}".rstrip()
                + (_snoozed_text(snoozes.get((n.node.id, s.service.name))))
            )
            details = detail_line(s.service, s.result) if state == "up" else ""
            if details:
                lines.append(f"      {' ' * name_width}  {details}")
    strays = [f for f in snapshot.findings if f.node_id is None]
    if strays:
        lines += ["", "tailnet:"]
        for finding in strays:
            mark = paint("!", Health.AMBER if finding.colours else Health.GREEN, color)
            lines.append(f"    {mark} {finding_line(finding)}")
    return "\n".join(lines) + "\n"
