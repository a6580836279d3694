"""The HTTP probe against a real http.server on loopback (and a real Redis/PostgreSQL
where HTTP is expected)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agent.core.model import ProbeState, Reason
from agent.edges.probes import http, make_http_client, run_probes
from tests.helpers.servers import Address, Route, black_hole, closed_port, http_server
from tests.probes.support import FIXED_NOW, HANG_GUARD_S, fixed_clock, probe_once, target, timed

STATUS_CASES = [
    # path, expect_status, state, reason, detail
    ("/health", (), ProbeState.UP, None, "HTTP 200"),
    ("/empty", (), ProbeState.UP, None, "HTTP 204"),
    ("/moved", (), ProbeState.UP, None, "HTTP 302"),  # not followed: 302 is the answer
    ("/created", (201,), ProbeState.UP, None, "HTTP 201"),
    ("/missing-page", (404,), ProbeState.UP, None, "HTTP 404"),
    ("/health", (201,), ProbeState.DOWN, Reason.HTTP_STATUS, "HTTP 200 (expected 201)"),
    ("/boom", (), ProbeState.DOWN, Reason.HTTP_STATUS, "HTTP 500 (expected < 400)"),
    ("/missing-page", (), ProbeState.DOWN, Reason.HTTP_STATUS, "HTTP 404 (expected < 400)"),
    ("/unavailable", (200,), ProbeState.DOWN, Reason.HTTP_STATUS, "HTTP 503 (expected 200)"),
    (
        "/unavailable",
        (200, 204),
        ProbeState.DOWN,
        Reason.HTTP_STATUS,
        "HTTP 503 (expected 200 or 204)",
    ),
    (
        "/moved",
        (200, 201, 204),
        ProbeState.DOWN,
        Reason.HTTP_STATUS,
        "HTTP 302 (expected 200, 201 or 204)",
    ),
]


@pytest.mark.parametrize(
    ("path", "expect", "state", "reason", "detail"),
    STATUS_CASES,
    ids=[f"{c[0]}-{'/'.join(map(str, c[1])) or 'default'}" for c in STATUS_CASES],
)
def test_status_rules(
    web_addr: Address,
    path: str,
    expect: tuple[int, ...],
    state: ProbeState,
    reason: Reason | None,
    detail: str,
) -> None:
    result = probe_once(target("http", web_addr, path=path, expect_status=expect))
    assert (result.state, result.reason, result.detail) == (state, reason, detail)


BODY_CASES = [
    # path, expect_body, state, reason, detail
    ("/health", "ok", ProbeState.UP, None, "HTTP 200"),
    ("/health", "status: ok", ProbeState.UP, None, "HTTP 200"),
    ("/health", "ready", ProbeState.DOWN, Reason.BODY_MISMATCH, "body does not contain 'ready'"),
    ("/utf8", "prêt ✓", ProbeState.UP, None, "HTTP 200"),
    ("/big-early", "MARKER", ProbeState.UP, None, "HTTP 200"),
    # only the first 64 KiB are read
    (
        "/big-late",
        "MARKER",
        ProbeState.DOWN,
        Reason.BODY_MISMATCH,
        "body does not contain 'MARKER'",
    ),
    ("/empty", "ok", ProbeState.DOWN, Reason.BODY_MISMATCH, "body does not contain 'ok'"),
]


@pytest.mark.parametrize(
    ("path", "body", "state", "reason", "detail"),
    BODY_CASES,
    ids=[f"{c[0]}-{c[1]}" for c in BODY_CASES],
)
def test_body_substring(
    web_addr: Address,
    path: str,
    body: str,
    state: ProbeState,
    reason: Reason | None,
    detail: str,
) -> None:
    result = probe_once(target("http", web_addr, path=path, expect_body=body))
    assert (result.state, result.reason, result.detail) == (state, reason, detail)


def test_status_is_checked_before_the_body(web_addr: Address) -> None:
    result = probe_once(target("http", web_addr, path="/boom", expect_body="internal"))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.HTTP_STATUS)


def test_up_result_carries_latency_and_the_clock(web_addr: Address) -> None:
    result = probe_once(target("http", web_addr, path="/health"))
    assert result.state is ProbeState.UP
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.at == FIXED_NOW


def test_refused_on_a_closed_port() -> None:
    result = probe_once(target("http", ("127.0.0.1", closed_port())))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.REFUSED)
    assert result.detail == "connection refused"


def test_black_hole_times_out_within_the_probe_timeout() -> None:
    # The kernel completes the handshake, nothing ever answers: the host is reachable.
    with black_hole() as address:
        t = target("http", address, timeout=0.3)
        result, took = timed(lambda: http.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.NO_ANSWER)
    assert result.detail == "connected, but no answer within 0.3 s"
    assert took < HANG_GUARD_S


def test_a_connect_that_never_completes_is_a_timeout() -> None:
    with black_hole(handshake=False) as address:
        t = target("http", address, timeout=0.3)
        result, took = timed(lambda: http.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.TIMEOUT)
    assert result.detail == "no answer within 0.3 s"
    assert took < HANG_GUARD_S


def test_the_timeout_bounds_the_whole_probe_not_each_read() -> None:
    # Headers at once, then 16 bytes every 0.1 s for ~2 s: no single read waits
    # longer than 0.1 s, so only a deadline on the whole probe can stop it.
    slow = Route(200, "x" * 320 + "ok", drip=0.1)
    with http_server({"/slow": slow}) as address:
        t = target("http", address, path="/slow", expect_body="ok", timeout=0.5)
        result, took = timed(lambda: http.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.NO_ANSWER)
    assert took < HANG_GUARD_S


def test_a_server_answering_late_times_out() -> None:
    with http_server({"/late": Route(200, "ok", delay=5.0)}) as address:
        t = target("http", address, path="/late", timeout=0.3)
        result, took = timed(lambda: http.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.NO_ANSWER)
    assert took < HANG_GUARD_S


@pytest.mark.parametrize("server", ["redis_addr", "redis_auth_addr", "postgres_addr"])
def test_something_else_on_the_port_is_a_protocol_mismatch(
    server: str, request: pytest.FixtureRequest
) -> None:
    address: Address = request.getfixturevalue(server)
    result = probe_once(target("http", address, path="/health"))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)
    assert result.detail.startswith("not an HTTP server on this port")


def test_the_shared_client_has_no_connection_limit() -> None:
    # Every handler waits until all 150 requests have arrived (httpx's default pool
    # stops at 100 connections, so a pooled client would never fill the gate).
    count = 150
    gate = threading.Barrier(count)
    with http_server({"/gate": Route(200, "ok", gate=gate)}) as address:
        targets = [target("http", address, path="/gate", timeout=8.0) for _ in range(count)]
        results = asyncio.run(run_probes(targets, clock=fixed_clock))
    assert [r.state for r in results] == [ProbeState.UP] * count


def test_proxy_environment_is_ignored(web_addr: Address, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, refused)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async def both() -> tuple[object, ...]:
        async with make_http_client() as client:
            shared = await http.probe(target("http", web_addr, path="/health"), client)
        alone = await http.probe(target("http", web_addr, path="/health"))
        return shared.state, alone.state

    assert asyncio.run(both()) == (ProbeState.UP, ProbeState.UP)


def test_query_strings_are_sent() -> None:
    with http_server({"/q?full=1": Route(200, "full"), "/q": Route(200, "short")}) as address:
        result = probe_once(target("http", address, path="/q?full=1", expect_body="full"))
    assert result.state is ProbeState.UP
