"""The event loop sweeps run on (`agent.edges.event_loop.run` / `loop_factory`): uvloop where
it is installed, asyncio's otherwise; and every probe finds the same on both loops. The
monitor runs on the same policy: tests/test_monitor.py."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Iterator

import pytest

from agent.core.model import ProbeResult, ProbeState, ProbeTarget, Reason
from agent.edges.event_loop import UVLOOP_MIN_PROBES, loop_factory, run
from agent.edges.probes import make_http_client, run_probes
from tests.helpers.servers import Address, black_hole, closed_port
from tests.probes.support import fixed_clock, target

UVLOOP_HINT = "uvloop is not installed: pip install uvloop (Linux and macOS; not on Windows)"


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        pytest.fail(UVLOOP_HINT)
    return uvloop.new_event_loop


def _loop(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    return asyncio.new_event_loop if name == "asyncio" else _uvloop_factory()


FACTORY_CASES = [
    # probes, uvloop expected (where it can be installed)
    ("many", 500, True),
    ("threshold", UVLOOP_MIN_PROBES, True),
    ("below", UVLOOP_MIN_PROBES - 1, False),
    ("one", 1, False),
]


@pytest.mark.parametrize(
    ("probes", "wants_uvloop"), [c[1:] for c in FACTORY_CASES], ids=[c[0] for c in FACTORY_CASES]
)
def test_loop_factory_picks_uvloop_where_it_pays(probes: int, wants_uvloop: bool) -> None:
    if wants_uvloop and sys.platform != "win32":
        assert loop_factory(probes) is _uvloop_factory()
    else:  # Windows has no uvloop: asyncio's loop, always
        assert loop_factory(probes) is asyncio.new_event_loop


@pytest.mark.parametrize(
    ("probes", "module"),
    [(UVLOOP_MIN_PROBES, "uvloop" if sys.platform != "win32" else "asyncio"), (1, "asyncio")],
    ids=["many", "one"],
)
def test_run_returns_the_result_from_the_chosen_loop(probes: int, module: str) -> None:
    async def which_loop() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert run(which_loop(), probes=probes) == module


class _CountsItsRepr:
    reprs = 0

    def __repr__(self) -> str:
        type(self).reprs += 1
        return "<a big Snapshot>"


@pytest.mark.parametrize("probes", [1, 500], ids=["asyncio", "uvloop"])
def test_run_never_reprs_the_result_of_a_sweep(probes: int) -> None:
    # From the main thread asyncio.Runner sets a SIGINT handler that holds the main task;
    # Python 3.11's signal module reprs that handler (so the task, so its result) in an error
    # message it builds and drops: ~20 ms per check for a 500-service Snapshot.
    import signal
    import threading

    assert threading.current_thread() is threading.main_thread()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _CountsItsRepr.reprs = 0

    async def sweep() -> _CountsItsRepr:
        return _CountsItsRepr()

    result = run(sweep(), probes=probes)
    assert isinstance(result, _CountsItsRepr)
    assert _CountsItsRepr.reprs == 0


def test_run_freezes_start_up_objects_once() -> None:
    async def nothing() -> None:
        return None

    run(nothing(), probes=1)
    frozen = gc.get_freeze_count()
    garbage = [[i] for i in range(1000)]
    run(nothing(), probes=1)
    assert frozen > 0
    assert gc.get_freeze_count() == frozen  # a second run pins nothing more
    del garbage


# ==== the same findings on both loops ==========================================


@pytest.fixture(scope="module")
def hole() -> Iterator[Address]:
    with black_hole() as address:
        yield address


def _cases(
    web: Address, redis: Address, postgres: Address, ws: Address, hole: Address
) -> list[tuple[str, ProbeTarget, tuple[ProbeState, Reason | None, str]]]:
    closed = ("127.0.0.1", closed_port())
    up = ProbeState.UP
    down = ProbeState.DOWN
    not_http = "not an HTTP server on this port (it closed the connection without an answer)"
    return [
        ("http-up", target("http", web, path="/health"), (up, None, "HTTP 200")),
        (
            "http-status",
            target("http", web, path="/boom"),
            (down, Reason.HTTP_STATUS, "HTTP 500 (expected < 400)"),
        ),
        (
            "http-body",
            target("http", web, path="/big-early", expect_body="MARKER"),
            (up, None, "HTTP 200"),
        ),
        (
            "http-refused",
            target("http", closed),
            (down, Reason.REFUSED, "connection refused"),
        ),
        (
            "http-hole",
            target("http", hole, timeout=0.3),
            (down, Reason.NO_ANSWER, "connected, but no answer within 0.3 s"),
        ),
        ("http-on-postgres", target("http", postgres), (down, Reason.PROTOCOL_MISMATCH, not_http)),
        ("tcp-up", target("tcp", web), (up, None, "connection accepted")),
        (
            "tcp-refused",
            target("tcp", closed),
            (down, Reason.REFUSED, "connection refused"),
        ),
        ("redis-up", target("redis", redis), (up, None, "PONG")),
        ("postgres-up", target("postgres", postgres), (up, None, "up (no TLS)")),
        (
            "websocket-up",
            target("websocket", ws, path="/ws"),
            (up, None, "WebSocket upgrade accepted"),
        ),
        (
            "websocket-hole",
            target("websocket", hole, timeout=0.3),
            (down, Reason.NO_ANSWER, "connected, but no answer within 0.3 s"),
        ),
    ]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_every_probe_finds_the_same_on_both_loops(
    loop: str,
    web_addr: Address,
    redis_addr: Address,
    postgres_addr: Address,
    ws_addr: Address,
    hole: Address,
) -> None:
    cases = _cases(web_addr, redis_addr, postgres_addr, ws_addr, hole)

    async def sweep() -> list[ProbeResult]:
        async with make_http_client() as client:
            return await run_probes([c[1] for c in cases], client, clock=fixed_clock)

    with asyncio.Runner(loop_factory=_loop(loop)) as runner:
        results = runner.run(sweep())
    got = {
        name: (r.state, r.reason, r.detail) for (name, _, _), r in zip(cases, results, strict=True)
    }
    assert got == {name: finding for name, _, finding in cases}
