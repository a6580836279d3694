"""Tailscale's status JSON and the peers' share-view documents, hostile: a model, always.

`tailscale status --json` documents are every recorded one (tests/fixtures/tailscale/,
real/ included), changed in one to three places or cut and spliced as text; the parser
gives a TailnetView (BAD_OUTPUT with a sentence when it cannot read it), and matching the
bundled topology against that view, and the link rule, work on whatever it holds. A peer's
view document (share_view) is this agent's own, mutated; the reader gives a PeerReading,
MALFORMED or STALE with the reason when it is not a fresh view.
"""

from __future__ import annotations

import json
import math

from hypothesis import example, given
from hypothesis import strategies as st

from agent.core.model import Link, TailscaleProblem
from agent.core.share_view import VIEW_MAX_BYTES, ViewStatus, encode_view, parse_view
from agent.core.tailnet import find_peer, identify_self_by, link_of, parse_status_json
from agent.core.topology import parse_topology
from agent.edges.paths import bundled_topology_path
from tests.conftest import TAILSCALE_FIXTURES
from tests.core.sample_network import ALL_DIRECT, judged
from tests.fuzz.documents import edited_bytes, edited_text, mutated, to_json
from tests.fuzz.settings import fuzz

STATUS_TEXTS = {
    path.name: path.read_text(encoding="utf-8")
    for path in sorted(TAILSCALE_FIXTURES.rglob("*.json"))
}
STATUSES = [json.loads(text) for text in STATUS_TEXTS.values()]
TOPOLOGY = parse_topology(bundled_topology_path().read_text(encoding="utf-8"), "bundled")


def _reads_as_a_view(text: str) -> None:
    view = parse_status_json(text)
    if view.problem is not None:
        assert view.detail.strip(), "a problem comes with a sentence"
    if view.problem is TailscaleProblem.BAD_OUTPUT:
        assert not view.peers and not view.self_ips
        return
    for field in (view.version, view.self_hostname, view.self_dns_name, view.self_os):
        assert isinstance(field, str)
    assert all(isinstance(ip, str) for ip in view.self_ips)
    assert all(isinstance(w, str) for w in view.health_warnings)
    assert view.self_key_expiry is None or math.isfinite(view.self_key_expiry)
    for peer in view.peers:
        link, relay = link_of(peer)
        assert isinstance(link, Link) and isinstance(relay, str)
        assert peer.key_expiry is None or math.isfinite(peer.key_expiry)
    node_id, how = identify_self_by(TOPOLOGY, view)
    assert node_id is None or node_id in {n.id for n in TOPOLOGY.nodes}
    assert isinstance(how, str)
    for node in TOPOLOGY.nodes:
        found = find_peer(node, view)
        assert found is None or found in view.peers


@fuzz
@given(mutated(STATUSES))
def test_mutated_status_documents_give_a_view(document: object) -> None:
    _reads_as_a_view(to_json(document))


@fuzz
@given(st.sampled_from(sorted(STATUS_TEXTS)).flatmap(lambda name: edited_text(STATUS_TEXTS[name])))
@example("[" * 100_000)
@example('{"Version": ' + "1" * 5000 + "}")
@example('{"BackendState": "Running", "Self": {"KeyExpiry": "9999-12-31T23:59:59-23:59"}}')
def test_cut_and_spliced_status_text_gives_a_view(text: str) -> None:
    _reads_as_a_view(text)


# ==== share view =================================================================

SNAPSHOT = judged(ALL_DIRECT)
NODE_ID = SNAPSHOT.self_node_id or ""
VIEW = encode_view(SNAPSHOT)
NOW = SNAPSHOT.at + 1


def _reads_as_a_reading(raw: bytes) -> None:
    reading = parse_view(raw, node_id=NODE_ID, now=NOW, max_age_s=30)
    assert reading.node_id == NODE_ID
    assert isinstance(reading.status, ViewStatus)
    if reading.status is ViewStatus.FRESH:
        assert reading.states is not None and reading.at is not None
        assert math.isfinite(reading.at)
    else:
        assert reading.detail.strip() and "\n" not in reading.detail
        assert reading.states is None


def _view_of(**fields: object) -> bytes:
    return to_json({**json.loads(VIEW), **fields}).encode()


@fuzz
@given(mutated([json.loads(VIEW)]))
@example(json.loads(_view_of(at=10**400))).via(
    "found: math.isfinite() of a 400-digit 'at' raised OverflowError"
)
def test_mutated_view_documents_give_a_reading(document: object) -> None:
    _reads_as_a_reading(to_json(document).encode())


@fuzz
@given(edited_bytes(VIEW) | st.binary(max_size=VIEW_MAX_BYTES + 10))
@example(b"[" * 60_000).via("found: json.loads raised RecursionError for arrays 60,000 deep")
@example(b'{"kind": "tailnet-agent/view", "at": ' + b"9" * 5000 + b"}")
def test_cut_and_spliced_view_bytes_give_a_reading(raw: bytes) -> None:
    _reads_as_a_reading(raw)
