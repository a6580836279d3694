"""Who sees whom, pure: the view document read back strictly, and the rules that place a
failure (down everywhere, this machine's link, split)."""

from __future__ import annotations

import json

import pytest

from agent.core.health import judge
from agent.core.model import Health, Locus, ProbeState
from agent.core.plan import plan_sweep
from agent.core.share_view import (
    VIEW_MAX_BYTES,
    PeerReading,
    ViewStatus,
    encode_view,
    localise,
    matrix_lines,
    parse_view,
)
from tests.core.sample_network import ALL_DIRECT, REFUSED, TOPOLOGY, judged, node_of, sweep_of

FASTAPI = ("macmini", "FastAPI")


def doc(**fields: object) -> bytes:
    base: dict[str, object] = {"kind": "tailnet-agent/view", "version": 1, "node": "desktop"}
    return json.dumps({**base, "at": 1, "services": [], **fields}).encode()


def view_of(node: str, at: float, **states: ProbeState) -> PeerReading:
    return PeerReading(
        node, ViewStatus.FRESH, at=at, states={("macmini", k): v for k, v in states.items()}
    )


def test_a_view_round_trips_without_details() -> None:
    snapshot = judged(ALL_DIRECT, FastAPI=REFUSED)
    raw = encode_view(snapshot)
    assert b"connection refused" not in raw and b"100." not in raw  # states and codes only
    reading = parse_view(raw, node_id="desktop", now=snapshot.at + 1, max_age_s=30)
    assert reading.status is ViewStatus.FRESH
    assert reading.states is not None and reading.states[FASTAPI] is ProbeState.DOWN


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"{not json", ViewStatus.MALFORMED, "not JSON"),
        (b"[]", ViewStatus.MALFORMED, "not a tailnet-agent view"),
        (doc(version=2), ViewStatus.MALFORMED, "version"),
        (doc(node="laptop"), ViewStatus.MALFORMED, "node 'laptop'"),
        (doc(services=[{"node": "a", "service": "b", "state": "gone"}]), ViewStatus.MALFORMED,
         "unknown state"),
        (doc(at=True), ViewStatus.MALFORMED, "no time"),
        (doc(), ViewStatus.STALE, "s old"),
        (b" " * (VIEW_MAX_BYTES + 1), ViewStatus.MALFORMED, "larger than"),
    ],
    ids=["not-json", "not-an-object", "version", "wrong-node", "bad-state", "no-time", "stale",
         "too-big"],
)  # fmt: skip
def test_a_bad_view_is_named_never_raised(raw: bytes, status: ViewStatus, words: str) -> None:
    reading = parse_view(raw, node_id="desktop", now=1000.0, max_age_s=30)
    assert reading.status is status and words in reading.detail


def _placed(*readings: PeerReading, since: float = 10.0) -> Locus | None:
    results = sweep_of(ALL_DIRECT, FastAPI=REFUSED)
    fleet = localise(TOPOLOGY, "desktop", results, readings, {FASTAPI: since})
    return fleet.sightings[FASTAPI].locus


def test_every_node_failing_is_down_everywhere() -> None:
    down = ProbeState.DOWN
    assert _placed(view_of("laptop", 11, FastAPI=down), view_of("macmini", 12, FastAPI=down)) is (
        Locus.EVERYWHERE
    )


def test_only_this_node_failing_is_its_link_and_amber() -> None:
    up = ProbeState.UP
    readings = (view_of("laptop", 11, FastAPI=up), view_of("macmini", 12, FastAPI=up))
    assert _placed(*readings) is Locus.HERE
    plan = plan_sweep(TOPOLOGY, "desktop", ALL_DIRECT)
    results = {**sweep_of(ALL_DIRECT, FastAPI=REFUSED), **plan.skipped}
    fleet = localise(TOPOLOGY, "desktop", results, readings, {FASTAPI: 10.0})
    snapshot = judge(TOPOLOGY, ALL_DIRECT, "desktop", results, plan.addresses, now=13, fleet=fleet)
    mac = node_of(snapshot, "macmini")
    assert (snapshot.overall, mac.health) == (Health.AMBER, Health.AMBER)
    assert "your link to the Mac mini is broken" in mac.reasons[0]
    assert "tailscale ping woosuns-mac-mini" in mac.reasons[0]
    assert "desktop ×  laptop ✓  macmini ✓ → FastAPI (Mac mini) — your link" in matrix_lines(
        snapshot
    )


def test_views_from_before_the_failure_place_nothing() -> None:
    up = ProbeState.UP
    assert _placed(view_of("laptop", 9, FastAPI=up), since=10.0) is None
    assert _placed() is None


def test_some_failing_is_split() -> None:
    readings = (
        view_of("laptop", 11, FastAPI=ProbeState.UP),
        view_of("macmini", 12, FastAPI=ProbeState.DOWN),
    )
    assert _placed(*readings) is Locus.SPLIT


def test_views_not_fresh_are_listed_in_the_matrix() -> None:
    results = sweep_of(ALL_DIRECT)
    bad = PeerReading("laptop", ViewStatus.UNREACHABLE, "ConnectError")
    fleet = localise(TOPOLOGY, "desktop", results, [bad], {})
    plan = plan_sweep(TOPOLOGY, "desktop", ALL_DIRECT)
    snapshot = judge(TOPOLOGY, ALL_DIRECT, "desktop", results, plan.addresses, now=1, fleet=fleet)
    assert matrix_lines(snapshot)[-1] == "laptop: view unreachable"
