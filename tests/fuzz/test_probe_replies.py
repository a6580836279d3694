"""Every probe, and the details readers, fed hostile replies over a real loopback socket.

Each example starts a loopback server (tests/fuzz/replies.py) that reads the probe's
request and answers with bytes built from real answers (an HTTP response, `+PONG`, a
PostgreSQL 'S', a WebSocket 101 with the right accept key, Redis INFO, a PostgreSQL
start-up) and then mutated: truncated, spliced, oversized, wrong lengths, random bytes,
sent in pieces, the connection closed or half-closed after. A probe must come back UP or
DOWN with a reason and a one-line fact, never UNKNOWN "error" (an exception it did not
expect); a details reader gives well-formed details or none, and reads a well-formed
answer right.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from agent.core.model import CheckKind, DetailValue, ProbeResult, ProbeState, ProbeTarget
from agent.edges.probes import PROBES, make_http_client
from agent.edges.probes.details import STARTUP_MESSAGE, fetch_details
from agent.edges.probes.redis import PING
from agent.edges.probes.websocket import accept_for
from tests.fuzz.documents import edited_bytes
from tests.fuzz.replies import Reply, answer, replies
from tests.fuzz.settings import fuzz
from tests.probes.support import fixed_clock, target

Details = tuple[tuple[str, DetailValue], ...]
TIMEOUT_S = 3.0  # every reply ends the connection, so no example waits for this


def _whole_http_head(request: bytes) -> bool:
    return b"\r\n\r\n" in request


def _probe(
    kind: CheckKind,
    reply: Reply | Callable[[bytes], Reply],
    done: Callable[[bytes], bool],
    **service: Any,
) -> ProbeResult:
    async def call(port: int) -> ProbeResult:
        t: ProbeTarget = target(kind, ("127.0.0.1", port), timeout=TIMEOUT_S, **service)
        if kind is CheckKind.HTTP:
            async with make_http_client() as client:
                return await PROBES[kind](t, client, clock=fixed_clock)
        return await PROBES[kind](t, None, clock=fixed_clock)

    return asyncio.run(answer(reply, done, call))


def _is_a_finding(result: ProbeResult) -> None:
    assert result.state in (ProbeState.UP, ProbeState.DOWN), result
    assert (result.reason is None) is (result.state is ProbeState.UP), result
    assert result.detail.strip() and "\n" not in result.detail, result
    assert result.latency_ms is not None


def _maybe_edited(base: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return base | base.flatmap(edited_bytes)


# ==== HTTP ======================================================================

_STATUS_LINES = st.sampled_from(
    [b"HTTP/1.1 200 OK", b"HTTP/1.0 204 No Content", b"HTTP/1.1 503 Service Unavailable",
     b"HTTP/1.1 302 Found", b"HTTP/1.1 101 Switching Protocols", b"HTTP/1.1 999 Odd",
     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", b"HTTP/1.1 000 zero", b"HTTP/2 200",
     b"HTTP/1.1 200", b"HTTP/1.1 2000 OK", b"ICY 200 OK", b"SSH-2.0-OpenSSH_9.6",
     b"+PONG", b"\x16\x03\x01\x02\x00", b"HTTP/1.1 200 \xff\xfe", b""]
)  # fmt: skip
_BODIES = st.sampled_from(
    [b"", b"ok", b"status: ok\n", gzip.compress(b"status: ok"), zlib.compress(b"ok"),
     b"2\r\nok\r\n0\r\n\r\n", b"zz\r\nok\r\n", b"ffffffffffffffffff\r\n", b"\xff" * 10,
     b"x" * 300_000, "état: prêt ✓".encode(), "ok".encode("utf-16")]
) | st.binary(max_size=64)  # fmt: skip


@st.composite
def _headers(draw: st.DrawFn, body: bytes) -> list[bytes]:
    length = draw(
        st.sampled_from([str(len(body)), "0", "5", "99999999999999999999", "-1", "abc", "1,2"])
    )
    choices = st.sampled_from(
        [b"Content-Length: " + length.encode(), b"Transfer-Encoding: chunked",
         b"Transfer-Encoding: gzip, chunked", b"Content-Encoding: gzip",
         b"Content-Encoding: deflate", b"Content-Encoding: br", b"Content-Encoding: zstd",
         b"Content-Encoding: gzip, gzip", b"Content-Encoding: x-unknown",
         b"Content-Type: text/plain; charset=utf-16", b"Content-Type: text/plain; charset=bogus",
         b"Content-Type: text/plain; charset=\xff", b"Connection: close", b"Connection: keep-alive",
         b"X-Long: " + b"a" * 120_000, b" folded continuation", b"No-Colon-Here", b"\xc3\xa9: v",
         b"Set-Cookie: a=b; Max-Age=abc"]
    )  # fmt: skip
    return draw(st.lists(choices | st.binary(max_size=30), max_size=5))


@st.composite
def _http_replies(draw: st.DrawFn) -> bytes:
    body = draw(_BODIES)
    head = [draw(_STATUS_LINES), *draw(_headers(body))]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_EXPECT = st.sampled_from(
    [{}, {"expect_status": (200,)}, {"expect_body": "ok"}, {"expect_status": (204, 503)}]
)


@fuzz
@given(replies(_maybe_edited(_http_replies())), _EXPECT)
@example(Reply(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip"), {}).via(
    "a gzip body that is not gzip, and no body wanted"
)
@example(
    Reply(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip"), {"expect_body": "ok"}
).via("found: a gzip body that is not gzip gave UNKNOWN 'DecodingError: ...'")
@example(Reply(b"HTTP/1.1 503 No\r\nContent-Encoding: deflate\r\n\r\nnot deflate"), {}).via(
    "a failing answer whose body cannot be decoded: its excerpt is left out"
)
def test_http_probe_reads_any_reply(reply: Reply, expect: dict[str, object]) -> None:
    _is_a_finding(_probe(CheckKind.HTTP, reply, _whole_http_head, **expect))


# ==== Redis and PostgreSQL ========================================================

_REDIS_REPLIES = st.sampled_from(
    [b"+PONG\r\n", b"-NOAUTH Authentication required.\r\n", b"-ERR unknown command\r\n",
     b"-LOADING Redis is loading the dataset in memory\r\n", b"$4\r\nPONG\r\n", b":1\r\n",
     b"+" + b"x" * 600, b"+PO", b"-", b"+", b"+\xff\xfe\r\n", b"HTTP/1.1 400 Bad Request\r\n\r\n",
     b"-DENIED Redis is running in protected mode\r\n" * 40, b""]
) | st.binary(max_size=64)  # fmt: skip


@fuzz
@given(replies(_maybe_edited(_REDIS_REPLIES)))
def test_redis_probe_reads_any_reply(reply: Reply) -> None:
    result = _probe(CheckKind.REDIS, reply, lambda r: len(r) >= len(PING))
    _is_a_finding(result)


_PG_ERROR = b"E" + struct.pack("!I", 40) + b"SFATAL\0C0A000\0Munsupported frontend\0\0"
_PG_REPLIES = st.sampled_from(
    [b"S", b"N", _PG_ERROR, b"SN", b"E", b"N" * 64, b"HTTP/1.1 400 Bad Request\r\n\r\n", b""]
) | st.binary(max_size=80)


@fuzz
@given(replies(_maybe_edited(_PG_REPLIES)))
def test_postgres_probe_reads_any_reply(reply: Reply) -> None:
    _is_a_finding(_probe(CheckKind.POSTGRES, reply, lambda r: len(r) >= 8))


# ==== WebSocket ==================================================================

_ACCEPT = b"{accept}"
_WS_REPLIES = st.sampled_from(
    [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Accept: " + _ACCEPT + b"\r\n\r\n",
     b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + _ACCEPT + b"\r\n\r\n"
     b"\x88\x02\x03\xe8",
     b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
     b"HTTP/1.1 101 Switching Protocols\r\n\r\n", b"HTTP/1.1 404 Not Found\r\n\r\nnope",
     b"HTTP/1.1 426 Upgrade Required\r\n\r\n", b"HTTP/1.1 101", b"HTTP/",
     b"HTTP/1.1 101 OK\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", b"HTTP/1.1 1O1 OK\r\n\r\n",
     b"HTTP/1.1 \xff\xff OK\r\n\r\n", b"+PONG\r\n", b""]
) | st.binary(max_size=64)  # fmt: skip


def _ws_key(request: bytes) -> str:
    match = re.search(rb"Sec-WebSocket-Key: ([A-Za-z0-9+/=]+)\r\n", request)
    return match.group(1).decode() if match else ""


@fuzz
@given(replies(_maybe_edited(_WS_REPLIES)))
def test_websocket_probe_reads_any_reply(reply: Reply) -> None:
    def with_accept(request: bytes) -> Reply:
        accept = accept_for(_ws_key(request)).encode()
        return Reply(reply.data.replace(_ACCEPT, accept), reply.cuts, reply.half_close)

    result = _probe(CheckKind.WEBSOCKET, with_accept, _whole_http_head, path="/ws")
    _is_a_finding(result)


# ==== the details readers =========================================================

_INFO_SERVER = b"# Server\r\nredis_version:7.2.4\r\nredis_mode:standalone\r\nos:Darwin\r\n"
_INFO_REPLICATION = b"# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"


def _bulk(text: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(text), text)


_REDIS_INFO = _bulk(_INFO_SERVER) + _bulk(_INFO_REPLICATION)


def _details(kind: CheckKind, reply: Reply, done: Callable[[bytes], bool]) -> Details:
    async def call(port: int) -> Details:
        t = target(kind, ("127.0.0.1", port), timeout=TIMEOUT_S, name="svc")
        return await fetch_details(t, None)

    return asyncio.run(answer(reply, done, call))


def _well_formed(details: Details, names: set[str]) -> dict[str, DetailValue]:
    found = dict(details)
    assert set(found) <= names, details
    for value in found.values():
        assert isinstance(value, str) and value and len(value) <= 80, details
        assert value == " ".join(value.split()), details
    return found


@fuzz
@given(
    replies(
        st.just(_REDIS_INFO)
        | st.sampled_from([b"$-1\r\n", b"$99999999999\r\n", b"$abc\r\n", b"-NOAUTH x\r\n"])
        | st.just(_REDIS_INFO).flatmap(edited_bytes)
    )
)
def test_redis_details_read_any_reply(reply: Reply) -> None:
    details = _details(CheckKind.REDIS, reply, lambda r: r.endswith(b"replication\r\n"))
    found = _well_formed(details, {"version", "role"})
    if reply.data == _REDIS_INFO:
        assert found == {"version": "7.2.4", "role": "master"}


def _pg_message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


_PG_STARTUP_REPLY = (
    _pg_message(b"R", b"\0\0\0\0")
    + _pg_message(b"S", b"client_encoding\0UTF8\0")
    + _pg_message(b"S", b"server_version\x0016.4 (Homebrew)\0")
    + _pg_message(b"K", b"\0\0\0\x01\0\0\0\x02")
    + _pg_message(b"Z", b"I")
)


@fuzz
@given(
    replies(
        st.just(_PG_STARTUP_REPLY)
        | st.sampled_from([_pg_message(b"R", b"\0\0\0\x05abcd"), _PG_ERROR, b"S", b""])
        | st.just(_PG_STARTUP_REPLY).flatmap(edited_bytes)
    )
)
def test_postgres_details_read_any_reply(reply: Reply) -> None:
    details = _details(CheckKind.POSTGRES, reply, lambda r: len(r) >= len(STARTUP_MESSAGE))
    found = _well_formed(details, {"server_version"})
    if reply.data == _PG_STARTUP_REPLY:
        assert found == {"server_version": "16.4 (Homebrew)"}
