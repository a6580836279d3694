"""The transport under the shared httpx client: one plain HTTP/1.1 exchange per request.

A probe sweep sends hundreds of requests at once, each on its own connection,
and never reuses one (no keep-alive: a probe measures connect + answer). httpx's
default transport keeps a connection pool for that, and the pool costs more than
the request: every request scans every connection in flight (quadratic in the
sweep's size), each connection takes anyio locks and cancel scopes, and httpcore
looks for `sniffio` on every lock (an import that fails, hence a path search,
when sniffio is not installed). On the 510-endpoint benchmark (docs/benchmarks.md)
this transport, with the client's other settings, takes a sweep from 1.23 to 0.34 ms
of CPU per probe on asyncio's loop.

`ProbeTransport` does, per request: connect with asyncio (a small BufferedProtocol,
no streams), write the request and read the answer through h11 (the HTTP/1.1 state
machine httpcore itself uses, so parsing is the same), and hand httpx a
response whose body stream closes the socket when the response is closed.
Per-request timeouts (connect, read, write) are honoured; errors are raised as
the httpx exceptions httpx's own transport raises, chained to the OS error that
caused them (`_errors.classify` reads that chain). https (and any other scheme)
goes to httpx's own transport, made on first use with certificates verified, so
a client that never fetches https never builds an SSL context.

`plain_get` is the same exchange for a GET whose h11 head the caller has built (the HTTP
probe's plain targets): no httpx request in, and a `PlainAnswer` out that becomes the very
httpx.Response above only when the body is wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import threading
from collections.abc import AsyncIterator
from typing import cast

import h11
import httpx

from agent.edges.probes._run import mark_connected

__all__ = ["PlainAnswer", "ProbeTransport", "plain_get"]

_SCRATCH_SIZE = 64 * 1024
_READ_HIGH_WATER = 256 * 1024  # stop reading the socket while this much is unread
_MAX_HEAD = 100 * 1024  # the largest response head accepted (httpcore's limit)
_DISCONNECTED = "Server disconnected without sending a response."  # httpcore's words


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
                raise httpx.ReadTimeout("timed out while reading the response") from exc
            finally:
                self._waiter = None
        if not self._chunks:
            if self._error is not None:
                raise httpx.ReadError(str(self._error)) from self._error
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
            raise httpx.WriteError(str(self._error)) from self._error
        self.transport.write(data)
        if self._drained is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self._drained
            except TimeoutError as exc:
                raise httpx.WriteTimeout("timed out while sending the request") from exc

    def close(self) -> None:
        """Close now, dropping anything not yet sent (close() would first flush it, forever
        if the peer never reads; after a complete exchange nothing is pending anyway)."""
        if self.transport is not None:
            self.transport.abort()


async def _connect(host: str, port: int, timeout: float | None) -> _Wire:
    """Open a connection; errors as httpx.ConnectError/ConnectTimeout chained to the cause."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            if not _is_address(host):
                wire = await _connect_name(loop, host, port)
            else:
                _, wire = await loop.create_connection(_Wire, host, port)
        mark_connected()
        return wire
    except TimeoutError as exc:
        raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from exc
    except OSError as exc:
        raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc


async def _connect_name(loop: asyncio.AbstractEventLoop, host: str, port: int) -> _Wire:
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


class _Exchange:
    """One request/response on one connection, parsed by h11."""

    def __init__(self, wire: _Wire, read_timeout: float | None) -> None:
        self.wire = wire
        self.read_timeout = read_timeout
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)

    def send(self, event: h11.Event) -> bytes:
        try:
            return self.h11.send(event) or b""
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            data = await self.wire.read(self.read_timeout)
            if not data and self.h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError(_DISCONNECTED)
            self.h11.receive_data(data)


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; closing it closes the connection."""

    def __init__(self, exchange: _Exchange) -> None:
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._exchange.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return

    async def aclose(self) -> None:
        self._exchange.wire.close()


async def _send(request: httpx.Request, exchange: _Exchange, timeout: float | None) -> None:
    """Write the request; a GET goes out in one write, head and end together."""
    url = request.url
    head = h11.Request(method=request.method, target=url.raw_path, headers=request.headers.raw)
    unsent = exchange.send(head)
    assert isinstance(request.stream, httpx.AsyncByteStream)  # noqa: S101 — narrows a type the lines above guarantee; not an input check
    async for chunk in request.stream:
        if chunk:
            await exchange.wire.write(unsent + exchange.send(h11.Data(data=chunk)), timeout)
            unsent = b""
    await exchange.wire.write(unsent + exchange.send(h11.EndOfMessage()), timeout)


async def _answer_head(exchange: _Exchange) -> h11.Response | h11.InformationalResponse:
    """Read up to the answer's head (1xx other than 101 skipped)."""
    while True:
        event = await exchange.next_event()
        if isinstance(event, h11.Response):
            return event
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            return event  # switching protocols: the answer, as httpcore treats it


class PlainAnswer:
    """The head of an answer to a plain-http GET, its body still on the connection.

    `response()` is the httpx.Response `ProbeTransport` hands httpx (the same body stream,
    so the same Content-Encoding decoding and charset); `close()` closes the connection,
    as closing that response does.
    """

    def __init__(self, head: h11.Response | h11.InformationalResponse, exchange: _Exchange) -> None:
        self.status_code: int = head.status_code
        self._head = head
        self._exchange = exchange

    def response(self) -> httpx.Response:
        head = self._head
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=_Body(self._exchange),
            extensions={
                "http_version": b"HTTP/" + head.http_version,
                "reason_phrase": head.reason,
            },
        )

    def close(self) -> None:
        self._exchange.wire.close()


async def plain_get(host: str, port: int, request: h11.Request, timeout: float) -> PlainAnswer:
    """Send one GET (`request`, a head without a body) over plain http and read the
    answer's head: what `ProbeTransport` does for an httpx request with `timeout` for
    connect, read and write alike, without building the httpx request or response. Errors
    are the same httpx exceptions; the caller closes the answer."""
    wire = await _connect(host, port, timeout)
    exchange = _Exchange(wire, timeout)
    try:
        with contextlib.suppress(httpx.WriteError):
            unsent = exchange.send(request) + exchange.send(h11.EndOfMessage())
            await wire.write(unsent, timeout)
        head = await _answer_head(exchange)
    except BaseException:
        wire.close()
        raise
    return PlainAnswer(head, exchange)


class ProbeTransport(httpx.AsyncBaseTransport):
    """httpx transport for probes: a fresh connection per request, closed with the response.

    Plain http is handled here; other schemes go to an `httpx.AsyncHTTPTransport`
    (certificates verified, no keep-alive, nothing from the environment) made on
    first use. No proxy support: probes go straight to the address they name.
    """

    def __init__(self) -> None:
        self._other: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            return await self._fallback().handle_async_request(request)
        timeouts = request.extensions.get("timeout", {})
        wire = await _connect(url.host, url.port or 80, timeouts.get("connect"))
        exchange = _Exchange(wire, timeouts.get("read"))
        try:
            # If it answered and hung up early, read what it said (as httpcore does).
            with contextlib.suppress(httpx.WriteError):
                await _send(request, exchange, timeouts.get("write"))
            head = await _answer_head(exchange)
        except BaseException:
            wire.close()
            raise
        return PlainAnswer(head, exchange).response()

    def _fallback(self) -> httpx.AsyncHTTPTransport:
        if self._other is None:
            self._other = httpx.AsyncHTTPTransport(
                verify=True,
                trust_env=False,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            )
        return self._other

    async def aclose(self) -> None:
        if self._other is not None:
            await self._other.aclose()
