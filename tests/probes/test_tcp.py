"""The TCP probe against real listening, closed and black-holed ports."""

from __future__ import annotations

from agent.core.model import ProbeState, Reason
from agent.edges.probes import tcp
from tests.helpers.servers import Address, black_hole, closed_port
from tests.probes.support import FIXED_NOW, HANG_GUARD_S, fixed_clock, probe_once, target, timed


def test_up_when_the_port_accepts(web_addr: Address) -> None:
    result = probe_once(target("tcp", web_addr))
    assert (result.state, result.reason, result.detail) == (
        ProbeState.UP,
        None,
        "connection accepted",
    )
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.at == FIXED_NOW


def test_up_even_when_nothing_is_ever_answered() -> None:
    # TCP only asks "does it accept": a completed handshake is enough.
    with black_hole() as address:
        result = probe_once(target("tcp", address, timeout=0.3))
    assert result.state is ProbeState.UP


def test_refused_on_a_closed_port() -> None:
    result = probe_once(target("tcp", ("127.0.0.1", closed_port())))
    assert (result.state, result.reason, result.detail) == (
        ProbeState.DOWN,
        Reason.REFUSED,
        "connection refused",
    )


def test_timeout_when_the_handshake_never_completes() -> None:
    with black_hole(handshake=False) as address:
        t = target("tcp", address, timeout=0.3)
        result, took = timed(lambda: tcp.probe(t, None, clock=fixed_clock))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.TIMEOUT)
    assert result.detail == "no answer within 0.3 s"
    assert took < HANG_GUARD_S


def test_redis_on_the_port_is_still_up_for_tcp(redis_addr: Address) -> None:
    assert probe_once(target("tcp", redis_addr)).state is ProbeState.UP
