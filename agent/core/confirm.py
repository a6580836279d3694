"""The monitor's memory: judged sweeps in, confirmed state changes (Events) out.

Pure and immutable: `step(state, snapshot, now_wall, now_mono, ...)` returns a new
MonitorState, the Events of this sweep, when to sweep again for a quick confirmation,
and whether a grace period is running. No clock is read here; times are passed in.

Subjects and what a sweep tells about them (a reading is GOOD, BAD or nothing):
- service (node id, service name): UP is good, DOWN is bad; UNKNOWN and SKIPPED say
  nothing (the streak is left as it was).
- peer (node id, never this machine's node): bad (offline) when Tailscale says OFFLINE and
  none of its services is UP (Tailscale's Online flag lags; probes decide); good (online)
  when the link is anything but OFFLINE/UNKNOWN, or any service is UP.
- link (node id, never this machine's node): bad when relayed through DERP (RELAY), good
  when DIRECT or PEER_RELAY. PEER_RELAY counts as good: it is not DERP, it is usually fast,
  and the health rules do not colour it either. IDLE, OFFLINE and UNKNOWN say nothing, so
  an idle peer is never "relayed".
- tailscale here: good when `snapshot.tailnet.running`, else bad.
- topology: the `topology_error` argument; announced at once, without thresholds.

Rules:
1. A confirmed state changes after `failure_threshold` consecutive bad readings or
   `success_threshold` consecutive good ones (the topology's defaults). A contrary reading
   resets the streak, so one lost packet never alarms.
2. A reading that differs from the confirmed state and is not yet confirmed asks for a
   re-sweep after RECHECK_S (about a second): the re-probe is the next reading, so a real
   outage is known within about a second plus one probe timeout.
3. Every subject starts UNKNOWN. Reaching BAD from UNKNOWN is announced (it was already
   down when the agent started); reaching GOOD from UNKNOWN is silent (no event).
   After a restart, `carried_state` starts from the history instead: a subject whose last
   recorded change was for the worse starts confirmed BAD (announced as it was then), so a
   problem already recorded is neither recorded nor announced again, while one that began
   while the agent was stopped still reaches BAD from UNKNOWN and is announced.
4. Grace: a trigger starts a grace period: the streaks of services, peers and links are
   reset and their readings are ignored, so no event at all comes from them and their
   confirmed states stay as they were. Grace ends at the first step at least `grace_s`
   (monotonic) after it began that brings no new trigger; that step's readings count. So a
   real outage across a sleep is announced after grace + thresholds, and a wake-up blip
   never is. The Tailscale and topology subjects do not wait for grace (they read this
   machine only). The triggers, each with its GraceReason (the words the tray shows):
   - WAKE: a gap since the previous step above 2 × interval + CLOCK_SLACK_S + `busy_s` (the
     sweep's own time: a slow `tailscale status` is no sleep) on the monotonic clock or on
     `now_boot` (a clock that counts suspend), or `now_boot` ahead of the monotonic clock by
     more than CLOCK_SLACK_S (a suspend on clocks that stop in it).
   - CLOCK_JUMP: the wall clock moved against `now_boot` (or, without it, went back against
     the monotonic clock) by more than CLOCK_SLACK_S: NTP or a person set it.
   - WAKE_OR_CLOCK: without `now_boot`, the wall clock ran ahead of the monotonic one: a
     suspend (Linux and macOS stop the monotonic clock) or a clock set forward.
   - NETWORK_CHANGE: `network_changed` (this machine's Tailscale IPs changed).
   - TAILSCALE_STARTED: Tailscale runs after a reading where tailscaled did not (stopped,
     not installed, not reachable): paths to peers are being set up again.
   - TAILSCALE_ANSWERS: Tailscale runs after a confirmed spell of a CLI that hung or printed
     garbage. A single such reading starts no grace: nothing restarted.
   While grace runs, `StepResult.settling` also carries the colour and the problems of the
   confirmed states (`confirmed_health`), which the tray keeps instead of going grey.
5. While Tailscale is not running here, peers, links and the services of peers learn
   nothing (their probes are skipped) and their streaks are reset: the only news is
   "Tailscale is not running here" (critical). Services of this machine's own node keep
   being read.
6. Events: a recovery is emitted only after a confirmed bad state, and announced only if
   that bad state was. A peer that is not always-on is recorded, not announced; so are
   info services. Folding: a service confirmed down while its peer is confirmed offline
   (in the same step or before) is recorded with announce=False and folded=True, because
   the peer_offline event covers it. If the peer comes back online while such a service is
   still down, the peer_online event names it ("… online — FastAPI still down"), is
   announced (critical when the service is), and the service's later recovery is announced.
   A topology error is announced when it appears and again when its text changes.
7. Topology reloads: services are keyed by (node id, name) and peers/links by node id; a
   subject that leaves the topology is dropped, a new one starts UNKNOWN. One that leaves
   while confirmed BAD gets a retired event (recorded, never announced): its down record
   is closed, so the history does not keep it down for ever.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from agent.core.events import (
    Event,
    EventKind,
    Subject,
    link_direct_event,
    link_relayed_event,
    peer_offline_event,
    peer_online_event,
    retired_event,
    service_down_event,
    service_up_event,
    tailscale_running_event,
    tailscale_stopped_event,
    topology_error_event,
    topology_fixed_event,
)
from agent.core.evidence import with_evidence
from agent.core.health import service_colour, short_name, worst
from agent.core.model import (
    FleetView,
    Health,
    Impact,
    Link,
    Node,
    NodeStatus,
    ProbeResult,
    ProbeState,
    ServiceKey,
    Snapshot,
    TailscaleProblem,
    Topology,
)

__all__ = [
    "CLOCK_SLACK_S",
    "GRACE_S",
    "RECHECK_S",
    "GraceReason",
    "MonitorState",
    "Recorded",
    "Settling",
    "StepResult",
    "Track",
    "Verdict",
    "advance",
    "announced_subjects",
    "carried_state",
    "confirmed_health",
    "initial_state",
    "step",
]

GRACE_S = 30.0  # settling time after sleep/wake, a clock jump or a network change
CLOCK_SLACK_S = 5.0  # tolerated disagreement between the wall and the monotonic clock
RECHECK_S = 1.0  # re-sweep this soon to confirm a change


class GraceReason(StrEnum):
    """Why a grace period runs (see rule 4 of the module docstring)."""

    WAKE = "wake"
    CLOCK_JUMP = "clock_jump"
    WAKE_OR_CLOCK = "wake_or_clock"
    NETWORK_CHANGE = "network_change"
    TAILSCALE_STARTED = "tailscale_started"
    TAILSCALE_ANSWERS = "tailscale_answers"

    @property
    def words(self) -> str:
        """What happened, to follow "Settling after": "a sleep/wake", "a clock change", ..."""
        return _GRACE_WORDS[self]


_GRACE_WORDS = {
    GraceReason.WAKE: "a sleep/wake",
    GraceReason.CLOCK_JUMP: "a clock change",
    GraceReason.WAKE_OR_CLOCK: "a sleep/wake or a clock change",
    GraceReason.NETWORK_CHANGE: "a network change",
    GraceReason.TAILSCALE_STARTED: "Tailscale started again",
    GraceReason.TAILSCALE_ANSWERS: "Tailscale answered again",
}

# Readings where the tailscale CLI misbehaved, not tailscaled: alone, they restart nothing.
_CLI_GLITCHES = frozenset({TailscaleProblem.TIMED_OUT, TailscaleProblem.BAD_OUTPUT})


class Verdict(StrEnum):
    """Good or bad for one subject: what a sweep reads, and what the hysteresis confirms."""

    UNKNOWN = "unknown"
    GOOD = "good"  # up / online / direct / running
    BAD = "bad"  # down / offline / relayed / not running


@dataclass(frozen=True, slots=True)
class Track:
    """One subject's hysteresis: its confirmed verdict and the streak against it."""

    confirmed: Verdict = Verdict.UNKNOWN
    pending: Verdict | None = None  # the contrary verdict being counted
    streak: int = 0  # consecutive readings of `pending`
    streak_since: float | None = None  # wall time of the streak's first reading
    since: float | None = None  # wall time of the first reading of the confirmed state
    announced: bool = False  # the confirmed BAD state was announced

    def reset(self) -> Track:
        """Forget the streak, keep the confirmed state."""
        if self.pending is None and self.streak == 0:
            return self
        return replace(self, pending=None, streak=0, streak_since=None)


@dataclass(frozen=True, slots=True)
class MonitorState:
    """Everything `step` remembers between sweeps. Treat the mappings as read-only."""

    services: Mapping[ServiceKey, Track] = field(default_factory=dict)
    peers: Mapping[str, Track] = field(default_factory=dict)
    links: Mapping[str, Track] = field(default_factory=dict)
    tailscale: Track = field(default_factory=Track)
    tailscale_running: bool | None = None  # the last raw reading
    tailscale_problem: TailscaleProblem | None = None  # ... and its problem
    stopped_problem: TailscaleProblem | None = None  # what the confirmed stop was
    topology_error: str | None = None
    last_wall: float | None = None
    last_mono: float | None = None
    last_boot: float | None = None
    grace_since_mono: float | None = None  # set while a grace period runs
    grace_reason: GraceReason | None = None  # ... and its latest trigger


@dataclass(frozen=True, slots=True)
class Settling:
    """A grace period in force, as the tray shows it: why, and what is known meanwhile."""

    reason: GraceReason
    health: Health  # the colour of the confirmed states, kept while the readings settle
    problems: tuple[str, ...] = ()  # the confirmed problems, worst first ("Mac mini: offline")


@dataclass(frozen=True, slots=True)
class StepResult:
    state: MonitorState
    events: tuple[Event, ...]
    recheck_after_s: float | None  # sweep again this soon (None: on the normal interval)
    in_grace: bool
    settling: Settling | None = None  # set exactly while in_grace


def initial_state() -> MonitorState:
    """Nothing known yet: every subject UNKNOWN, no grace."""
    return MonitorState()


@dataclass(frozen=True, slots=True)
class Recorded:
    """One change the history holds (the latest of its subject, or any, oldest first)."""

    kind: EventKind
    node_id: str | None
    service: str | None
    at: float
    announced: bool
    still_down: tuple[str, ...] = ()


def carried_state(records: Iterable[Recorded]) -> MonitorState:
    """Where a restart starts from (rule 3): give the recorded changes oldest first.

    Each subject whose last recorded change is for the worse is confirmed BAD since then,
    with the announced flag it had; every other subject starts UNKNOWN. A peer_online that
    named services still down made those downs known to the user (announced).
    """
    services: dict[ServiceKey, Track] = {}
    peers: dict[str, Track] = {}
    links: dict[str, Track] = {}
    tailscale = Track()
    for r in records:
        bad = Track(Verdict.BAD, since=r.at, announced=r.announced)
        family, node = r.kind.family, r.node_id or ""
        if family == "service" and r.service is not None:
            key = (node, r.service)
            if r.kind is EventKind.SERVICE_DOWN:
                services[key] = bad
            else:
                services.pop(key, None)
        elif family == "peer":
            if r.kind is EventKind.PEER_OFFLINE:
                peers[node] = bad
            else:
                peers.pop(node, None)
            for name in r.still_down:
                track = services.get((node, name))
                if track is not None:
                    services[(node, name)] = replace(track, announced=True)
        elif family == "link":
            if r.kind is EventKind.LINK_RELAYED:
                links[node] = bad
            else:
                links.pop(node, None)
        elif family == "tailscale":
            tailscale = bad if r.kind is EventKind.TAILSCALE_STOPPED else Track()
    return MonitorState(services=services, peers=peers, links=links, tailscale=tailscale)


def announced_subjects(state: MonitorState) -> frozenset[Subject]:
    """The subjects whose confirmed BAD state was announced (their recovery is news)."""
    found: set[Subject] = set()
    for (node, service), track in state.services.items():
        if track.confirmed is Verdict.BAD and track.announced:
            found.add(("service", node, service))
    for family, tracks in (("peer", state.peers), ("link", state.links)):
        for node, track in tracks.items():
            if track.confirmed is Verdict.BAD and track.announced:
                found.add((family, node, ""))
    if state.tailscale.confirmed is Verdict.BAD and state.tailscale.announced:
        found.add(("tailscale", "", ""))
    return frozenset(found)


# ==== one subject ==============================================================


def advance(
    track: Track, reading: Verdict, at: float, *, bad_n: int, good_n: int
) -> tuple[Track, Verdict | None]:
    """Count one reading (rule 1). Returns the new track and, when it confirmed a change,
    the old confirmed verdict (the caller sets `announced`); core.findings counts with it
    too."""
    if reading is track.confirmed:
        return track.reset(), None
    if track.pending is reading and track.streak_since is not None:
        streak, since = track.streak + 1, track.streak_since
    else:
        streak, since = 1, at
    need = max(1, bad_n if reading is Verdict.BAD else good_n)
    if streak >= need:
        return Track(confirmed=reading, since=since), track.confirmed
    return Track(track.confirmed, reading, streak, since, track.since, track.announced), None


def _service_reading(result: ProbeResult) -> Verdict | None:
    if result.state is ProbeState.UP:
        return Verdict.GOOD
    if result.state is ProbeState.DOWN:
        return Verdict.BAD
    return None  # UNKNOWN, SKIPPED: no information


def _peer_reading(status: NodeStatus) -> Verdict | None:
    any_up = any(s.result.state is ProbeState.UP for s in status.services)
    if status.link is Link.OFFLINE and not any_up:
        return Verdict.BAD
    if any_up or status.link not in (Link.OFFLINE, Link.UNKNOWN):
        return Verdict.GOOD
    return None


def _link_reading(link: Link) -> Verdict | None:
    if link is Link.RELAY:
        return Verdict.BAD
    if link in (Link.DIRECT, Link.PEER_RELAY):
        return Verdict.GOOD
    return None  # IDLE, OFFLINE, UNKNOWN, SELF: the path is not known


def _lasted(old: Track, new: Track) -> float | None:
    """How long the old confirmed state lasted: from its first reading to the new one's."""
    if old.since is None or new.since is None:
        return None
    return max(0.0, new.since - old.since)


# ==== the step =================================================================


@dataclass
class _Sweep:
    """Working data for one step (private, mutable, never escapes `step`)."""

    at: float
    bad_n: int
    good_n: int
    recheck: bool = False

    def count(self, track: Track, reading: Verdict | None) -> tuple[Track, Verdict | None]:
        if reading is None:
            return track, None
        new, old = advance(track, reading, self.at, bad_n=self.bad_n, good_n=self.good_n)
        if old is None and new.pending is not None:
            self.recheck = True
        return new, old


@dataclass(frozen=True, slots=True)
class _Clocks:
    wall: float
    mono: float
    boot: float | None
    busy_s: float


def _clock_trigger(state: MonitorState, now: _Clocks, interval_s: float) -> GraceReason | None:
    """A sleep/wake or a clock change seen by the clocks since the previous step."""
    if state.last_mono is None or state.last_wall is None:
        return None
    mono_gap = now.mono - state.last_mono
    wall_gap = now.wall - state.last_wall
    limit = 2 * interval_s + CLOCK_SLACK_S + max(0.0, now.busy_s)
    if now.boot is not None and state.last_boot is not None:
        boot_gap = now.boot - state.last_boot
        if mono_gap < 0 or mono_gap > limit or boot_gap > limit:
            return GraceReason.WAKE
        if boot_gap - mono_gap > CLOCK_SLACK_S:
            return GraceReason.WAKE  # suspended: the monotonic clock stood still meanwhile
        if abs(wall_gap - boot_gap) > CLOCK_SLACK_S:
            return GraceReason.CLOCK_JUMP
        return None
    if mono_gap < 0 or mono_gap > limit:
        return GraceReason.WAKE
    if wall_gap - mono_gap > CLOCK_SLACK_S:
        return GraceReason.WAKE_OR_CLOCK
    if mono_gap - wall_gap > CLOCK_SLACK_S:
        return GraceReason.CLOCK_JUMP  # a suspend never turns the wall clock back
    return None


def _tailscale_trigger(state: MonitorState, running: bool) -> GraceReason | None:
    """Tailscale runs again after a reading where it did not (see rule 4)."""
    if not running or state.tailscale_running is not False:
        return None
    if state.tailscale_problem in _CLI_GLITCHES:
        if state.tailscale.confirmed is Verdict.BAD:
            return GraceReason.TAILSCALE_ANSWERS
        return None  # one odd answer of the CLI: tailscaled went on as before
    return GraceReason.TAILSCALE_STARTED


def _grace(
    state: MonitorState,
    now: _Clocks,
    interval_s: float,
    running: bool,
    network_changed: bool,
    grace_s: float,
) -> tuple[float | None, GraceReason | None]:
    """When the grace period in force began (monotonic) and why; (None, None) for none."""
    trigger = (
        _clock_trigger(state, now, interval_s)
        or _tailscale_trigger(state, running)
        or (GraceReason.NETWORK_CHANGE if network_changed else None)
    )
    if trigger is not None:
        return now.mono, trigger
    since = state.grace_since_mono
    if since is None or now.mono - since >= grace_s:
        return None, None
    return since, state.grace_reason


def confirmed_health(
    state: MonitorState,
    topology: Topology,
    self_id: str | None,
    *,
    snoozed: Collection[ServiceKey] = (),
    fleet: FleetView | None = None,
) -> tuple[Health, tuple[str, ...]]:
    """The colour and the problems (worst first) of the confirmed states, not of the latest
    readings: what the icon keeps while a grace period lets the readings settle.

    The same colours as the health rules for what the state machine confirms: Tailscale
    not running here, an always-on peer offline and a critical service down are red; a
    relayed link and a degraded service down amber. Latency and "not in the tailnet" are
    not confirmed subjects: they colour the latest readings only. As in the judged sweep,
    a snoozed node or service (`snoozed`, core.snooze's keys) does not colour, and a
    critical service the peers' views (`fleet`, --share-view) reach is amber, this
    machine's link (core.health.service_colour). Green when something is confirmed good
    and nothing bad, grey when nothing is confirmed yet.
    """
    found: list[tuple[Health, str]] = []
    if state.tailscale.confirmed is Verdict.BAD:
        found.append((Health.RED, "Tailscale is not running here"))
    for node in topology.nodes:
        if (node.id, "") in snoozed:
            continue  # snoozed: neither its link nor its services colour
        name = short_name(node)
        peer = state.peers.get(node.id) if node.id != self_id else None
        if peer is not None and peer.confirmed is Verdict.BAD:
            if node.always_on:
                found.append((Health.RED, f"{name}: offline"))
            continue  # an away laptop and its services never colour
        link = state.links.get(node.id) if node.id != self_id else None
        if link is not None and link.confirmed is Verdict.BAD:
            found.append((Health.AMBER, f"{name}: relayed"))
        for service in node.services:
            key = (node.id, service.name)
            track = state.services.get(key)
            if track is None or track.confirmed is not Verdict.BAD:
                continue
            down = _DOWN_COLOUR.get(service.impact, Health.GREY)
            colour = service_colour(down, key, snoozed, fleet)
            if colour in (Health.RED, Health.AMBER):
                found.append((colour, f"{name}: {service.name} down"))
    if found:
        found.sort(key=lambda item: item[0] is not Health.RED)  # stable: red first
        return worst(h for h, _ in found), tuple(text for _, text in found)
    tracks = [state.tailscale, *state.peers.values(), *state.links.values()]
    tracks += state.services.values()
    known = any(t.confirmed is Verdict.GOOD for t in tracks)
    return (Health.GREEN if known else Health.GREY), ()


_DOWN_COLOUR = {Impact.CRITICAL: Health.RED, Impact.DEGRADED: Health.AMBER}


def _retired(state: MonitorState, topology: Topology, at: float) -> list[Event]:
    """Retired events for the subjects confirmed BAD that left the topology (rule 7)."""
    node_ids = {n.id for n in topology.nodes}
    keys = {(n.id, s.name) for n in topology.nodes for s in n.services}
    out: list[Event] = []
    for kind, tracks in (
        (EventKind.PEER_RETIRED, state.peers),
        (EventKind.LINK_RETIRED, state.links),
    ):
        for node_id, track in tracks.items():
            if node_id not in node_ids and track.confirmed is Verdict.BAD:
                out.append(retired_event(kind, node_id, None, at))
    for (node_id, service), track in state.services.items():
        if (node_id, service) not in keys and track.confirmed is Verdict.BAD:
            out.append(retired_event(EventKind.SERVICE_RETIRED, node_id, service, at))
    return out


def step(
    state: MonitorState,
    snapshot: Snapshot,
    now_wall: float,
    now_mono: float,
    *,
    topology_error: str | None = None,
    network_changed: bool = False,
    grace_s: float = GRACE_S,
    now_boot: float | None = None,
    busy_s: float = 0.0,
) -> StepResult:
    """Take one judged sweep into account; see the module docstring for the rules.

    `now_boot`: a monotonic clock that also counts suspend (Linux CLOCK_BOOTTIME), where the
    platform has one: it tells a sleep from a clock change. `busy_s`: how long the sweep
    behind `snapshot` took, so that a slow sweep is not taken for a sleep.
    """
    topology = snapshot.topology
    defaults = topology.defaults
    running = snapshot.tailnet.running
    sweep = _Sweep(now_wall, defaults.failure_threshold, defaults.success_threshold)
    events: list[Event] = []

    clocks = _Clocks(now_wall, now_mono, now_boot, busy_s)
    grace_since, grace_reason = _grace(
        state, clocks, defaults.interval_s, running, network_changed, grace_s
    )
    in_grace = grace_since is not None

    # ---- Tailscale here and the topology file: no grace ----
    ts, old = sweep.count(state.tailscale, Verdict.GOOD if running else Verdict.BAD)
    ts_problem = state.stopped_problem
    if ts.confirmed is Verdict.BAD and old is not None:
        ts = replace(ts, announced=True)
        ts_problem = snapshot.tailnet.problem
        events.append(tailscale_stopped_event(snapshot.tailnet, now_wall))
    elif old is Verdict.BAD:
        lasted = _lasted(state.tailscale, ts)
        announce = state.tailscale.announced
        events.append(
            tailscale_running_event(
                now_wall, stopped_for_s=lasted, announce=announce, problem=ts_problem
            )
        )

    if topology_error is not None and topology_error != state.topology_error:
        events.append(topology_error_event(topology_error, now_wall))
    elif topology_error is None and state.topology_error is not None:
        events.append(topology_fixed_event(topology.source, len(topology.nodes), now_wall))

    # ---- peers, links, services ----
    statuses = {ns.node.id: ns for ns in snapshot.nodes}
    self_id = snapshot.self_node_id
    peer_nodes = [n for n in topology.nodes if n.id != self_id]
    # Readings count only outside grace, and for peers only while Tailscale runs here.
    learn_self = not in_grace
    learn_peers = learn_self and running

    def fresh(old_track: Track | None, learn: bool) -> Track:
        # A subject that learns nothing this step (grace, Tailscale down) loses its streak.
        track = old_track or Track()
        return track if learn else track.reset()

    peers: dict[str, Track] = {}
    peer_changes: list[tuple[Node, Track, Track]] = []
    links: dict[str, Track] = {}
    link_events: list[Event] = []
    for node in peer_nodes:
        status = statuses.get(node.id)
        prev = fresh(state.peers.get(node.id), learn_peers)
        new, old = sweep.count(prev, _peer_reading(status) if status and learn_peers else None)
        peers[node.id] = new
        if old is not None and not (old is Verdict.UNKNOWN and new.confirmed is Verdict.GOOD):
            peer_changes.append((node, prev, new))

        prev = fresh(state.links.get(node.id), learn_peers)
        reading = _link_reading(status.link) if status and learn_peers else None
        new, old = sweep.count(prev, reading)
        if old is not None and status is not None and new.confirmed is Verdict.BAD:
            new = replace(new, announced=True)
            link_events.append(
                link_relayed_event(node, status.relay, now_wall, was_direct=old is Verdict.GOOD)
            )
        elif old is Verdict.BAD and status is not None:
            link_events.append(
                link_direct_event(
                    node,
                    now_wall,
                    relayed_for_s=_lasted(prev, new),
                    peer_relay=status.link is Link.PEER_RELAY,
                    announce=prev.announced,
                )
            )
        links[node.id] = new

    services: dict[ServiceKey, Track] = {}
    service_events: list[Event] = []
    for node in topology.nodes:
        is_self = node.id == self_id
        learn = learn_self if is_self else learn_peers
        status = statuses.get(node.id)
        results = {s.service.name: s.result for s in status.services} if status else {}
        peer_offline = not is_self and peers[node.id].confirmed is Verdict.BAD
        for service in node.services:
            key = (node.id, service.name)
            prev = fresh(state.services.get(key), learn)
            result = results.get(service.name)
            reading = _service_reading(result) if result is not None and learn else None
            new, old = sweep.count(prev, reading)
            if old is not None and result is not None and new.confirmed is Verdict.BAD:
                event = service_down_event(node, service, result, now_wall, folded=peer_offline)
                new = replace(new, announced=event.announce)
                service_events.append(event)
            elif old is Verdict.BAD:
                service_events.append(
                    service_up_event(
                        node,
                        service,
                        now_wall,
                        down_for_s=_lasted(prev, new),
                        announce=prev.announced,
                    )
                )
            services[key] = new

    for node, prev, new in peer_changes:
        if new.confirmed is Verdict.BAD:
            event = peer_offline_event(node, now_wall)
            peers[node.id] = replace(new, announced=event.announce)
        else:
            still_down = tuple(
                s
                for s in node.services
                if s.impact is not Impact.INFO
                and (t := services[(node.id, s.name)]).confirmed is Verdict.BAD
                and not t.announced
            )
            event = peer_online_event(
                node,
                now_wall,
                offline_for_s=_lasted(prev, new),
                announce=prev.announced,
                still_down=still_down,
            )
            for s in still_down:  # the user hears of them now: their recovery is news too
                services[(node.id, s.name)] = replace(services[(node.id, s.name)], announced=True)
        events.append(event)
    events.extend(link_events)
    events.extend(service_events)
    events.extend(_retired(state, topology, now_wall))

    recheck: float | None = RECHECK_S if sweep.recheck else None
    if grace_since is not None:
        remaining = grace_s - (now_mono - grace_since)
        if remaining < defaults.interval_s:
            wait = max(RECHECK_S, remaining)
            recheck = wait if recheck is None else min(recheck, wait)

    new_state = MonitorState(
        services=services,
        peers=peers,
        links=links,
        tailscale=ts,
        tailscale_running=running,
        tailscale_problem=snapshot.tailnet.problem,
        stopped_problem=ts_problem,
        topology_error=topology_error,
        last_wall=now_wall,
        last_mono=now_mono,
        last_boot=now_boot,
        grace_since_mono=grace_since,
        grace_reason=grace_reason,
    )
    settling = None
    if grace_reason is not None:
        health, problems = confirmed_health(
            new_state,
            topology,
            snapshot.self_node_id,
            snoozed=snapshot.snoozed,
            fleet=snapshot.fleet,
        )
        settling = Settling(grace_reason, health, problems)
    # each change carries the facts of the sweep that confirmed it (core.evidence)
    return StepResult(new_state, with_evidence(events, snapshot), recheck, in_grace, settling)
