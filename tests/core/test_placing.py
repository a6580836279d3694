"""core.placing: a confirmed down waits for the peers' views that can place it, within a bound."""

from __future__ import annotations

from agent.core.events import Event, EventKind
from agent.core.health import judge
from agent.core.model import ProbeState, Snapshot
from agent.core.placing import HOLD_MARGIN_S, hold_for_views
from agent.core.plan import plan_sweep
from agent.core.share_view import PeerReading, ViewStatus, localise, localise_events
from tests.core.sample_network import ALL_DIRECT, REFUSED, TOPOLOGY, sweep_of

FASTAPI = ("macmini", "FastAPI")
FAILING_SINCE = 100.0  # this node's first failed probe of FastAPI
BOUND = TOPOLOGY.defaults.interval_s + TOPOLOGY.defaults.timeout_s + HOLD_MARGIN_S


def view(node: str, at: float, state: ProbeState = ProbeState.DOWN) -> PeerReading:
    return PeerReading(node, ViewStatus.FRESH, at=at, states={FASTAPI: state})


def judged(at: float, *readings: PeerReading, share: bool = True) -> Snapshot:
    """This node (the desktop) fails FastAPI since FAILING_SINCE; the peers' views as given."""
    plan = plan_sweep(TOPOLOGY, "desktop", ALL_DIRECT)
    results = {**sweep_of(ALL_DIRECT, FastAPI=REFUSED), **plan.skipped}
    fleet = localise(TOPOLOGY, "desktop", results, readings, {FASTAPI: FAILING_SINCE})
    return judge(
        TOPOLOGY,
        ALL_DIRECT,
        "desktop",
        results,
        plan.addresses,
        now=at,
        fleet=fleet if share else None,
    )


def event(kind: EventKind, at: float, *, announce: bool = True) -> Event:
    word = "down" if kind is EventKind.SERVICE_DOWN else "up"
    return Event(kind, at, "macmini", "FastAPI", f"Mac mini — Backend Server: FastAPI {word}",
                 "FastAPI on woosuns-mac-mini refused the connection", True, announce)  # fmt: skip


DOWN = event(EventKind.SERVICE_DOWN, 101.0)


def test_a_down_confirmed_before_the_peers_views_waits_and_goes_out_placed() -> None:
    # confirmed a second after the first failure: both views are from the peers' last sweeps
    first = judged(101.0, view("laptop", 95.0, ProbeState.UP), view("macmini", 99.0))
    holding = hold_for_views((), (DOWN,), first)
    assert holding.ready == ()
    assert [(h.event, h.waiting_for) for h in holding.began] == [(DOWN, ("laptop", "macmini"))]
    assert holding.held == holding.began and holding.held[0].until == 101.0 + BOUND

    # the Mac mini's next view is in, the laptop's not yet: still waiting, for the laptop
    second = judged(102.0, view("laptop", 95.0, ProbeState.UP), view("macmini", 101.5))
    holding = hold_for_views(holding.held, (), second)
    assert holding.ready == () and holding.held[0].waiting_for == ("laptop",)

    # both newer than the failure: it goes out, once, in the words of its place
    third = judged(105.0, view("laptop", 104.0, ProbeState.DOWN), view("macmini", 103.0))
    holding = hold_for_views(holding.held, (), third)
    assert holding.held == () and holding.ready == (DOWN,)
    (told,) = localise_events(holding.ready, third)
    assert told.title == "FastAPI down on the Mac mini (seen from 3 nodes)"
    assert told.at == DOWN.at  # when it was confirmed, not when it was told


def test_only_this_node_failing_goes_out_as_its_link() -> None:
    first = judged(101.0, view("laptop", 95.0, ProbeState.UP), view("macmini", 99.0, ProbeState.UP))
    holding = hold_for_views((), (DOWN,), first)
    later = judged(
        106.0, view("laptop", 105.0, ProbeState.UP), view("macmini", 104.0, ProbeState.UP)
    )
    holding = hold_for_views(holding.held, (), later)
    (told,) = localise_events(holding.ready, later)
    assert told.title == "Your link to the Mac mini is broken (others reach it)"
    assert not told.critical


def test_a_peer_whose_next_view_never_comes_holds_it_only_until_the_bound() -> None:
    old = view("laptop", 95.0, ProbeState.UP)
    holding = hold_for_views((), (DOWN,), judged(101.0, old))
    holding = hold_for_views(holding.held, (), judged(101.0 + BOUND - 0.5, old))
    assert holding.ready == ()
    holding = hold_for_views(holding.held, (), judged(101.0 + BOUND, old))
    assert holding.held == () and holding.ready == (DOWN,)


def test_its_recovery_releases_it_first() -> None:
    old = view("laptop", 95.0, ProbeState.UP)
    holding = hold_for_views((), (DOWN,), judged(101.0, old))
    up = event(EventKind.SERVICE_UP, 103.0)
    holding = hold_for_views(holding.held, (up,), judged(103.0, old))
    assert holding.held == () and holding.ready == (DOWN, up)  # never an up before its down


def test_nothing_waits_without_share_view_an_unreadable_view_or_an_announcement() -> None:
    old = view("laptop", 95.0, ProbeState.UP)
    assert hold_for_views((), (DOWN,), judged(101.0, old, share=False)).ready == (DOWN,)
    unreadable = PeerReading("laptop", ViewStatus.UNREACHABLE, "ConnectError")
    assert hold_for_views((), (DOWN,), judged(101.0, unreadable)).ready == (DOWN,)
    quiet = event(EventKind.SERVICE_DOWN, 101.0, announce=False)
    assert hold_for_views((), (quiet,), judged(101.0, old)).ready == (quiet,)
    fresh = view("laptop", 100.5, ProbeState.UP)  # a view newer than the failure: placed now
    assert hold_for_views((), (DOWN,), judged(101.0, fresh)).ready == (DOWN,)
