"""Path latency the runbook's way: what `tailscale ping` printed, as a PathReading, and its words.

Pure. The CLI has no JSON output for ping (ts: cmd/tailscale/cli/ping.go, which prints
`pong from NAME (IP[, PEERAPIPORT]) via VIA in LATENCY`); VIA is `DERP(fra)` through a
DERP relay, `peer-relay(ip:port:vni:N)` through a peer relay (v1.86+, ts PR #16515), the
peer's `ip:port` on a direct path, or the ping type (`disco`, `TSMP`) when the daemon did
not say. LATENCY is a Go duration rounded to the millisecond ("1ms", "38ms", "1.204s",
"0s"). Without a pong it prints `ping "IP" timed out` and ends with "no reply" (exit 1).
Recorded lines: tests/fixtures/tailscale/ping/.

`parse_ping` turns the output into a PathReading; `describe_path` gives the link line's
words: "direct 192.168.219.100:64094 · 1 ms", "via DERP fra · 38 ms".
"""

from __future__ import annotations

import re

from agent.core.model import Link, PathReading

__all__ = ["describe_path", "parse_go_duration", "parse_ping"]

_PONG = re.compile(
    r"^pong from (?P<name>\S*) \((?P<ip>[^),]*)(?:, \d+)?\) via (?P<via>\S+) in (?P<took>\S+)$"
)
_DERP = re.compile(r"^DERP\((?P<region>[^)]*)\)$")
_PEER_RELAY = re.compile(r"^peer-relay\((?P<relay>[^)]*)\)$")
_GO_UNITS = {
    "h": 3_600_000.0,
    "m": 60_000.0,
    "s": 1000.0,
    "ms": 1.0,
    "us": 1e-3,
    "µs": 1e-3,
    "μs": 1e-3,
    "ns": 1e-6,
}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|μs|ns)")
_DETAIL_MAX = 160


def parse_go_duration(text: str) -> float | None:
    """A Go time.Duration as String() writes it, in ms: "38ms" -> 38.0, "1m2.5s" -> 62500.0,
    "0s" -> 0.0; None for anything else."""
    if text == "0s" or text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _GO_PART.match(text, pos)
        if match is None:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return total if pos else None


def _via(via: str) -> tuple[Link, str]:
    derp = _DERP.match(via)
    if derp:
        return Link.RELAY, derp.group("region")
    relay = _PEER_RELAY.match(via)
    if relay:
        return Link.PEER_RELAY, relay.group("relay")
    if ":" in via:  # ip:port or [v6]:port: the direct UDP path
        return Link.DIRECT, via
    return Link.UNKNOWN, via  # the ping type: the daemon did not say which path


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line[:_DETAIL_MAX]
    return ""


def parse_ping(stdout: str, stderr: str = "", *, timeout_s: float, at: float = 0.0) -> PathReading:
    """The first pong in `stdout` as a reading; without one, why (a fact, no hint)."""
    for line in stdout.splitlines():
        match = _PONG.match(line.strip())
        if match is None:
            continue
        link, via = _via(match.group("via"))
        return PathReading(link, via, parse_go_duration(match.group("took")), "", at)
    if "timed out" in stdout or "no reply" in stderr:
        return PathReading(Link.UNKNOWN, error=f"no reply within {timeout_s:g} s", at=at)
    said = _first_line(stderr) or _first_line(stdout)
    return PathReading(Link.UNKNOWN, error=said or "tailscale ping printed no pong", at=at)


def _ms(latency_ms: float) -> str:
    """Ping's own precision is the millisecond: "1 ms", "38 ms", "<1 ms"."""
    return "<1 ms" if latency_ms < 0.5 else f"{latency_ms:.0f} ms"


def describe_path(reading: PathReading) -> str:
    """ "direct 192.168.219.100:64094 · 1 ms", "via DERP fra · 38 ms", "via peer relay
    10.0.0.5:7777:vni:1 · 5 ms", or "no pong: no reply within 3 s"."""
    if reading.latency_ms is None:
        return f"no pong: {reading.error}" if reading.error else "no pong"
    took = _ms(reading.latency_ms)
    match reading.link:
        case Link.DIRECT:
            return f"direct {reading.via} · {took}"
        case Link.RELAY:
            return f"via DERP {reading.via} · {took}" if reading.via else f"via DERP · {took}"
        case Link.PEER_RELAY:
            return f"via peer relay {reading.via} · {took}"
        case _:
            return f"pong in {took}"
