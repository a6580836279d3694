"""The PostgreSQL probe against a real PostgreSQL (apt-get install postgresql)."""

from __future__ import annotations

import pytest

from agent.core.model import ProbeState, Reason
from agent.edges.probes import postgres
from tests.helpers.servers import Address, black_hole, closed_port, tcp_server
from tests.probes.support import FIXED_NOW, HANG_GUARD_S, fixed_clock, probe_once, target, timed


def test_a_real_postgres_is_up(postgres_addr: Address) -> None:
    result = probe_once(target("postgres", postgres_addr))
    # the test server runs without TLS, so it answers 'N'
    assert (result.state, result.reason, result.detail) == (ProbeState.UP, None, "up (no TLS)")
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.at == FIXED_NOW


def test_refused_on_a_closed_port() -> None:
    result = probe_once(target("postgres", ("127.0.0.1", closed_port())))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.REFUSED)


def test_black_hole_times_out() -> None:
    with black_hole() as address:
        t = target("postgres", address, timeout=0.3)
        result, took = timed(lambda: postgres.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.NO_ANSWER)
    assert took < HANG_GUARD_S


@pytest.mark.parametrize("server", ["web_addr", "redis_addr", "ws_addr"])
def test_something_else_is_not_postgres(server: str, request: pytest.FixtureRequest) -> None:
    address: Address = request.getfixturevalue(server)
    result = probe_once(target("postgres", address))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)
    assert "not PostgreSQL" in result.detail


ANSWERS = [
    ("tls-available", b"S", ProbeState.UP, "up (accepts TLS)"),
    ("no-tls", b"N", ProbeState.UP, "up (no TLS)"),
    ("old-server-error", b"EFATAL:  unsupported frontend protocol\x00", ProbeState.UP, None),
    # a banner-first server whose greeting happens to start with 'N'
    ("banner-starting-with-N", b"N\x00\x00\x00\x0a8.0.36\x00", ProbeState.DOWN, None),
    ("ssh-banner", b"SSH-2.0-OpenSSH_9.6\r\n", ProbeState.DOWN, None),
    ("closes-silently", b"", ProbeState.DOWN, None),
]


@pytest.mark.parametrize(
    ("reply", "state", "detail"), [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS]
)
def test_answers(reply: bytes, state: ProbeState, detail: str | None) -> None:
    with tcp_server(reply) as address:
        result = probe_once(target("postgres", address))
    assert result.state is state
    if detail is not None:
        assert result.detail == detail
    if state is ProbeState.DOWN:
        assert result.reason is Reason.PROTOCOL_MISMATCH
        assert "not PostgreSQL" in result.detail
