"""The wire's answer reader (httptools: llhttp) beside h11, httpx's own parser, on the same bytes.

Every HTTP answer of tests/fuzz/http_replies.py, as it is or edited, is sent over a real
loopback socket (whole or in pieces, then closed or half-closed) to `_wire.plain_get`, whose
body is read raw through the httpx.Response it makes; the same bytes, then the end of the
stream, go to an h11 client. Both must refuse the head, or read the same status and headers
and then the same body bytes, whole or cut at the same point.

The two differ on purpose in three ways, each named by `_known_difference` and kept out:
llhttp refuses a repeated Content-Length (h11 takes it when the values agree) and one too
large for 64 bits (h11 takes the head and finds the body cut), and skips empty lines
before the status line (h11 refuses them). Each is an answer no working service gives.
Heads over 64 KiB are kept out too: both refuse a head once more than 100 KiB of it is
waiting, so whether a head of 64 to 164 KiB passes depends on how its bytes arrive.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import h11
import httpx
from hypothesis import assume, example, given

from agent.edges.probes._errors import WireRemoteProtocolError
from agent.edges.probes._wire import plain_get, request_head
from tests.fuzz.documents import maybe_edited
from tests.fuzz.http_replies import http_replies
from tests.fuzz.replies import Reply, answer, replies
from tests.fuzz.settings import fuzz

TIMEOUT_S = 3.0  # every reply ends the connection, so no example waits for this
HEAD_LIMIT = 100 * 1024  # the wire's, and httpcore's, largest head


@dataclass(frozen=True)
class Reading:
    """What a parser made of an answer: None for a refused head."""

    head: tuple[int, tuple[tuple[bytes, bytes], ...]] | None
    body: bytes = b""
    whole: bool = False


def _header_lines(
    head: tuple[int, list[tuple[bytes, bytes]]],
) -> tuple[int, tuple[tuple[bytes, bytes], ...]]:
    # h11 folds a continuation line into one space and strips the value; llhttp keeps a tab
    status, headers = head
    return status, tuple((name, b" ".join(value.split())) for name, value in headers)


def _by_h11(data: bytes) -> Reading:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_LIMIT)
    conn.send(h11.Request(method=b"GET", target=b"/", headers=[(b"Host", b"x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    conn.receive_data(b"")
    try:
        event = conn.next_event()
        while isinstance(event, h11.InformationalResponse):
            event = conn.next_event()
        if not isinstance(event, h11.Response):
            return Reading(None)
    except h11.RemoteProtocolError:
        return Reading(None)
    head = _header_lines((event.status_code, event.headers.raw_items()))
    body = b""
    try:
        while isinstance(event := conn.next_event(), h11.Data):
            body += event.data
    except h11.RemoteProtocolError:
        return Reading(head, body, whole=False)
    return Reading(head, body, whole=isinstance(event, h11.EndOfMessage))


async def _by_wire(port: int) -> Reading:
    request = request_head(b"GET", b"/", [(b"Host", b"x")])
    try:
        plain = await plain_get("127.0.0.1", port, request, TIMEOUT_S)
    except WireRemoteProtocolError:
        return Reading(None)
    response = plain.response()
    head = _header_lines((plain.status_code, list(response.headers.raw)))
    body = b""
    try:
        async for chunk in response.aiter_raw():
            body += chunk
    except httpx.RemoteProtocolError:
        return Reading(head, body, whole=False)
    finally:
        plain.close()
    return Reading(head, body, whole=True)


_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*(\S*)")


def _known_difference(data: bytes) -> bool:
    heads = data[: data.rfind(b"\r\n\r\n")]  # an interim answer's head too
    lengths = _CONTENT_LENGTH.findall(heads)
    return (
        len(heads) > 64 * 1024
        or len(lengths) > 1
        or any(len(value) > 18 and value.isdigit() for value in lengths)
        or data.startswith((b"\r\n", b"\n"))
    )


def _whole_head(request: bytes) -> bool:
    return b"\r\n\r\n" in request


@fuzz
@given(replies(maybe_edited(http_replies())))
@example(Reply(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")).via("bare LF line ends")
@example(Reply(b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\nok")).via(
    "a folded header line"
)
@example(Reply(b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n")).via(
    "a control character in a header value"
)
@example(Reply(b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n")).via("NUL")
@example(
    Reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    )
).via("chunked beside a Content-Length")
@example(Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
@example(Reply(b"HTTP/1.1 000 zero\r\nContent-Length: 0\r\n\r\n")).via("status 0")
@example(Reply(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")).via("a 101 nobody asked for")
@example(Reply(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
@example(Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")).via("bytes after it")
@example(Reply(b"HTTP/1.0 200 OK\r\n\r\nuntil the close", cuts=(5, 20))).via("close-delimited")
@example(Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ncut", half_close=True))
def test_the_wire_reads_an_answer_as_h11_does(reply: Reply) -> None:
    assume(not _known_difference(reply.data))
    ours = asyncio.run(answer(reply, _whole_head, _by_wire))
    assert ours == _by_h11(reply.data)
