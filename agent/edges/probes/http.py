"""The HTTP probe, and the client all HTTP probes of a sweep share.

GET http://host:port{path}: UP when the status is in `expect_status` (or, when
that is empty, below 400) and, if `expect_body` is set, the first 64 KiB of the
body contain it (a body cut off by the service is a BODY_MISMATCH: it answered in HTTP, so no
protocol mismatch). Redirects are not followed (a 3xx is an answer). Something that
is not HTTP on the port is a PROTOCOL_MISMATCH.

A target whose URL needs no parsing (an IPv4 address or a lower-case ASCII name, a path of
unreserved characters) takes the plain path: `_plain_request` writes the head httpx would
send (Host, then `_run.REQUEST_HEADERS`, byte for byte) and `_wire.plain_get` sends it,
without httpx; the answer becomes an httpx.Response only when its body is read
(expect_body, or a failing answer's excerpt), so decoding and charset stay httpx's. Every
other URL goes through the shared httpx client (`_client.make_http_client`, a ProbeClient).
A sweep passes a `SharedClient`, which makes that client on first need: a sweep of plain
targets whose answers decide by their status never imports httpx (4 MiB of RSS, and a
twentieth of `check`'s start-up; docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from agent.core.model import ProbeResult, ProbeState, ProbeTarget, Reason
from agent.edges.probes._errors import Finding, one_line
from agent.edges.probes._run import REQUEST_HEADERS, USER_AGENT, Clock, guarded, record_answer
from agent.edges.probes._wire import plain_get, request_head

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BODY_LIMIT",
    "USER_AGENT",
    "HttpClient",
    "SharedClient",
    "httpx_client",
    "make_http_client",
    "probe",
]

BODY_LIMIT = 64 * 1024  # bytes of the body searched for expect_body
EXCERPT_BYTES = 1024  # bytes of a failing answer's body read as evidence
EXCERPT_WAIT_S = 0.5  # at most this long for them

# What httpx's URL parser leaves as it is (lower-case ASCII names; IPv4 addresses are
# checked apart) and its path quoting does not touch: only these skip httpx.
_PLAIN_NAME = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z](?:[a-z0-9-]*[a-z0-9])?)*")
_PLAIN_PATH = re.compile(r"/?[A-Za-z0-9._~/-]*")


def make_http_client() -> httpx.AsyncClient:
    """The shared probe client (`_client.make_http_client`); httpx is imported here."""
    from agent.edges.probes._client import make_http_client as make

    return make()


class SharedClient:
    """A sweep's HTTP client, made on first need (`get`), closed with `aclose`."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_http_client()
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


HttpClient: TypeAlias = "httpx.AsyncClient | SharedClient"
"""What an HTTP probe is given: the sweep's SharedClient, or an httpx client of the caller's."""


def httpx_client(client: HttpClient) -> httpx.AsyncClient:
    """The httpx client behind `client` (made now if it is a SharedClient's first need)."""
    return client.get() if isinstance(client, SharedClient) else client


def _plain_headers(client: HttpClient) -> Sequence[tuple[bytes, bytes]] | None:
    """The headers the plain path sends for `client`; None: its requests go through httpx
    (a client of the caller's own, whose headers and settings the plain path cannot know)."""
    if isinstance(client, SharedClient):
        return REQUEST_HEADERS
    built = sys.modules.get("agent.edges.probes._client")  # no ProbeClient without it
    if built is not None and isinstance(client, built.ProbeClient):
        raw: list[tuple[bytes, bytes]] = client.headers.raw
        return raw
    return None


def _expected_text(expected: tuple[int, ...]) -> str:
    if not expected:
        return "< 400"
    codes = [str(code) for code in expected]
    return codes[0] if len(codes) == 1 else ", ".join(codes[:-1]) + " or " + codes[-1]


def _status_ok(status: int, expected: tuple[int, ...]) -> bool:
    return status in expected if expected else status < 400


async def _read_head_of_body(response: httpx.Response, limit: int = BODY_LIMIT) -> str:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit]).decode(response.encoding or "utf-8", errors="replace")


async def _excerpt(response: httpx.Response) -> str:
    """The start of a failing answer's body, as evidence: read from the answer at hand (no
    further request) and only briefly, so a body that never comes does not turn the status
    into a timeout."""
    import httpx  # loaded: `response` is one of its objects

    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(EXCERPT_WAIT_S):
            return await _read_head_of_body(response, EXCERPT_BYTES)
    return ""


def _is_plain_host(host: str) -> bool:
    if "xn--" in host:
        return False  # IDNA: httpx decodes it
    if _PLAIN_NAME.fullmatch(host):
        return True
    return host.count(".") == 3 and _is_ipv4(host)


@functools.lru_cache(maxsize=1024)
def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _is_plain_path(path: str) -> bool:
    segments = path.split("/")
    # httpx removes dot segments ("/a/../b" is "/b"): those go through it
    return bool(_PLAIN_PATH.fullmatch(path)) and "." not in segments and ".." not in segments


def _plain_request(
    host: str, port: int, path: str, client_headers: Sequence[tuple[bytes, bytes]]
) -> bytes | None:
    """The GET head httpx would send for this target, as bytes, or None when its URL needs
    httpx's parsing (anything but a plain host and an unreserved path)."""
    if not _is_plain_host(host) or not _is_plain_path(path) or not 0 < port < 65536:
        return None
    if not path.startswith("/"):
        path = "/" + path
    netloc = host if port == 80 else f"{host}:{port}"  # httpx leaves out the default port
    headers = [(b"Host", netloc.encode("ascii")), *client_headers]
    return request_head(b"GET", path.encode("ascii"), headers)


async def _judge(
    target: ProbeTarget, status: int, open_response: Callable[[], httpx.Response]
) -> Finding:
    """The finding from an answer's status and, where it matters, its body: `open_response`
    gives the whole answer (called once, only when the body is read)."""
    service = target.service
    record_answer(status)
    if not _status_ok(status, service.expect_status):
        expected = _expected_text(service.expect_status)
        record_answer(status, await _excerpt(open_response()))
        return ProbeState.DOWN, Reason.HTTP_STATUS, f"HTTP {status} (expected {expected})"
    if service.expect_body is not None:
        response = open_response()
        import httpx  # loaded: `response` is one of its objects

        try:
            body = await _read_head_of_body(response)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # It answered in HTTP, then hung up: no protocol mismatch, an unhealthy service.
            detail = f"HTTP {status}, then the connection closed in the middle of the body"
            return ProbeState.DOWN, Reason.BODY_MISMATCH, detail
        if service.expect_body not in body:
            record_answer(status, body[:EXCERPT_BYTES])
            wanted = one_line(service.expect_body, 60)
            return ProbeState.DOWN, Reason.BODY_MISMATCH, f"body does not contain {wanted!r}"
    return ProbeState.UP, None, f"HTTP {status}"


async def _attempt(target: ProbeTarget, client: HttpClient) -> Finding:
    service = target.service
    headers = _plain_headers(client)
    if headers is not None:
        request = _plain_request(target.host, service.port, service.path, headers)
        if request is not None:
            return await _attempt_plain(target, request)
    from agent.edges.probes._client import probe_url

    url = probe_url(target.host, service.port, service.path)
    async with httpx_client(client).stream("GET", url, timeout=target.timeout_s) as response:
        return await _judge(target, response.status_code, lambda: response)


async def _attempt_plain(target: ProbeTarget, request: bytes) -> Finding:
    # No timeout of its own: guarded's deadline, the same timeout_s from the same start,
    # bounds the whole attempt (and two timers less per probe is a tenth of its CPU).
    answer = await plain_get(target.host, target.service.port, request, None)
    try:
        return await _judge(target, answer.status_code, answer.response)
    finally:
        answer.close()


async def probe(
    target: ProbeTarget, client: HttpClient | None = None, *, clock: Clock = time.time
) -> ProbeResult:
    """Probe one HTTP service. Pass the sweep's shared client; without one, a SharedClient
    is made (and closed) for this probe alone."""
    if client is not None:
        shared = client
        return await guarded(target, lambda: _attempt(target, shared), clock=clock)
    own = SharedClient()
    try:
        return await guarded(target, lambda: _attempt(target, own), clock=clock)
    finally:
        await own.aclose()
