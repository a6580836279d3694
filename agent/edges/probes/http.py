"""The HTTP probe, and the one shared httpx client all HTTP probes of a sweep use.

GET http://host:port{path}: UP when the status is in `expect_status` (or, when
that is empty, below 400) and, if `expect_body` is set, the first 64 KiB of the
body contain it (a body cut off by the service is a BODY_MISMATCH: it answered in HTTP, so no
protocol mismatch). Redirects are not followed (a 3xx is an answer). Something that
is not HTTP on the port is a PROTOCOL_MISMATCH.

The shared client (`make_http_client`) is a `ProbeClient`: an httpx.AsyncClient
over `_transport.ProbeTransport` (a fresh connection per request, no pool) that
keeps no cookies. With that client, a target whose URL needs no parsing (an IPv4 address
or a lower-case ASCII name, a path of unreserved characters) skips httpx's client, request
and URL objects: `_plain_request` writes the head httpx would send (Host, then the client's
headers, byte for byte) and `_transport.plain_get` sends it; the answer becomes an
httpx.Response only when its body is read (expect_body, or a failing answer's excerpt), so
decoding and charset stay httpx's. Every other URL goes through the client as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import time
from collections.abc import Callable
from http.cookiejar import Cookie, CookieJar

import h11
import httpx

from agent.core.model import ProbeResult, ProbeState, ProbeTarget, Reason
from agent.edges.probes._errors import Finding, one_line
from agent.edges.probes._run import USER_AGENT, Clock, guarded, record_answer, url_host
from agent.edges.probes._transport import ProbeTransport, plain_get

__all__ = ["BODY_LIMIT", "USER_AGENT", "ProbeClient", "make_http_client", "probe"]

BODY_LIMIT = 64 * 1024  # bytes of the body searched for expect_body
EXCERPT_BYTES = 1024  # bytes of a failing answer's body read as evidence
EXCERPT_WAIT_S = 0.5  # at most this long for them


class _KeepNothing(CookieJar):
    """A cookie jar that drops every cookie it is given."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """Always empty; a response's Set-Cookie headers are not even parsed."""

    def __init__(self) -> None:
        super().__init__(_KeepNothing())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()

# What httpx's URL parser leaves as it is (lower-case ASCII names; IPv4 addresses are
# checked apart) and its path quoting does not touch: only these skip httpx.
_PLAIN_NAME = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z](?:[a-z0-9-]*[a-z0-9])?)*")
_PLAIN_PATH = re.compile(r"/?[A-Za-z0-9._~/-]*")


class ProbeClient(httpx.AsyncClient):
    """The shared probe client: an httpx.AsyncClient that keeps no cookies.

    A probe never sends what an earlier answer set (each result depends on the
    service alone, not on the sweeps before), and the client holds no state that
    grows over a long run. It also spares every response the cookie parsing.
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise AttributeError("a probe client keeps no cookies")


def make_http_client() -> httpx.AsyncClient:
    """The client for a whole sweep (reuse it across sweeps too).

    Its transport (`_transport.ProbeTransport`) opens a fresh connection for
    every request and closes it with the response: no connection pool and no
    connection-count limit (500 concurrent probes never queue behind a pool), no
    keep-alive (every probe measures connect + answer and holds no idle socket
    between sweeps). No redirects, and no proxy or netrc from the environment
    (trust_env=False): a probe goes straight to the address it names. https
    (never sent by the probe itself) goes through httpx's own transport with
    certificates verified, built on first use. Timeouts are per request.
    """
    return ProbeClient(
        transport=ProbeTransport(),
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


@functools.lru_cache(maxsize=1024)
def _url(host: str, port: int, path: str) -> httpx.URL:
    """The URL a target's probe fetches, parsed once (httpx's URL parsing is not cheap)."""
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return httpx.URL(f"http://{url_host(host)}:{port}{path}")


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
    host: str, port: int, path: str, client_headers: list[tuple[bytes, bytes]]
) -> h11.Request | None:
    """The GET head httpx would send for this target, or None when its URL needs httpx's
    parsing (anything but a plain host and an unreserved path)."""
    if not _is_plain_host(host) or not _is_plain_path(path) or not 0 < port < 65536:
        return None
    if not path.startswith("/"):
        path = "/" + path
    netloc = host if port == 80 else f"{host}:{port}"  # httpx leaves out the default port
    headers = [(b"Host", netloc.encode("ascii")), *client_headers]
    return h11.Request(method=b"GET", target=path.encode("ascii"), headers=headers)


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
        try:
            body = await _read_head_of_body(open_response())
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # It answered in HTTP, then hung up: no protocol mismatch, an unhealthy service.
            detail = f"HTTP {status}, then the connection closed in the middle of the body"
            return ProbeState.DOWN, Reason.BODY_MISMATCH, detail
        if service.expect_body not in body:
            record_answer(status, body[:EXCERPT_BYTES])
            wanted = one_line(service.expect_body, 60)
            return ProbeState.DOWN, Reason.BODY_MISMATCH, f"body does not contain {wanted!r}"
    return ProbeState.UP, None, f"HTTP {status}"


async def _attempt(target: ProbeTarget, client: httpx.AsyncClient) -> Finding:
    service = target.service
    if isinstance(client, ProbeClient):
        request = _plain_request(target.host, service.port, service.path, client.headers.raw)
        if request is not None:
            return await _attempt_plain(target, request)
    url = _url(target.host, service.port, service.path)
    async with client.stream("GET", url, timeout=target.timeout_s) as response:
        return await _judge(target, response.status_code, lambda: response)


async def _attempt_plain(target: ProbeTarget, request: h11.Request) -> Finding:
    answer = await plain_get(target.host, target.service.port, request, target.timeout_s)
    try:
        return await _judge(target, answer.status_code, answer.response)
    finally:
        answer.close()


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
