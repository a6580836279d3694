"""The HTTP probe's plain path (`http._plain_request` + `_transport.plain_get`) against httpx's.

A target on an IPv4 address or a lower-case name with an unreserved path skips httpx's client;
these tests hold it to what httpx would have done: the same request bytes on the wire, the
same head for any host and path it accepts (and it declines the rest), and the same result,
fact line and evidence for every kind of answer, read through real loopback sockets.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from dataclasses import replace

import h11
import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent.core.model import ProbeResult
from agent.edges.probes import _client, http, make_http_client
from tests.fuzz.settings import fuzz
from tests.probes.support import fixed_clock, target
from tests.probes.test_transport import WAIT_S, Scripted, reply, scripted_server

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _serialized(request: h11.Request) -> bytes:
    return h11.Connection(h11.CLIENT).send(request) or b""


def _httpx_head(client: httpx.AsyncClient, host: str, port: int, path: str) -> bytes:
    """The head httpx's client builds for the probe's URL, as h11 (httpx's own writer) writes
    it: the reference the plain path's hand-written head is held to."""
    built = client.build_request("GET", _client.probe_url(host, port, path))
    return _serialized(
        h11.Request(method=b"GET", target=built.url.raw_path, headers=built.headers.raw)
    )


def _plain_head(client: _client.ProbeClient, host: str, port: int, path: str) -> bytes | None:
    return http._plain_request(host, port, path, client.headers.raw)


# ==== the head =================================================================


def test_the_plain_path_puts_the_same_bytes_on_the_wire_as_httpx() -> None:
    async def both(port: int, path: str) -> None:
        async with make_http_client() as client:
            assert isinstance(client, _client.ProbeClient)
            await http.probe(target("http", ("127.0.0.1", port), path=path), client)
            url = _client.probe_url("127.0.0.1", port, path)
            await client.get(url)  # through httpx's client and ProbeTransport

    for path in ("/health", "", "status/ok", "/a/b-c_d.e~f/"):
        with scripted_server(reply(OK)) as ((_, port), seen):
            asyncio.run(both(port, path))
        assert len(seen.heads) == 2
        assert seen.heads[0] == seen.heads[1], path


_hosts = st.one_of(
    st.sampled_from(["127.0.0.1", "localhost", "LocalHost", "::1", "10.0.0.256", "01.2.3.4"]),
    st.sampled_from(["node-1.tail.ts.net", "xn--bcher-kva.example", "a_b", "a.1", "-a", "é.x"]),
    st.from_regex(r"[a-z0-9.\-]{1,20}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
)
_paths = st.one_of(
    st.sampled_from(["", "/", "/health", "a", "/a/../b", "/./x", "/x/.", "/..", "/.well-known"]),
    st.sampled_from(["/q?x=1", "/a%20b", "/a b", "/é", "/a#frag", "//double", "/~user"]),
    st.text(alphabet="abz09/._~-%?#é ", max_size=20),
)


@fuzz
@given(host=_hosts, port=st.sampled_from([80, 443, 8080, 65535]), path=_paths)
@example(host="127.0.0.1", port=80, path="/health")
@example(host="localhost", port=11434, path="/api/tags")
def test_a_plain_head_is_the_head_httpx_builds(host: str, port: int, path: str) -> None:
    client = make_http_client()
    assert isinstance(client, _client.ProbeClient)
    plain = _plain_head(client, host, port, path)
    if plain is None:
        return  # declined: the probe goes through httpx
    assert plain == _httpx_head(client, host, port, path)


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("127.0.0.1", "/health"),
        ("localhost", "/api/tags"),
        ("node-1.tail.ts.net", "/"),
        ("127.0.0.1", ""),
    ],
)
def test_ordinary_targets_take_the_plain_path(host: str, path: str) -> None:
    assert _plain_head(make_http_client(), host, 8000, path) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("127.0.0.1", "/health?full=1"),  # a query
        ("127.0.0.1", "/a%20b"),  # percent-escapes
        ("127.0.0.1", "/a/../b"),  # dot segments, which httpx removes
        ("::1", "/health"),  # IPv6
        ("LocalHost", "/"),  # httpx lower-cases names
        ("xn--bcher-kva.example", "/"),  # IDNA
        ("999.1.1.1", "/"),  # not an address, and httpx says so
    ],
)
def test_anything_httpx_would_rewrite_or_refuse_goes_through_httpx(host: str, path: str) -> None:
    assert _plain_head(make_http_client(), host, 8000, path) is None  # type: ignore[arg-type]


# ==== the result ===============================================================

_GZIP_BODY = gzip.compress(b"status: ok")
ANSWERS = {
    "up": OK,
    "503 with a body": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\n\r\nsecret=hi",
    "302": b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n",
    "gzip body": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
    + str(len(_GZIP_BODY)).encode()
    + b"\r\n\r\n"
    + _GZIP_BODY,
    "not gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nokay",
    "latin-1": b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain; charset=latin-1\r\n"
    b"Content-Length: 5\r\n\r\ncaf\xe9!",
    "cut body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstatus",
    "not http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "nothing": b"",
    "101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    "100 then 200": b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
}


def _probe(path: str, answer: bytes, **service: object) -> tuple[ProbeResult, Scripted]:
    async def run(port: int) -> ProbeResult:
        async with make_http_client() as client:
            t = target("http", ("127.0.0.1", port), path=path, timeout=2.0, **service)
            return await http.probe(t, client, clock=fixed_clock)

    with scripted_server(reply(answer)) as ((_, port), seen):
        return asyncio.run(run(port)), seen


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize("expect_body", [None, "status: ok"])
def test_the_plain_path_finds_what_the_httpx_path_finds(name: str, expect_body: str | None) -> None:
    assert http._plain_request("127.0.0.1", 8000, "/p", []) is not None
    assert http._plain_request("127.0.0.1", 8000, "/p?via=httpx", []) is None
    plain, _ = _probe("/p", ANSWERS[name], expect_body=expect_body)
    through_httpx, _ = _probe("/p?via=httpx", ANSWERS[name], expect_body=expect_body)
    assert plain.latency_ms is not None and through_httpx.latency_ms is not None
    # every field but the latency (the time each took)
    assert replace(plain, latency_ms=None) == replace(through_httpx, latency_ms=None)


def test_the_plain_path_hangs_up_on_an_endless_body_once_it_has_the_status() -> None:
    # No length: the body lasts until the server closes, which this one never does.
    def endless(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nstreaming")
        if conn.recv(4096) == b"":
            seen.hung_up.set()

    with scripted_server(endless) as ((host, port), seen):
        result, _ = _probe_at(host, port)
        assert seen.hung_up.wait(WAIT_S)
    assert result.detail == "HTTP 200"


def _probe_at(host: str, port: int) -> tuple[ProbeResult, None]:
    async def run() -> ProbeResult:
        async with make_http_client() as client:
            t = target("http", (host, port), path="/s")
            return await http.probe(t, client, clock=fixed_clock)

    return asyncio.run(run()), None
