"""run_probes: order, concurrency, the shared client, IPv6, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from agent.core.model import ProbeState, ProbeTarget, Reason
from agent.edges.probes import http, make_http_client, run_probes
from tests.helpers.servers import Address, black_hole, closed_port, http_server
from tests.probes.support import FIXED_NOW, fixed_clock, target


def test_no_targets_no_results() -> None:
    assert asyncio.run(run_probes([])) == []


def test_results_come_back_in_target_order(
    web_addr: Address, redis_addr: Address, postgres_addr: Address, ws_addr: Address
) -> None:
    targets = [
        target("http", web_addr, path="/boom", name="a"),
        target("redis", redis_addr, name="b"),
        target("tcp", ("127.0.0.1", closed_port()), name="c"),
        target("postgres", postgres_addr, name="d"),
        target("websocket", ws_addr, path="/nowhere", name="e"),
        target("http", web_addr, path="/health", name="f"),
        target("websocket", ws_addr, path="/ws", name="g"),
    ]
    results = asyncio.run(run_probes(targets, clock=fixed_clock))
    assert [(r.state, r.reason) for r in results] == [
        (ProbeState.DOWN, Reason.HTTP_STATUS),
        (ProbeState.UP, None),
        (ProbeState.DOWN, Reason.REFUSED),
        (ProbeState.UP, None),
        (ProbeState.DOWN, Reason.HTTP_STATUS),
        (ProbeState.UP, None),
        (ProbeState.UP, None),
    ]
    assert all(r.at == FIXED_NOW for r in results)


def test_probes_run_concurrently(web_addr: Address, redis_addr: Address) -> None:
    # 20 black holes at 0.5 s + 20 answering services: about one timeout in all,
    # not 20 (the guard only catches probes running one after another).
    with contextlib.ExitStack() as stack:
        holes = [stack.enter_context(black_hole()) for _ in range(10)]
        silent = [stack.enter_context(black_hole(handshake=False)) for _ in range(10)]
        targets: list[ProbeTarget] = []
        for i, address in enumerate(holes + silent):
            kind = ("http", "redis", "postgres", "websocket", "tcp")[i % 5]
            targets.append(target(kind, address, timeout=0.5, name=f"hole{i}"))
        for i in range(20):
            if i % 2:
                targets.append(target("http", web_addr, path="/health", name=f"web{i}"))
            else:
                targets.append(target("redis", redis_addr, name=f"redis{i}"))
        start = time.monotonic()
        results = asyncio.run(run_probes(targets, clock=fixed_clock))
        took = time.monotonic() - start
    hole_results, up_results = results[:20], results[20:]
    # a black hole that completes the handshake is "up" for a plain tcp probe
    expected = [
        ProbeState.UP if t.service.check == "tcp" and i < 10 else ProbeState.DOWN
        for i, t in enumerate(targets[:20])
    ]
    assert [r.state for r in hole_results] == expected
    # accepted and silent: the service hangs; a handshake that never completes: a timeout
    assert [r.reason for r in hole_results if r.state is ProbeState.DOWN] == [
        *([Reason.NO_ANSWER] * 8),
        *([Reason.TIMEOUT] * 10),
    ]
    assert [r.state for r in up_results] == [ProbeState.UP] * 20
    assert took < 3.0


def test_a_supplied_client_is_left_open(web_addr: Address) -> None:
    async def scenario() -> tuple[bool, ProbeState]:
        async with make_http_client() as client:
            await run_probes([target("http", web_addr, path="/health")], client)
            closed = client.is_closed
            again = await http.probe(target("http", web_addr, path="/health"), client)
            return closed, again.state

    assert asyncio.run(scenario()) == (False, ProbeState.UP)


def test_the_shared_client_settings() -> None:
    async def scenario() -> tuple[bool, bool]:
        async with make_http_client() as client:
            return client.follow_redirects, client.trust_env

    assert asyncio.run(scenario()) == (False, False)


@pytest.mark.usefixtures("ipv6")
def test_ipv6_loopback_for_http_and_tcp() -> None:
    with http_server({"/health": "ok"}, host="::1") as address:
        targets = [
            target("http", address, path="/health", expect_body="ok"),
            target("tcp", address),
            target("tcp", ("::1", closed_port("::1"))),
        ]
        results = asyncio.run(run_probes(targets, clock=fixed_clock))
    assert [(r.state, r.reason) for r in results] == [
        (ProbeState.UP, None),
        (ProbeState.UP, None),
        (ProbeState.DOWN, Reason.REFUSED),
    ]


def test_cancellation_is_not_swallowed() -> None:
    async def scenario() -> None:
        with black_hole() as address:
            task = asyncio.create_task(run_probes([target("redis", address, timeout=10.0)]))
            await asyncio.sleep(0.05)
            task.cancel()
            await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())


def test_results_are_reported_as_they_become_known(web_addr: Address) -> None:
    """The fast answers are reported before a black hole's timeout: streaming and progress."""
    with black_hole() as hole:
        targets = [
            target("http", hole, timeout=0.5, name="hole"),
            target("http", web_addr, path="/health", name="web"),
            target("tcp", ("127.0.0.1", closed_port()), name="closed"),
        ]
        seen: list[tuple[int, Reason | None]] = []
        results = asyncio.run(
            run_probes(targets, on_result=lambda i, r: seen.append((i, r.reason)))
        )
    assert sorted(seen) == [(i, r.reason) for i, r in enumerate(results)]
    assert seen[-1] == (0, Reason.NO_ANSWER)  # the black hole comes last
