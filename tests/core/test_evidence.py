"""The evidence behind a state change: gathered from the confirming sweep, scrubbed,
bounded, kept with the event (core.confirm.step) and put in one line."""

from __future__ import annotations

from agent.core.events import EventKind
from agent.core.evidence import Evidence, evidence_of, why_text
from agent.core.figures import format_latency
from agent.core.model import ProbeResult, ProbeState, Reason
from agent.core.redact import scrub
from tests.core.sample_network import (
    LAPTOP,
    MACMINI,
    UP,
    judged,
    peer,
    running,
)
from tests.core.snapshots import Driver

BUSY = ProbeResult(
    ProbeState.DOWN,
    Reason.HTTP_STATUS,
    "HTTP 503 (expected 200)",
    12.3,
    http_status=503,
    excerpt="upstream busy",
)


def test_a_service_down_carries_status_body_path_latency_and_tailscale_s_state() -> None:
    snapshot = judged(running(peer(LAPTOP), peer(MACMINI)), FastAPI=BUSY)
    found = evidence_of(snapshot, "macmini", "FastAPI")
    assert (found.state, found.http_status, found.body) == ("down", 503, "upstream busy")
    assert (found.link, found.endpoint, found.latency_ms) == ("direct", "192.168.0.9:41641", 12.3)
    assert (found.tailscale, found.peer_online) == ("Running", True)
    assert found.address == "100.123.51.5:8000"
    line = why_text(found, latency=format_latency, at="14:02")
    assert line == "HTTP 503 · body: 'upstream busy' · direct · 12 ms · 14:02"


def test_a_relayed_peer_offline_and_tailscale_stopped_read_as_such() -> None:
    relayed = judged(running(peer(LAPTOP), peer(MACMINI, cur_addr="", relay="fra")))
    assert why_text(evidence_of(relayed, "macmini", None), latency=format_latency) == (
        "relayed via DERP fra · 1.2 ms"
    )
    away = peer(MACMINI, online=False, last_seen="2025-01-02T03:04:05Z")
    silent = ProbeResult(ProbeState.DOWN, Reason.TIMEOUT, "no answer within 3 s")
    offline = judged(running(peer(LAPTOP), away), FastAPI=silent, Redis=silent)
    peer_facts = evidence_of(offline, "macmini", None)
    assert (peer_facts.peer_online, peer_facts.last_seen, peer_facts.link) == (
        False, "2025-01-02T03:04:05Z", "offline",
    )  # fmt: skip
    assert why_text(peer_facts, latency=format_latency) == "Tailscale: peer offline"
    socket_line = why_text(evidence_of(offline, "macmini", "Redis"), latency=format_latency)
    assert socket_line.startswith("peer offline in Tailscale; no answer within 3 s")


def test_secrets_never_reach_the_evidence() -> None:
    leaky = ProbeResult(
        ProbeState.DOWN,
        Reason.ERROR,
        "GET http://bob:pa55word@100.123.51.5:8000/health?key=abc failed",
        http_status=500,
        excerpt='{"error": "db", "password": "hunter2", "api_key": "k"} Bearer abcdefghijk12345',
    )
    found = evidence_of(
        judged(running(peer(LAPTOP), peer(MACMINI)), FastAPI=leaky), "macmini", "FastAPI"
    )
    text = repr(found)
    for secret in ("pa55word", "bob:", "key=abc", "hunter2", "abcdefghijk12345"):
        assert secret not in text, secret
    assert "db" in found.body


def test_scrub_redacts_secret_pairs_tokens_and_keys_and_keeps_plain_words() -> None:
    assert scrub("token=abc123 next") == "token=*** next"
    assert scrub('{"Password": "s3cr3t", "ok": true}') == '{"Password": ***, "ok": true}'
    bearer = scrub("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig")
    assert bearer.startswith("Authorization: ***") and "eyJ" not in bearer
    opaque = scrub("hint: Authorization: Bearer opaque-8c1f2e")  # neither a JWT nor long
    assert "opaque" not in opaque and opaque.startswith("hint: Authorization: ***"), opaque
    assert scrub("curl -H 'Bearer 0123456789abcdef'") == "curl -H 'Bearer ***'"
    assert scrub("key a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8 end") == "key *** end"
    assert scrub("upstream busy, retry later") == "upstream busy, retry later"


def test_the_confirming_step_attaches_evidence_to_each_change() -> None:
    d = Driver()
    tailnet = running(peer(LAPTOP), peer(MACMINI))
    d.step(judged(tailnet))
    d.step(judged(tailnet, FastAPI=BUSY))
    result = d.step(judged(tailnet, FastAPI=BUSY))
    (down,) = [e for e in result.events if e.kind is EventKind.SERVICE_DOWN]
    assert down.evidence is not None and down.evidence.http_status == 503
    back = d.step(judged(tailnet, FastAPI=UP)).events
    (up,) = [e for e in back if e.kind is EventKind.SERVICE_UP]
    assert up.evidence == Evidence(
        state="up", address="100.123.51.5:8000", link="direct", endpoint="192.168.0.9:41641",
        latency_ms=1.2, tailscale="Running", peer_online=True,
    )  # fmt: skip
