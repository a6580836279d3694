"""One plain HTTP/1.1 exchange on a fresh connection, without httpx: the wire under probes.

`plain_get(host, port, head, timeout)` connects with asyncio (a small BufferedProtocol, no
streams), writes a request head (`request_head`: the bytes h11 would write) and reads the
answer's head with httptools (llhttp, in C: a thirtieth of h11's cost per answer, and no
h11 import on `check`'s path); the `PlainAnswer` it returns keeps the body on the
connection and becomes an httpx.Response only when the body is wanted. `_transport`'s
ProbeTransport, under the httpx client, runs the same exchange for httpx requests.

Failures are `_errors`' WireErrors, one per httpx exception the same failure raises in
httpx's own transport (`WireConnectError` for httpx.ConnectError, and so on), chained to
the OS error that caused them; `_errors.classify` reads both kinds, and ProbeTransport
turns these into the httpx ones. So a sweep whose HTTP targets are all plain (`http._plain_request`)
never imports httpx: 4 MiB and a twentieth of check's start-up (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, cast

import httptools

from agent.edges.probes._errors import (
    WireConnectError,
    WireConnectTimeout,
    WireLocalProtocolError,
    WireReadError,
    WireReadTimeout,
    WireRemoteProtocolError,
    WireWriteError,
    WireWriteTimeout,
)
from agent.edges.probes._run import mark_connected

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AnswerHead",
    "Exchange",
    "PlainAnswer",
    "connect",
    "plain_get",
    "request_head",
]


_SCRATCH_SIZE = 64 * 1024
_READ_HIGH_WATER = 256 * 1024  # stop reading the socket while this much is unread
_MAX_HEAD = 100 * 1024  # the largest response head accepted (httpcore's limit)
_DISCONNECTED = "Server disconnected without sending a response."  # httpcore's words
_CUT_BODY = "the connection closed in the middle of the body"
_UNASKED_SWITCH = "101 Switching Protocols, which the request did not ask for"


# One receive buffer per thread (so per event loop), shared by all its connections. The
# loops (selector, proactor, uvloop) call get_buffer, fill it and call buffer_updated in
# one go, and buffer_updated copies the bytes out; a plain Protocol would instead get each
# read in a fresh bytes object sized for 256 KiB (1.8 MiB more peak RSS at 510 probes).
_local = threading.local()


def _scratch() -> bytearray:
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(_SCRATCH_SIZE)
    return buffer


@functools.lru_cache(maxsize=1024)
def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Wire(asyncio.BufferedProtocol):
    """One connection's bytes: buffers what arrives and wakes the one task waiting."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._drained: asyncio.Future[None] | None = None  # set while writing is paused

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass: no isinstance).
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> bytearray:
        return _scratch()

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(memoryview(_local.buffer)[:nbytes]))

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _READ_HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            assert self.transport is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- used by the exchange

    async def read(self, timeout: float | None) -> bytes:
        """What has arrived (waiting for it if nothing has), b"" at the end of the stream."""
        if not self._chunks and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError as exc:
                raise WireReadTimeout("timed out while reading the response") from exc
            finally:
                self._waiter = None
        if not self._chunks:
            if self._error is not None:
                raise WireReadError(str(self._error)) from self._error
            return b""
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._reading_paused:
            self._reading_paused = False
            assert self.transport is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
            self.transport.resume_reading()
        return data

    async def write(self, data: bytes, timeout: float | None) -> None:
        assert self.transport is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
        if self._error is not None:
            raise WireWriteError(str(self._error)) from self._error
        self.transport.write(data)
        if self._drained is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self._drained
            except TimeoutError as exc:
                raise WireWriteTimeout("timed out while sending the request") from exc

    def close(self) -> None:
        """Close now, dropping anything not yet sent (close() would first flush it, forever
        if the peer never reads; after a complete exchange nothing is pending anyway)."""
        if self.transport is not None:
            self.transport.abort()


async def connect(host: str, port: int, timeout: float | None) -> _Wire:
    """Open a connection; errors as WireConnectError/WireConnectTimeout chained to the cause."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            if not _is_address(host):
                wire = await connect_name(loop, host, port)
            else:
                _, wire = await loop.create_connection(_Wire, host, port)
        mark_connected()
        return wire
    except TimeoutError as exc:
        raise WireConnectTimeout(f"no connection to {host}:{port} in time") from exc
    except OSError as exc:
        raise WireConnectError(str(exc) or type(exc).__name__) from exc


async def connect_name(loop: asyncio.AbstractEventLoop, host: str, port: int) -> _Wire:
    """Resolve a name and try its addresses in order (a name that resolves to ::1 and
    127.0.0.1 is refused when both are; asyncio alone would say "Multiple exceptions")."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    errors: list[OSError] = []
    for family, _, _, _, sockaddr in infos:
        try:
            _, wire = await loop.create_connection(_Wire, str(sockaddr[0]), port, family=family)
            return wire
        except OSError as exc:
            errors.append(exc)
    if not errors:
        raise OSError(f"{host} resolves to no address")
    if len(errors) == 1:
        raise errors[0]
    # As anyio does: the single error says little, its cause holds every attempt's.
    raise OSError("All connection attempts failed") from ExceptionGroup(host, errors)


class AnswerHead:
    """The head of an answer: status, reason phrase, HTTP version, headers as they came."""

    __slots__ = ("headers", "http_version", "reason", "status_code")

    def __init__(
        self,
        status_code: int,
        reason: bytes,
        http_version: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.http_version = http_version
        self.headers = headers


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NOT_IN_TARGET = frozenset(range(0x21)) | {0x7F}
_NOT_IN_VALUE = frozenset(b"\x00\r\n")


def request_head(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The bytes of an HTTP/1.1 request head, as h11 writes it (Host first); a method, target
    or header that could not go on the wire as one line is a WireLocalProtocolError."""
    lines = [b"%s %s HTTP/1.1\r\n" % (method, target)]
    if not method or not _TOKEN.issuperset(method) or not target or _NOT_IN_TARGET & set(target):
        raise WireLocalProtocolError(f"not a usable request line: {lines[0]!r}")
    host: list[bytes] = []
    for name, value in headers:
        if not name or not _TOKEN.issuperset(name) or _NOT_IN_VALUE & set(value):
            raise WireLocalProtocolError(f"not a usable header: {name!r}")
        line = b"%s: %s\r\n" % (name, value.strip(b" \t"))
        (host if name.lower() == b"host" else lines).append(line)
    if len(host) != 1:
        raise WireLocalProtocolError("a request needs exactly one Host header")
    return b"".join([lines[0], *host, *lines[1:], b"\r\n"])


class Exchange:
    """One request/response on one connection; the answer read by httptools (llhttp, the
    parser Node.js uses), held to what h11 (httpx's own parser) accepts where the two differ.

    Lenient where h11 is: bare LF line ends, folded header lines, control characters in a
    header value, a Content-Length beside `Transfer-Encoding: chunked` (chunked wins). Strict
    where h11 is: a status below 100, a transfer coding other than chunked, a 101 (no request
    here asks to switch protocols), NUL in a header value, a head over 100 KiB. What follows
    a whole answer on the connection is not read.
    """

    def __init__(self, wire: _Wire, read_timeout: float | None) -> None:
        self.wire = wire
        self.read_timeout = read_timeout
        self._parser = httptools.HttpResponseParser(self)
        self._parser.set_dangerous_leniencies(
            lenient_headers=True, lenient_optional_cr_before_lf=True, lenient_chunked_length=True
        )
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._unread_head = 0  # bytes fed while no head is complete
        self._head: AnswerHead | None = None
        self._delimited = False  # the body's end is given (a length, chunked), not the close
        self._body: list[bytes] = []
        self._complete = False
        self._refusal = ""  # a head that parses but that h11 would refuse: why
        self._broken: httptools.HttpParserError | None = None  # the body's parse error

    # ---- httptools' callbacks (they must not raise: a refusal is kept and raised after)

    def on_message_begin(self) -> None:
        self._headers = []
        self._reason = b""

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim answer (100 Continue): the answer follows
        codings = [v.lower() for n, v in self._headers if n.lower() == b"transfer-encoding"]
        if status == 101:
            self._refusal = _UNASKED_SWITCH
        elif status < 100:
            self._refusal = f"status {status} is not an HTTP status"
        elif any(b"\x00" in value for _, value in self._headers):
            self._refusal = "a header value holds NUL"
        elif codings and codings != [b"chunked"]:
            self._refusal = "only Transfer-Encoding: chunked is supported"
        else:
            self._delimited = bool(codings) or any(
                n.lower() == b"content-length" for n, _ in self._headers
            )
            version = self._parser.get_http_version().encode("ascii")
            self._head = AnswerHead(status, self._reason, version, self._headers)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._head is not None:
            self._complete = True

    # ---- reading

    def _feed(self, data: bytes) -> None:
        if self._complete or self._broken is not None:
            return  # after the answer, or after a body that went wrong: not ours to read
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise WireRemoteProtocolError(_UNASKED_SWITCH) from exc
        except httptools.HttpParserError as exc:
            if self._head is None and not self._refusal:
                raise WireRemoteProtocolError(str(exc) or type(exc).__name__) from exc
            if not self._complete:  # the head stands, as h11 reads it; the body is broken
                self._broken = exc
        if self._refusal:
            raise WireRemoteProtocolError(self._refusal)
        if self._head is None:
            self._unread_head += len(data)
            if self._unread_head > _MAX_HEAD:
                raise WireRemoteProtocolError("the answer's head is over 100 KiB")

    async def head(self) -> AnswerHead:
        """Read up to the answer's head (an interim 1xx skipped)."""
        while self._head is None:
            data = await self.wire.read(self.read_timeout)
            if not data:
                raise WireRemoteProtocolError(_DISCONNECTED)
            self._feed(data)
        return self._head

    async def body(self) -> AsyncIterator[bytes]:
        """The body after the head, as it arrives, to its end."""
        while True:
            if self._body:
                chunks, self._body = self._body, []
                for chunk in chunks:
                    yield chunk
            if self._complete:
                return
            if self._broken is not None:
                raise WireRemoteProtocolError(str(self._broken)) from self._broken
            data = await self.wire.read(self.read_timeout)
            if data:
                self._feed(data)
            elif self._delimited:
                raise WireRemoteProtocolError(_CUT_BODY)
            else:
                self._complete = True  # a body that lasts until the close


class PlainAnswer:
    """The head of an answer to a plain-http GET, its body still on the connection.

    `response()` is the httpx.Response `ProbeTransport` hands httpx (the same body stream,
    so the same Content-Encoding decoding and charset; httpx is imported then, not before);
    `close()` closes the connection, as closing that response does.
    """

    def __init__(self, head: AnswerHead, exchange: Exchange) -> None:
        self.status_code: int = head.status_code
        self._head = head
        self._exchange = exchange

    def response(self) -> httpx.Response:
        from agent.edges.probes._transport import answer_response

        return answer_response(self._head, self._exchange)

    def close(self) -> None:
        self._exchange.wire.close()


async def plain_get(host: str, port: int, request: bytes, timeout: float | None) -> PlainAnswer:
    """Send one GET (`request`, a `request_head` without a body) over plain http and read the
    answer's head: what `ProbeTransport` does for an httpx request with `timeout` for
    connect, read and write alike (None: none of its own, the caller's deadline bounds it),
    without httpx. Errors are WireErrors (ProbeTransport
    raises the httpx exceptions of the same names); the caller closes the answer."""
    wire = await connect(host, port, timeout)
    exchange = Exchange(wire, timeout)
    try:
        with contextlib.suppress(WireWriteError):
            await wire.write(request, timeout)
        head = await exchange.head()
    except BaseException:
        wire.close()
        raise
    return PlainAnswer(head, exchange)
