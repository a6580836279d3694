"""The WebSocket probe against a real server (the websockets library)."""

from __future__ import annotations

import time

import pytest

from agent.core.model import ProbeState, Reason
from agent.edges.probes import websocket
from tests.helpers.servers import (
    Address,
    black_hole,
    closed_port,
    tcp_server,
    websocket_server,
)
from tests.probes.support import FIXED_NOW, HANG_GUARD_S, fixed_clock, probe_once, target, timed


def test_a_real_websocket_is_up(ws_addr: Address) -> None:
    result = probe_once(target("websocket", ws_addr, path="/ws"))
    assert (result.state, result.reason, result.detail) == (
        ProbeState.UP,
        None,
        "WebSocket upgrade accepted",
    )
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.at == FIXED_NOW


def test_the_probe_closes_cleanly() -> None:
    codes: list[int | None] = []
    with websocket_server("/ws", close_codes=codes) as address:
        assert probe_once(target("websocket", address, path="/ws")).state is ProbeState.UP
        deadline = time.monotonic() + 5
        while not codes and time.monotonic() < deadline:
            time.sleep(0.01)
    assert codes == [1000]


def test_a_wrong_path_is_an_http_status(ws_addr: Address) -> None:
    result = probe_once(target("websocket", ws_addr, path="/nowhere"))
    assert (result.state, result.reason, result.detail) == (
        ProbeState.DOWN,
        Reason.HTTP_STATUS,
        "HTTP 404 instead of a WebSocket upgrade",
    )


def test_a_plain_http_server_does_not_upgrade(web_addr: Address) -> None:
    result = probe_once(target("websocket", web_addr, path="/health"))
    assert (result.state, result.reason, result.detail) == (
        ProbeState.DOWN,
        Reason.HTTP_STATUS,
        "HTTP 200 instead of a WebSocket upgrade",
    )


@pytest.mark.parametrize("server", ["redis_addr", "postgres_addr"])
def test_something_else_is_a_protocol_mismatch(server: str, request: pytest.FixtureRequest) -> None:
    address: Address = request.getfixturevalue(server)
    result = probe_once(target("websocket", address, path="/ws"))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)
    assert result.detail.startswith("not an HTTP server on this port")


def test_a_101_with_a_wrong_accept_key_is_not_a_websocket() -> None:
    reply = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"
    )
    with tcp_server(reply) as address:
        result = probe_once(target("websocket", address, path="/ws"))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)
    assert "Sec-WebSocket-Accept" in result.detail


def test_the_accept_key_follows_rfc_6455() -> None:
    # The example handshake of RFC 6455 section 1.3.
    assert websocket.accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_refused_on_a_closed_port() -> None:
    result = probe_once(target("websocket", ("127.0.0.1", closed_port()), path="/ws"))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.REFUSED)


def test_black_hole_times_out() -> None:
    with black_hole() as address:
        t = target("websocket", address, path="/ws", timeout=0.3)
        result, took = timed(lambda: websocket.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.NO_ANSWER)
    assert took < HANG_GUARD_S


def test_a_path_that_cannot_be_sent_is_an_error_not_an_exception(ws_addr: Address) -> None:
    result = probe_once(target("websocket", ws_addr, path="/a b\r\nX: y"))
    assert (result.state, result.reason) == (ProbeState.UNKNOWN, Reason.ERROR)
    assert result.detail.startswith("ValueError: ")
