"""Fetches the peers' shared views each sweep (`--share-view`): short timeouts, cached,
never required.

One GET of `http://<peer's Tailscale IP>:<port>/v1/view` per peer, all at once, each
bounded by FETCH_TIMEOUT_S and VIEW_MAX_BYTES. A peer is asked at most once per
MIN_REFETCH_S (the monitor re-checks suspected changes after a second); in between, and
when a fetch fails, its last good view is used while it is not stale. The reading is
agent.core.share_view's PeerReading: fresh, stale, unreachable or malformed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import httpx

from agent.core.plan import format_address
from agent.core.share_view import (
    VIEW_MAX_BYTES,
    VIEW_PATH,
    PeerReading,
    ViewStatus,
    parse_view,
)

__all__ = ["FETCH_TIMEOUT_S", "MIN_REFETCH_S", "PeerViews"]

FETCH_TIMEOUT_S = 1.5
MIN_REFETCH_S = 0.9  # under the 1 s recheck: a recheck reads the views afresh


class PeerViews:
    """The client side, with its cache of each peer's last good view."""

    def __init__(
        self,
        port: int,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self._wall = wall
        self._mono = mono
        self._good: dict[str, bytes] = {}
        self._last: dict[str, tuple[float, PeerReading]] = {}

    async def fetch(
        self, peers: Sequence[tuple[str, str]], *, max_age_s: float
    ) -> list[PeerReading]:
        """One reading per (node id, Tailscale IP), in order."""
        async with httpx.AsyncClient(
            timeout=FETCH_TIMEOUT_S, follow_redirects=False, trust_env=False
        ) as client:
            return list(
                await asyncio.gather(
                    *(self._one(client, node_id, ip, max_age_s) for node_id, ip in peers)
                )
            )

    async def _one(
        self, client: httpx.AsyncClient, node_id: str, ip: str, max_age_s: float
    ) -> PeerReading:
        last = self._last.get(node_id)
        if last is not None and self._mono() - last[0] < MIN_REFETCH_S:
            raw = self._good.get(node_id)
            if raw is None:
                return last[1]
            return parse_view(raw, node_id=node_id, now=self._wall(), max_age_s=max_age_s)
        reading = await self._get(client, node_id, ip, max_age_s)
        self._last[node_id] = (self._mono(), reading)
        return reading

    async def _get(
        self, client: httpx.AsyncClient, node_id: str, ip: str, max_age_s: float
    ) -> PeerReading:
        url = f"http://{format_address(ip, self.port)}{VIEW_PATH}"
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_S):
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        return self._fallback(node_id, f"HTTP {response.status_code}", max_age_s)
                    raw = b""
                    async for chunk in response.aiter_bytes():
                        raw += chunk
                        if len(raw) > VIEW_MAX_BYTES:
                            break
        except (httpx.HTTPError, OSError, TimeoutError) as error:
            return self._fallback(node_id, type(error).__name__, max_age_s)
        reading = parse_view(raw, node_id=node_id, now=self._wall(), max_age_s=max_age_s)
        if reading.status is ViewStatus.FRESH:
            self._good[node_id] = raw
        return reading

    def _fallback(self, node_id: str, why: str, max_age_s: float) -> PeerReading:
        """The last good view while it is fresh, else: unreachable."""
        raw = self._good.get(node_id)
        if raw is not None:
            cached = parse_view(raw, node_id=node_id, now=self._wall(), max_age_s=max_age_s)
            if cached.status is ViewStatus.FRESH:
                return cached
        return PeerReading(node_id, ViewStatus.UNREACHABLE, why)
