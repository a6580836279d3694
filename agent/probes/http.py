"""The HTTP probe, and the one shared httpx client all HTTP probes of a sweep use.

GET http://host:port{path}: UP when the status is in `expect_status` (or, when
that is empty, below 400) and, if `expect_body` is set, the first 64 KiB of the
body contain it. Redirects are not followed (a 3xx is an answer). Something that
is not HTTP on the port is a PROTOCOL_MISMATCH.
"""

from __future__ import annotations

import time

import httpx

from agent.core.model import ProbeResult, ProbeState, ProbeTarget, Reason
from agent.probes._errors import Verdict, one_line
from agent.probes._run import USER_AGENT, Clock, guarded, url_host

__all__ = ["BODY_LIMIT", "USER_AGENT", "make_http_client", "probe"]

BODY_LIMIT = 64 * 1024  # bytes of the body searched for expect_body


def make_http_client() -> httpx.AsyncClient:
    """The client for a whole sweep (reuse it across sweeps too).

    No connection-count limit (500 concurrent probes never queue behind a pool),
    no keep-alive (every probe opens its own connection, so it measures connect +
    answer and holds no idle sockets between sweeps), certificates verified, no
    redirects, and no proxy or netrc from the environment (trust_env=False): a
    probe goes straight to the address it names. Timeouts are per request.
    """
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        timeout=httpx.Timeout(10.0),
        verify=True,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


def _url(target: ProbeTarget) -> str:
    path = target.service.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return f"http://{url_host(target.host)}:{target.service.port}{path}"


def _expected_text(expected: tuple[int, ...]) -> str:
    if not expected:
        return "< 400"
    codes = [str(code) for code in expected]
    return codes[0] if len(codes) == 1 else ", ".join(codes[:-1]) + " or " + codes[-1]


def _status_ok(status: int, expected: tuple[int, ...]) -> bool:
    return status in expected if expected else status < 400


async def _read_head_of_body(response: httpx.Response) -> str:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= BODY_LIMIT:
            break
    return bytes(body[:BODY_LIMIT]).decode(response.encoding or "utf-8", errors="replace")


async def _attempt(target: ProbeTarget, client: httpx.AsyncClient) -> Verdict:
    service = target.service
    async with client.stream("GET", _url(target), timeout=target.timeout_s) as response:
        status = response.status_code
        if not _status_ok(status, service.expect_status):
            expected = _expected_text(service.expect_status)
            return ProbeState.DOWN, Reason.HTTP_STATUS, f"HTTP {status} (expected {expected})"
        if service.expect_body is not None:
            body = await _read_head_of_body(response)
            if service.expect_body not in body:
                wanted = one_line(service.expect_body, 60)
                return ProbeState.DOWN, Reason.BODY_MISMATCH, f"body does not contain {wanted!r}"
        return ProbeState.UP, None, f"HTTP {status}"


async def probe(
    target: ProbeTarget, client: httpx.AsyncClient | None = None, *, clock: Clock = time.time
) -> ProbeResult:
    """Probe one HTTP service. Pass the sweep's shared client; without one, a client is
    made (and closed) for this probe alone, which costs far more CPU."""
    if client is not None:
        shared = client
        return await guarded(target, lambda: _attempt(target, shared), clock=clock)
    async with make_http_client() as own:
        return await guarded(target, lambda: _attempt(target, own), clock=clock)
