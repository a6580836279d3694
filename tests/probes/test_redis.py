"""The Redis probe against a real redis-server (apt-get install redis-server)."""

from __future__ import annotations

import pytest

from agent.core.model import ProbeState, Reason
from agent.edges.probes import redis
from tests.helpers.servers import (
    Address,
    black_hole,
    closed_port,
    redis_server,
    tcp_server,
)
from tests.probes.support import FIXED_NOW, HANG_GUARD_S, fixed_clock, probe_once, target, timed


def test_pong_is_up(redis_addr: Address) -> None:
    result = probe_once(target("redis", redis_addr))
    assert (result.state, result.reason, result.detail) == (ProbeState.UP, None, "PONG")
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.at == FIXED_NOW


def test_a_password_protected_redis_is_up(redis_auth_addr: Address) -> None:
    result = probe_once(target("redis", redis_auth_addr))
    assert (result.state, result.reason) == (ProbeState.UP, None)
    assert "authentication required" in result.detail


def test_another_redis_error_is_up_with_the_error_in_the_detail() -> None:
    with redis_server(extra_args=("--rename-command", "PING", "")) as address:
        result = probe_once(target("redis", address))
    assert result.state is ProbeState.UP
    assert result.detail.startswith("up (Redis answered: ERR unknown command")


def test_refused_on_a_closed_port() -> None:
    result = probe_once(target("redis", ("127.0.0.1", closed_port())))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.REFUSED)


def test_black_hole_times_out() -> None:
    with black_hole() as address:
        t = target("redis", address, timeout=0.3)
        result, took = timed(lambda: redis.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.NO_ANSWER)
    assert took < HANG_GUARD_S


def test_an_http_server_is_not_redis(web_addr: Address) -> None:
    result = probe_once(target("redis", web_addr))
    assert (result.state, result.reason, result.detail) == (
        ProbeState.DOWN,
        Reason.PROTOCOL_MISMATCH,
        "something else answers on this port (not Redis)",
    )


def test_postgres_hanging_up_is_not_redis(postgres_addr: Address) -> None:
    result = probe_once(target("redis", postgres_addr))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)
    assert "not Redis" in result.detail


BANNERS = [
    ("ssh-banner", b"SSH-2.0-OpenSSH_9.6\r\n", ProbeState.DOWN),
    ("closes-silently", b"", ProbeState.DOWN),
    ("simple-string", b"+OK\r\n", ProbeState.UP),
]


@pytest.mark.parametrize(("reply", "state"), [b[1:] for b in BANNERS], ids=[b[0] for b in BANNERS])
def test_other_answers(reply: bytes, state: ProbeState) -> None:
    with tcp_server(reply) as address:
        result = probe_once(target("redis", address))
    assert result.state is state
    if state is ProbeState.DOWN:
        assert result.reason is Reason.PROTOCOL_MISMATCH
