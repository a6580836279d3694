"""Confirmed state changes as values, with the words a person reads in a notification.

Pure. An Event is one confirmed change of one subject (a service, a peer, the link to a
peer, Tailscale on this machine, the topology file). The monitor's state machine
(core.confirm) decides *when* a change is real; this module only says *what* it is and
how to put it: a title, a message with the runbook's hint, whether it is critical and
whether it is announced at all. Texts never carry URLs with credentials or query
strings (see `scrub`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from agent.core.evidence import Evidence
from agent.core.figures import format_duration
from agent.core.hints import (
    RELAYED,
    peer_offline_hint,
    reason_hint,
    reason_text,
    tailscale_detail,
    tailscale_title,
    with_hint,
)
from agent.core.model import (
    Finding,
    FindingKind,
    Impact,
    Node,
    ProbeResult,
    Reason,
    Service,
    TailnetView,
    TailscaleProblem,
)
from agent.core.redact import scrub

__all__ = [
    "RECORD_FIELD_NAMES",
    "Event",
    "EventFields",
    "EventKind",
    "EventRecord",
    "Subject",
    "agent_started_event",
    "agent_stopped_event",
    "describe_failure",
    "finding_event",
    "finding_fixed_event",
    "link_direct_event",
    "link_relayed_event",
    "peer_offline_event",
    "peer_online_event",
    "reason_hint",
    "retired_event",
    "scrub",
    "service_down_event",
    "service_up_event",
    "tailscale_running_event",
    "tailscale_stopped_event",
    "topology_error_event",
    "topology_fixed_event",
]


class EventKind(StrEnum):
    SERVICE_DOWN = "service_down"
    SERVICE_UP = "service_up"
    PEER_OFFLINE = "peer_offline"
    PEER_ONLINE = "peer_online"
    LINK_RELAYED = "link_relayed"
    LINK_DIRECT = "link_direct"
    TAILSCALE_STOPPED = "tailscale_stopped"
    TAILSCALE_RUNNING = "tailscale_running"
    TOPOLOGY_ERROR = "topology_error"
    TOPOLOGY_FIXED = "topology_fixed"
    SNOOZE_STARTED = "snooze_started"  # alerts for a node or service snoozed (core.snooze)
    SNOOZE_ENDED = "snooze_ended"  # announced only when something is still wrong
    KEY_EXPIRING = "key_expiring"  # a node key expires within a week, then within a day
    # diagnoses (core.findings): a finding confirmed, and gone again
    EXPOSURE_FOUND = "exposure_found"
    EXPOSURE_FIXED = "exposure_fixed"
    DRIFT_FOUND = "drift_found"
    DRIFT_FIXED = "drift_fixed"
    # the history's own records: never notified
    SERVICE_RETIRED = "service_retired"  # left the topology (its last state is closed)
    PEER_RETIRED = "peer_retired"
    LINK_RETIRED = "link_retired"
    AGENT_STARTED = "agent_started"
    AGENT_STOPPED = "agent_stopped"

    @property
    def family(self) -> str:
        """What kind of subject changed: service | peer | link | tailscale | topology | agent
        | snooze."""
        return self.value.split("_", 1)[0]

    @property
    def bad(self) -> bool:
        """True for a change for the worse (down, offline, relayed, stopped, error)."""
        return self in _BAD_KINDS


_BAD_KINDS = frozenset(
    {
        EventKind.SERVICE_DOWN,
        EventKind.PEER_OFFLINE,
        EventKind.LINK_RELAYED,
        EventKind.TAILSCALE_STOPPED,
        EventKind.TOPOLOGY_ERROR,
        EventKind.KEY_EXPIRING,
        EventKind.EXPOSURE_FOUND,
        EventKind.DRIFT_FOUND,
    }
)

Subject = tuple[str, str, str]  # (family, node id or "", service name or "")


KindT = TypeVar("KindT", bound=str)
ReasonT = TypeVar("ReasonT", bound=str)


@dataclass(frozen=True, slots=True)
class EventFields(Generic[KindT, ReasonT]):
    """The one field list of an event, shared by `Event` and the stored `EventRecord`.

    The kind and reason types are left open: an Event has this agent's kinds and reasons;
    a record read back from the history keeps the text, which a newer agent may have
    written. The fields without a default are the history's columns; the others are
    stored only when set (agent.edges.history), so a new field with a default needs no
    other edit.

    critical: a critical service down, an always-on peer offline, Tailscale stopped here
    (or a peer back online while a critical service of it is still down).
    announce: False for changes that are recorded but never notified: an info service,
    a peer that is not always on, a service down that the peer's offline event covers
    (`folded`), or the recovery of a change that was never announced.
    """

    kind: KindT
    at: float  # wall-clock seconds
    node_id: str | None
    service: str | None
    title: str
    message: str
    critical: bool
    announce: bool
    node_name: str = ""
    reason: ReasonT | None = None
    relay: str = ""  # DERP region code for link_relayed
    duration_s: float | None = None  # recoveries: how long the bad state lasted
    still_down: tuple[str, ...] = ()  # peer_online: services that still do not answer
    folded: bool = False  # service_down covered by the node's peer_offline event
    evidence: Evidence | None = None  # what the confirming sweep met (core.evidence)


@dataclass(frozen=True, slots=True)
class Event(EventFields[EventKind, Reason]):
    """One confirmed change, ready to show (its fields: `EventFields`)."""

    @property
    def subject(self) -> Subject:
        """Who changed: the key for rate limits and for pairing a recovery with its down."""
        return (self.kind.family, self.node_id or "", self.service or "")

    @property
    def bad(self) -> bool:
        return self.kind.bad


# A record's name for a field where it differs from the Event's: the history's column and
# the `history --json` key, both contracts.
RECORD_FIELD_NAMES = {"announce": "announced"}


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord(EventFields[str, str]):
    """One event read back from the history: its row id, the kind and reason as text."""

    id: int

    @property
    def bad(self) -> bool:
        """A change for the worse (down, offline, relayed, stopped, topology error)."""
        try:
            return EventKind(self.kind).bad
        except ValueError:
            return False


# ==== words ====================================================================


def describe_failure(service: str, hostname: str, result: ProbeResult) -> str:
    """ "FastAPI on woosuns-mac-mini refused the connection (service not running?)"."""
    reason = result.reason
    detail = scrub(result.detail)
    if reason is None:
        what, hint = "is down", ""
    else:
        what, hint = reason_text(reason), reason_hint(reason, hostname)
    if reason is Reason.HTTP_STATUS and detail.upper().startswith("HTTP"):
        what = f"answered {detail.split(';')[0].split('(')[0].strip()}"
    elif reason in (None, Reason.ERROR) and detail:
        what = f"{what}: {detail}"
    return with_hint(f"{service} on {hostname} {what}", hint)


# ==== builders =================================================================


def service_down_event(
    node: Node, service: Service, result: ProbeResult, at: float, *, folded: bool = False
) -> Event:
    """A service confirmed down. Info services and folded downs are recorded, not announced."""
    return Event(
        kind=EventKind.SERVICE_DOWN,
        at=at,
        node_id=node.id,
        service=service.name,
        title=f"{node.name}: {service.name} down",
        message=describe_failure(service.name, node.hostname, result)
        + (" — the node is offline" if folded else ""),
        critical=service.impact is Impact.CRITICAL,
        announce=service.impact is not Impact.INFO and not folded,
        node_name=node.name,
        reason=result.reason,
        folded=folded,
    )


def service_up_event(
    node: Node, service: Service, at: float, *, down_for_s: float | None, announce: bool
) -> Event:
    """A service confirmed up again after a confirmed down; announced when the down was."""
    after = f" (up after {format_duration(down_for_s)})" if down_for_s is not None else ""
    return Event(
        kind=EventKind.SERVICE_UP,
        at=at,
        node_id=node.id,
        service=service.name,
        title=f"{node.name}: {service.name} up",
        message=f"{service.name} is back{after}",
        critical=False,
        announce=announce,
        node_name=node.name,
        duration_s=down_for_s,
    )


def peer_offline_event(node: Node, at: float) -> Event:
    """A peer confirmed offline: an alarm for an always-on node, a quiet record otherwise."""
    if node.always_on:
        message = (
            f"Tailscale reports {node.hostname} offline and none of its services answer "
            f"({peer_offline_hint('it')})"
        )
    else:
        message = f"{node.hostname} is offline (it is not an always-on node)"
    return Event(
        kind=EventKind.PEER_OFFLINE,
        at=at,
        node_id=node.id,
        service=None,
        title=f"{node.name} offline",
        message=message,
        critical=node.always_on,
        announce=node.always_on,
        node_name=node.name,
        reason=Reason.PEER_OFFLINE,
    )


def peer_online_event(
    node: Node,
    at: float,
    *,
    offline_for_s: float | None,
    announce: bool,
    still_down: tuple[Service, ...] = (),
) -> Event:
    """A peer confirmed back online; names the services that still do not answer.

    Those services' downs were folded into the offline event, so this is where the user
    first hears of them: the event is announced when any is listed, and critical when a
    critical one is.
    """
    after = f" (after {format_duration(offline_for_s)} offline)" if offline_for_s else ""
    message = f"{node.hostname} is back online{after}"
    title = f"{node.name} online"
    if still_down:
        names = ", ".join(s.name for s in still_down)
        title = f"{node.name} online — {names} still down"
        message += f"; still not answering: {names}"
    return Event(
        kind=EventKind.PEER_ONLINE,
        at=at,
        node_id=node.id,
        service=None,
        title=title,
        message=message,
        critical=any(s.impact is Impact.CRITICAL for s in still_down),
        announce=announce or bool(still_down),
        node_name=node.name,
        duration_s=offline_for_s,
        still_down=tuple(s.name for s in still_down),
    )


def link_relayed_event(node: Node, relay: str, at: float, *, was_direct: bool) -> Event:
    """The link to a peer confirmed relayed through a DERP server (slower)."""
    via = f"via DERP '{relay}'" if relay else "via a DERP relay"
    lead = "the direct path was lost" if was_direct else "there is no direct path"
    return Event(
        kind=EventKind.LINK_RELAYED,
        at=at,
        node_id=node.id,
        service=None,
        title=f"{node.name}: relayed {via}",
        message=f"{lead}; traffic goes through a relay, which is slower ({RELAYED})",
        critical=False,
        announce=True,
        node_name=node.name,
        relay=relay,
    )


def link_direct_event(
    node: Node, at: float, *, relayed_for_s: float | None, peer_relay: bool, announce: bool
) -> Event:
    """The link to a peer confirmed off the DERP relay: direct, or through a peer relay."""
    after = f" (after {format_duration(relayed_for_s)} relayed)" if relayed_for_s else ""
    if peer_relay:
        title = f"{node.name}: off the DERP relay"
        message = f"the link now goes through a peer relay, usually fast{after}"
    else:
        title = f"{node.name}: direct again"
        message = f"the link is direct again{after}"
    return Event(
        kind=EventKind.LINK_DIRECT,
        at=at,
        node_id=node.id,
        service=None,
        title=title,
        message=message,
        critical=False,
        announce=announce,
        node_name=node.name,
        duration_s=relayed_for_s,
    )


def tailscale_stopped_event(tailnet: TailnetView, at: float) -> Event:
    """Tailscale confirmed unusable on this machine: critical; peers are not checked.

    The reader's detail already ends with the one hint for its problem (from the table in
    agent.core.hints): none is added here."""
    problem = tailnet.problem or TailscaleProblem.NOT_RUNNING
    title = tailscale_title(problem)
    detail = _under_title(title, tailnet.detail or tailscale_detail(problem))
    return Event(
        kind=EventKind.TAILSCALE_STOPPED,
        at=at,
        node_id=None,
        service=None,
        title=title,
        message=f"{scrub(detail).rstrip('.')}. Peers cannot be checked until then",
        critical=True,
        announce=True,
    )


def _under_title(title: str, sentence: str) -> str:
    """`sentence` as the body shown under `title`, which it may begin with (the reader's
    "Tailscale is not installed here: PATH does not exist (…)" stands alone in the state
    line): the title is not said twice, and a hint left alone loses its brackets."""
    if not sentence.startswith(title):
        return sentence
    rest = sentence[len(title) :].lstrip(":;,. ")
    if rest.startswith("(") and rest.endswith(")") and rest.count("(") == 1:
        rest = rest[1:-1]
    return rest[:1].upper() + rest[1:]


# What ended, by the problem that was confirmed: (title, message lead, "it was ... for").
_TS_RECOVERED: dict[TailscaleProblem, tuple[str, str, str]] = {
    TailscaleProblem.NOT_RUNNING: (
        "Tailscale is running here again",
        "Tailscale is running again",
        "up after {}",
    ),
    TailscaleProblem.NOT_INSTALLED: (
        "Tailscale is installed here now",
        "Tailscale is installed now",
        "it was missing for {}",
    ),
    TailscaleProblem.CLI_FAILED: (
        "Tailscale can be reached here again",
        "Tailscale answers again",
        "it could not be reached for {}",
    ),
    TailscaleProblem.TIMED_OUT: (
        "Tailscale answers here again",
        "Tailscale answers again",
        "it did not answer for {}",
    ),
    TailscaleProblem.BAD_OUTPUT: (
        "Tailscale can be read here again",
        "Tailscale's status reads normally again",
        "for {} it printed something unreadable",
    ),
}


def tailscale_running_event(
    at: float,
    *,
    stopped_for_s: float | None,
    announce: bool,
    problem: TailscaleProblem | None = None,
) -> Event:
    """Tailscale usable here again; `problem` is what was wrong (None: not running)."""
    title, lead, lasted = _TS_RECOVERED[problem or TailscaleProblem.NOT_RUNNING]
    after = f" ({lasted.format(format_duration(stopped_for_s))})" if stopped_for_s else ""
    return Event(
        kind=EventKind.TAILSCALE_RUNNING,
        at=at,
        node_id=None,
        service=None,
        title=title,
        message=f"{lead}{after}; peers are rechecked after a short settling time",
        critical=False,
        announce=announce,
        duration_s=stopped_for_s,
    )


def topology_error_event(error: str, at: float) -> Event:
    return Event(
        kind=EventKind.TOPOLOGY_ERROR,
        at=at,
        node_id=None,
        service=None,
        title="Topology file refused",
        message=f"{scrub(error, 400)} — the last good topology stays in use",
        critical=False,
        announce=True,
    )


def topology_fixed_event(source: str, nodes: int, at: float) -> Event:
    return Event(
        kind=EventKind.TOPOLOGY_FIXED,
        at=at,
        node_id=None,
        service=None,
        title="Topology file accepted",
        message=f"{scrub(source)} is valid again; watching {nodes} nodes",
        critical=False,
        announce=True,
    )


# ==== diagnoses ================================================================

_FOUND = {FindingKind.EXPOSURE: EventKind.EXPOSURE_FOUND, FindingKind.DRIFT: EventKind.DRIFT_FOUND}
_FIXED = {FindingKind.EXPOSURE: EventKind.EXPOSURE_FIXED, FindingKind.DRIFT: EventKind.DRIFT_FIXED}
_FINDING_TITLES = {
    FindingKind.EXPOSURE: "exposed beyond Tailscale",
    FindingKind.DRIFT: "topology drift",
}


def finding_event(finding: Finding, node: Node | None, at: float) -> Event:
    """A finding confirmed: announced when it colours (a warning without colour is recorded).
    Its subject is the finding's key, so the same finding is never told twice."""
    where = node.name if node is not None else "Tailnet"
    return Event(
        kind=_FOUND[finding.kind],
        at=at,
        node_id=finding.node_id,
        service=finding.key,
        title=f"{where}: {_FINDING_TITLES[finding.kind]}",
        message=scrub(f"{finding.text} — {finding.fix}", 400),
        critical=False,
        announce=finding.colours,
        node_name=node.name if node is not None else "",
    )


def finding_fixed_event(
    kind: FindingKind, node: Node | None, node_id: str | None, key: str, at: float, *,
    text: str, announce: bool,
) -> Event:  # fmt: skip
    """A confirmed finding is gone (fixed, or the topology was edited to match)."""
    where = node.name if node is not None else "Tailnet"
    return Event(
        kind=_FIXED[kind],
        at=at,
        node_id=node_id,
        service=key,
        title=f"{where}: {_FINDING_TITLES[kind]} resolved",
        message=scrub(f"no longer: {text}" if text else "no longer found", 400),
        critical=False,
        announce=announce,
        node_name=node.name if node is not None else "",
    )


# ==== the history's own records ================================================

_RETIRED_WHAT = {
    EventKind.SERVICE_RETIRED: "removed from the topology",
    EventKind.PEER_RETIRED: "removed from the topology while offline",
    EventKind.LINK_RETIRED: "removed from the topology while relayed",
}


def retired_event(kind: EventKind, node_id: str, service: str | None, at: float) -> Event:
    """A subject whose last state was bad left the topology: its record is closed."""
    what = _RETIRED_WHAT[kind]
    name = f"{node_id}: {service}" if service else node_id
    return Event(
        kind=kind,
        at=at,
        node_id=node_id,
        service=service,
        title=f"{name} {what}",
        message=f"{service or node_id} is no longer watched; its last state was bad",
        critical=False,
        announce=False,
    )


def agent_started_event(
    at: float, *, version: str, carried: int, unclean: bool, source: str = ""
) -> Event:
    """The monitor started; `carried` known problems were taken over from the history."""
    watching = f"; watching {scrub(source)}" if source else ""
    if carried:
        known = f"; {carried} known problem{'s' if carried != 1 else ''} carried over"
    else:
        known = "; no known problem carried over"
    message = f"tailnet-agent {version} started{watching}{known}"
    if unclean:
        message += " (the previous run ended without a stop record: a crash or power loss?)"
    return Event(
        kind=EventKind.AGENT_STARTED,
        at=at,
        node_id=None,
        service=None,
        title="tailnet-agent started",
        message=message,
        critical=False,
        announce=False,
    )


def agent_stopped_event(at: float) -> Event:
    return Event(
        kind=EventKind.AGENT_STOPPED,
        at=at,
        node_id=None,
        service=None,
        title="tailnet-agent stopped",
        message="monitoring stopped; what happens until the next start is not recorded",
        critical=False,
        announce=False,
    )
