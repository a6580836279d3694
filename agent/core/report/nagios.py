"""`check --nagios`: a Snapshot as one Nagios/Icinga plugin line and its exit code. Pure.

The plugin convention (Nagios plugin development guidelines; Icinga's performance data
metrics): one line `TAILNET <STATUS> - <text> | <perfdata>`, STATUS one of OK, WARNING,
CRITICAL, UNKNOWN with the exit code 0, 1, 2, 3, and perfdata as space-separated
`label=value[UOM];[warn];[crit];[min];[max]`. Labels here are lowercase letters, digits
and `_` only, so they never need quoting; values use a `.` decimal point (C locale).

Per service: `<label>=1;;;;` up, `0` down, `U` not decided (skipped, unknown), and
`latency_<label>=12.3ms;;;;` (or `U`). The label is the service's name made safe
(`fastapi`), prefixed with its node's id when two selected services would share one
(`macmini_fastapi`). `--target NODE` and `--service NAME` narrow the line to one node's,
or one service's, state so that each becomes its own Nagios service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.core.health import problem_words, short_name, worst
from agent.core.model import (
    Health,
    NodeStatus,
    ProbeState,
    ServiceStatus,
    Snapshot,
    Topology,
)

__all__ = [
    "PLUGIN_NAME",
    "STATUS_WORDS",
    "NagiosResult",
    "nagios_unknown",
    "perf_label",
    "render_nagios",
    "selection_error",
]

PLUGIN_NAME = "TAILNET"
STATUS_WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
TEXT_MAX = 300  # the status text; NRPE carries a few KB in all, perfdata included
_UNSAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class NagiosResult:
    """The line to print (no newline) and the exit code that goes with it."""

    line: str
    exit_code: int


def _clean(text: str) -> str:
    """One line with no `|` (it starts the perfdata), cut to TEXT_MAX."""
    text = " ".join(text.replace("|", "/").split())
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 1] + "…"


def _line(code: int, text: str, perfdata: list[str] | None = None) -> NagiosResult:
    line = f"{PLUGIN_NAME} {STATUS_WORDS[code]} - {_clean(text)}"
    if perfdata:
        line += " | " + " ".join(perfdata)
    return NagiosResult(line, code)


def nagios_unknown(message: str) -> NagiosResult:
    """`TAILNET UNKNOWN - message`, exit 3: nothing could be judged (a topology refused, a
    node or service that does not exist)."""
    return _line(3, message)


def perf_label(text: str) -> str:
    """ "MinIO Console" -> "minio_console": a label no graphing tool needs quoted."""
    return _UNSAFE.sub("_", text.lower()).strip("_") or "service"


def selection_error(topology: Topology, target: str | None, service: str | None) -> str | None:
    """Why `--target` / `--service` select nothing in `topology` (None: they select)."""
    nodes = topology.nodes
    if target is not None:
        node = topology.node(target)
        if node is None:
            known = ", ".join(n.id for n in nodes) or "none"
            return f"--target {target}: no such node in {topology.source} (known: {known})"
        nodes = (node,)
    if service is not None and not any(s.name == service for n in nodes for s in n.services):
        known = ", ".join(sorted({s.name for n in nodes for s in n.services})) or "none"
        where = f"node {target}" if target is not None else topology.source
        return f"--service {service}: no such service on {where} (known: {known})"
    return None


def _status_code(healths: list[Health], decided: bool) -> int:
    """UNKNOWN when nothing could be learnt; grey otherwise counts as OK (an info service, a
    laptop that is away: shown, never an alarm)."""
    if not decided:
        return 3
    health = worst(healths)
    return 0 if health is Health.GREY else health.exit_code


def _service_words(status: ServiceStatus) -> str:
    reason = status.result.reason.value if status.result.reason else status.result.state.value
    return f"{status.service.name} down ({reason})"


def _node_problems(
    node: NodeStatus, services: list[ServiceStatus], snapshot: Snapshot
) -> list[str]:
    """ "FastAPI down (refused)", and with the whole node selected its link's words too
    ("offline", "relayed", "slow link", "not in tailnet") while they colour it."""
    words = [_service_words(s) for s in services if s.health in (Health.RED, Health.AMBER)]
    if len(services) == len(node.services) and node.health in (Health.RED, Health.AMBER):
        link = problem_words(
            node,
            latency_warn_ms=snapshot.topology.defaults.latency_warn_ms,
            tailnet_running=snapshot.tailnet.running,
        )
        if link == ["offline"]:
            return link
        words += [w for w in link if not w.endswith(" down")]
    return words


def _perfdata(selected: list[tuple[NodeStatus, ServiceStatus]]) -> list[str]:
    labels = [perf_label(s.service.name) for _, s in selected]
    out: list[str] = []
    for (node, status), label in zip(selected, labels, strict=True):
        if labels.count(label) > 1:
            label = f"{perf_label(node.node.id)}_{label}"
        state = status.result.state
        value = {ProbeState.UP: "1", ProbeState.DOWN: "0"}.get(state, "U")
        latency = status.result.latency_ms
        shown = f"{latency:.1f}ms" if latency is not None and state is ProbeState.UP else "U"
        out += [f"{label}={value};;;;", f"latency_{label}={shown};;;;"]
    return out


def render_nagios(
    snapshot: Snapshot, *, target: str | None = None, service: str | None = None
) -> NagiosResult:
    """The plugin line for the whole network, one node (`target`) or one service."""
    error = selection_error(snapshot.topology, target, service)
    if error is not None:
        return nagios_unknown(error)
    nodes = [n for n in snapshot.nodes if target is None or n.node.id == target]
    selected = [
        (n, s) for n in nodes for s in n.services if service is None or s.service.name == service
    ]
    perfdata = _perfdata(selected)
    if not snapshot.tailnet.running and target is None and service is None:
        return _line(2, snapshot.summary, perfdata)  # red: Tailscale does not work here

    if service is None and target is None:
        healths = [snapshot.overall]
    elif service is None:
        healths = [n.health for n in nodes]
    else:
        healths = [s.health for _, s in selected]
    decided = any(s.result.state in (ProbeState.UP, ProbeState.DOWN) for _, s in selected)
    if service is None:
        decided = decided or any(n.online is not None for n in nodes)
    code = _status_code(healths, decided)
    if code == 3:
        return _line(3, f"not checked: {snapshot.summary}", perfdata)

    problems: list[str] = []
    for node in nodes:
        mine = [s for n, s in selected if n is node]
        words = _node_problems(node, mine, snapshot)
        if words:
            problems.append(f"{short_name(node.node)}: {', '.join(words)}")
    if problems and code in (1, 2):
        return _line(code, "; ".join(problems), perfdata)
    up = sum(1 for _, s in selected if s.result.state is ProbeState.UP)
    where = ""
    if target is not None:
        where = f"{short_name(nodes[0].node)}: "
    if service is not None:
        states = ", ".join(
            f"{s.service.name} on {short_name(n.node)} {s.result.state.value}" for n, s in selected
        )
        return _line(code, states, perfdata)
    count = f"{len(nodes)} node" + ("" if len(nodes) == 1 else "s")
    return _line(code, f"{where}{count}, {up} of {len(selected)} services up", perfdata)
