"""The exposure audit: which services of this node listen beyond Tailscale.

Pure. The network's rule is "services are reachable over Tailscale only". Given the
listening TCP sockets of this machine (read by agent.edges.listeners) and this node's
Tailscale IPs, `audit_exposure` judges each service of this node by the addresses that
listen on its port:

- exposed: one of them is neither loopback nor a Tailscale IP of this node (0.0.0.0, ::
  or a LAN address): the LAN, and with port forwarding the internet, reach it;
- loopback: it also listens on loopback while `access = "tailscale"` allows the Tailscale
  IP only (`localhost+tailscale` allows loopback);
- ok: only allowed addresses; not_listening: nothing listens on its port (its probe says
  whether that is a problem).

An exposed service colours amber only where the topology declares an access for it (its
own `access` or [defaults]'); undeclared, it is a warning without colour. Each verdict
carries the setting that fixes it (core.hints.listen_fix). `exposure_findings` turns the
exposed ones into Findings for `check`, the menu and the monitor.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from agent.core.hints import listen_fix
from agent.core.model import Access, Finding, FindingKind, Service, Topology
from agent.core.plan import format_address
from agent.core.tailnet import preferred_ip
from agent.core.topology import access_of

__all__ = [
    "ExposureAudit",
    "Listener",
    "ListenerScan",
    "ServiceExposure",
    "Verdict",
    "audit_exposure",
    "exposed_line",
    "exposure_findings",
]


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP socket: its local address ("0.0.0.0", "::1", "100.123.51.5")."""

    address: str
    port: int


@dataclass(frozen=True, slots=True)
class ListenerScan:
    """What the listening sockets of this machine are, as far as they could be read."""

    listeners: tuple[Listener, ...] = ()
    problem: str = ""  # why none could be read; "" when they were
    partial: str = ""  # why some may be missing (other users' processes); "" when all


class Verdict(StrEnum):
    OK = "ok"
    EXPOSED = "exposed"
    LOOPBACK = "loopback"
    NOT_LISTENING = "not_listening"


@dataclass(frozen=True, slots=True)
class ServiceExposure:
    service: Service
    access: Access | None  # as declared (its own, else [defaults]'); None: undeclared
    addresses: tuple[str, ...]  # every address listening on its port, sorted
    offending: tuple[str, ...]  # those its access does not allow
    verdict: Verdict
    fix: str  # "" when there is nothing to fix
    colours: bool  # amber in `check` and the menu

    @property
    def why(self) -> str:
        """The verdict in words, naming the addresses that cause it."""
        port = self.service.port
        shown = ", ".join(format_address(a, port) for a in self.offending)
        if self.verdict is Verdict.EXPOSED:
            return f"listens on {shown}: reachable beyond Tailscale"
        if self.verdict is Verdict.LOOPBACK:
            return f'also listens on {shown}, which access = "tailscale" does not allow'
        if self.verdict is Verdict.NOT_LISTENING:
            return "nothing listens on its port here"
        return "listens on Tailscale" + (" and loopback" if self.addresses else "") + " only"


@dataclass(frozen=True, slots=True)
class ExposureAudit:
    node_id: str | None  # None: this machine is no node of the topology
    tailscale_ips: tuple[str, ...]  # the addresses counted as Tailscale's
    services: tuple[ServiceExposure, ...]
    problem: str = ""  # why nothing could be audited
    partial: str = ""  # why some listeners may be missing

    @property
    def flagged(self) -> tuple[ServiceExposure, ...]:
        return tuple(s for s in self.services if s.verdict in (Verdict.EXPOSED, Verdict.LOOPBACK))

    @property
    def exit_code(self) -> int:
        """0 nothing to fix, 1 a service listens where it should not, 3 no audit possible."""
        if self.problem:
            return 3
        return 1 if self.flagged else 0


def audit_exposure(
    topology: Topology,
    self_node_id: str | None,
    tailscale_ips: tuple[str, ...],
    scan: ListenerScan,
) -> ExposureAudit:
    """Judge each service of this machine's node by the sockets listening on its port."""
    node = topology.node(self_node_id) if self_node_id is not None else None
    if node is None:
        return ExposureAudit(
            self_node_id, tailscale_ips, (), problem="this machine is no node of the topology"
        )
    own = tuple(dict.fromkeys((*tailscale_ips, node.ip)))
    if scan.problem:
        return ExposureAudit(node.id, own, (), problem=scan.problem)
    tailscale = {_normal(ip) for ip in own}
    fix_ip = preferred_ip([ip for ip in tailscale_ips if ip]) or node.ip
    judged: list[ServiceExposure] = []
    for service in node.services:
        access = access_of(topology, service)
        addresses = tuple(
            sorted({_normal(ls.address) for ls in scan.listeners if ls.port == service.port})
        )
        beyond = tuple(a for a in addresses if a not in tailscale and not _is_loopback(a))
        looped = tuple(a for a in addresses if a not in tailscale and _is_loopback(a))
        keep_loopback = access is not Access.TAILSCALE
        if beyond:
            verdict, offending = Verdict.EXPOSED, beyond
        elif looped and access is Access.TAILSCALE:
            verdict, offending = Verdict.LOOPBACK, looped
        else:
            verdict = Verdict.OK if addresses else Verdict.NOT_LISTENING
            offending = ()
        fix = ""
        if offending:
            fix = listen_fix(service, fix_ip, keep_loopback=keep_loopback)
            if verdict is Verdict.LOOPBACK:
                fix += ', or declare access = "localhost+tailscale" for it'
        judged.append(
            ServiceExposure(
                service,
                access,
                addresses,
                offending,
                verdict,
                fix,
                colours=verdict is Verdict.EXPOSED and access is not None,
            )
        )
    return ExposureAudit(node.id, own, tuple(judged), partial=scan.partial)


def exposure_findings(audit: ExposureAudit) -> tuple[Finding, ...]:
    """The exposed services as Findings (a loopback listener is no exposure: `audit` says it)."""
    return tuple(
        Finding(
            FindingKind.EXPOSURE,
            f"exposure:{audit.node_id}:{s.service.name}:{','.join(s.offending)}",
            audit.node_id,
            s.service.name,
            f"{s.service.name} {s.why}",
            s.fix,
            colours=s.colours,
        )
        for s in audit.services
        if s.verdict is Verdict.EXPOSED
    )


def exposed_line(count: int) -> str:
    """ "1 service exposed beyond Tailscale", "2 services exposed beyond Tailscale"."""
    return f"{count} service{'' if count == 1 else 's'} exposed beyond Tailscale"


def _normal(address: str) -> str:
    """One spelling per address: "::ffff:127.0.0.1" -> "127.0.0.1", scope ids dropped."""
    text = address.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
