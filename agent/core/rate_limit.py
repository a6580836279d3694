"""Request rates of the listening endpoints: a token bucket per client address.

Pure (the caller passes the time). `ClientRates.allow(client, now)` is True while `client`
stays under `rate_per_s` requests a second on average, with bursts of up to `burst`; at
most `clients_max` clients are remembered (the least recent are forgotten, so a flood of
addresses cannot grow it). Used by the share-view and metrics endpoints alike.
"""

from __future__ import annotations

import threading

__all__ = ["BURST", "RATE_PER_S", "ClientRates"]

RATE_PER_S = 5.0
BURST = 20.0
_CLIENTS_MAX = 256


class ClientRates:
    """Token buckets by client; safe to call from the server's request threads."""

    def __init__(
        self, rate_per_s: float = RATE_PER_S, burst: float = BURST, clients_max: int = _CLIENTS_MAX
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clients_max = clients_max
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def allow(self, client: str, now: float) -> bool:
        """Take one request's token from `client`'s bucket; False when it has none left."""
        with self._lock:
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate_per_s)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self.clients_max:
                del self._buckets[next(iter(self._buckets))]
        return allowed
