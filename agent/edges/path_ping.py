"""Path latency (edge): `tailscale ping` each online peer, bounded, at most once a minute each.

`ping_peer(cli, ip, timeout_s)` runs `tailscale ping --c 1 --timeout T --until-direct=false
IP` (an argv list, never a shell) and reads its output until the first pong
(core.path.parse_ping: the CLI has no JSON output for ping). It is bounded: the process is
killed after T plus a little for the CLI's own start and status call, and when the caller
is cancelled (the monitor stopping), so no ping outlives its sweep. It never raises for an
operational failure: no pong is a reading with an error.

`PathPinger` is what a sweep asks for readings: `check` uses a fresh one (every online peer
pinged once, concurrently); the monitor keeps one, so each peer is pinged at most once per
`every_s` (a minute) and its last reading is reused in between — a ping counts as traffic
(it makes the peer Active in Tailscale), so it is kept rare.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from agent.core.model import Link, PathReading
from agent.core.path import parse_ping
from agent.edges.child_process import run_child

__all__ = ["PING_EVERY_S", "PathPinger", "ping_argv", "ping_peer"]

log = logging.getLogger(__name__)

PING_EVERY_S = 60.0  # the monitor pings a peer at most this often
_CLI_SLACK_S = 2.0  # the CLI's start and its own status call, on top of the ping's timeout
_OUTPUT_MAX = 16 * 1024


def ping_argv(cli: str, ip: str, timeout_s: float) -> list[str]:
    # --until-direct=false: a pong through DERP is an answer too (exit 0), not an error.
    return [cli, "ping", "--c", "1", "--timeout", f"{timeout_s:g}s", "--until-direct=false", ip]


async def ping_peer(
    cli: str, ip: str, timeout_s: float, *, clock: Callable[[], float] = time.time
) -> PathReading:
    """One ping of one peer; never raises (except CancelledError, after killing the CLI)."""
    try:
        result = await run_child(
            ping_argv(cli, ip, timeout_s),
            timeout_s=timeout_s + _CLI_SLACK_S,
            until=b"pong from ",
            max_output=_OUTPUT_MAX,
        )
    except TimeoutError:
        log.debug("tailscale ping %s: no answer within %g s, killed", ip, timeout_s)
        return PathReading(Link.UNKNOWN, error=f"no reply within {timeout_s:g} s", at=clock())
    except OSError as exc:
        return PathReading(
            Link.UNKNOWN, error=f"cannot run {cli}: {exc.strerror or exc}", at=clock()
        )
    reading = parse_ping(
        result.out.decode("utf-8", errors="replace"),
        result.err.decode("utf-8", errors="replace"),
        timeout_s=timeout_s,
        at=clock(),
    )
    log.debug("tailscale ping %s: %s", ip, reading)
    return reading


class PathPinger:
    """Readings per node id, each peer pinged at most once per `every_s` (0: every call)."""

    def __init__(
        self,
        cli: str | None,
        *,
        every_s: float = 0.0,
        mono: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cli = cli
        self._every_s = every_s
        self._mono = mono
        self._clock = clock
        self._last: dict[str, tuple[str, float, PathReading]] = {}  # id -> (ip, mono, reading)

    async def readings(self, peers: Mapping[str, str], timeout_s: float) -> dict[str, PathReading]:
        """Ping the due peers of `peers` (node id -> Tailscale IP, the online ones)
        concurrently; the readings of all of them, fresh or from the last minute."""
        if self._cli is None:
            return {}
        cli = self._cli
        now = self._mono()
        due = {
            node_id: ip
            for node_id, ip in peers.items()
            if node_id not in self._last
            or self._last[node_id][0] != ip
            or now - self._last[node_id][1] >= self._every_s
        }
        if due:
            # A TaskGroup, not gather: cancelled, it waits until every ping has killed its
            # CLI (gather would return at the first one, leaving the others behind).
            async with asyncio.TaskGroup() as group:
                pings = [
                    group.create_task(ping_peer(cli, ip, timeout_s, clock=self._clock))
                    for ip in due.values()
                ]
            for (node_id, ip), ping in zip(due.items(), pings, strict=True):
                self._last[node_id] = (ip, now, ping.result())
        for gone in set(self._last) - set(peers):  # offline or left: no stale path shown
            del self._last[gone]
        return {node_id: self._last[node_id][2] for node_id in peers}
