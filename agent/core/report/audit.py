"""`tailnet-agent audit`'s output: the exposure audit as a JSON-ready dict and as text.

Pure. JSON keys: `exit_code`, `node`, `tailscale_ips`, `problem`, `partial`, `exposed`
(how many services listen beyond Tailscale) and `services[]` with `name`, `port`,
`access` (tailscale | localhost+tailscale | null: undeclared), `addresses` (every address
listening on its port), `offending`, `verdict` (ok | exposed | loopback | not_listening),
`why`, `fix` and `colours` (amber in `check` and the menu).
"""

from __future__ import annotations

from typing import Any

from agent.core import cells
from agent.core.exposure import ExposureAudit, ServiceExposure, Verdict, exposed_line
from agent.core.model import Health
from agent.core.plan import format_address
from agent.core.report.colour import paint

__all__ = ["audit_to_dict", "render_audit"]

_MARK = {Verdict.OK: "✓", Verdict.EXPOSED: "✗", Verdict.LOOPBACK: "!", Verdict.NOT_LISTENING: "-"}
_COLOUR = {
    Verdict.OK: Health.GREEN,
    Verdict.EXPOSED: Health.RED,
    Verdict.LOOPBACK: Health.AMBER,
    Verdict.NOT_LISTENING: Health.GREY,
}


def _service_dict(s: ServiceExposure) -> dict[str, Any]:
    return {
        "name": s.service.name,
        "port": s.service.port,
        "access": None if s.access is None else s.access.value,
        "addresses": list(s.addresses),
        "offending": list(s.offending),
        "verdict": s.verdict.value,
        "why": s.why,
        "fix": s.fix,
        "colours": s.colours,
    }


def audit_to_dict(audit: ExposureAudit) -> dict[str, Any]:
    return {
        "exit_code": audit.exit_code,
        "node": audit.node_id,
        "tailscale_ips": list(audit.tailscale_ips),
        "problem": audit.problem or None,
        "partial": audit.partial or None,
        "exposed": sum(1 for s in audit.services if s.verdict is Verdict.EXPOSED),
        "services": [_service_dict(s) for s in audit.services],
    }


def render_audit(audit: ExposureAudit, *, color: bool = False) -> str:
    """Each service of this node, where it listens, the verdict and the fix."""
    if audit.problem:
        node = f" (node {audit.node_id})" if audit.node_id else ""
        return f"Exposure audit{node}: not possible — {audit.problem}\n"
    exposed = sum(1 for s in audit.services if s.verdict is Verdict.EXPOSED)
    ips = ", ".join(audit.tailscale_ips)
    head = exposed_line(exposed) if exposed else "nothing exposed beyond Tailscale"
    lines = [f"Exposure audit of {audit.node_id} (Tailscale IPs {ips}): {head}"]
    if audit.partial:
        lines.append(f"  note: {audit.partial}")
    if not audit.services:
        lines.append("  this node has no services in the topology")
    width = max((cells.width(s.service.name) for s in audit.services), default=0)
    for s in audit.services:
        mark = paint(_MARK[s.verdict], _COLOUR[s.verdict], color)
        listening = ", ".join(format_address(a, s.service.port) for a in s.addresses) or "-"
        access = s.access.value if s.access is not None else "undeclared"
        lines.append(
            f"  {mark} {cells.ljust(s.service.name, width)}  {s.service.port:>5}  "
            f"{s.verdict.value:<13} {listening}  (access {access})"
        )
        if s.verdict in (Verdict.EXPOSED, Verdict.LOOPBACK):
            lines.append(f"      {s.why}")
            lines.append(f"      fix: {s.fix}")
            if s.verdict is Verdict.EXPOSED and not s.colours:
                lines.append(
                    "      (no access declared for it: `check` warns without amber; "
                    'add access = "tailscale")'
                )
    return "\n".join(lines) + "\n"
