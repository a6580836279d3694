"""One plain HTTP/1.1 exchange on a fresh connection, without httpx: the wire under probes.

`plain_get(host, port, head, timeout)` connects with asyncio (a small BufferedProtocol, no
streams), writes an h11 request head and reads the answer's head through h11 (the HTTP/1.1
state machine httpcore itself uses); the `PlainAnswer` it returns keeps the body on the
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
from typing import TYPE_CHECKING, cast

import h11

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
    "Exchange",
    "PlainAnswer",
    "answer_head",
    "connect",
    "plain_get",
]


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


class Exchange:
    """One request/response on one connection, parsed by h11."""

    def __init__(self, wire: _Wire, read_timeout: float | None) -> None:
        self.wire = wire
        self.read_timeout = read_timeout
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)

    def send(self, event: h11.Event) -> bytes:
        try:
            return self.h11.send(event) or b""
        except h11.LocalProtocolError as exc:
            raise WireLocalProtocolError(str(exc)) from exc

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise WireRemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            data = await self.wire.read(self.read_timeout)
            if not data and self.h11.their_state is h11.SEND_RESPONSE:
                raise WireRemoteProtocolError(_DISCONNECTED)
            self.h11.receive_data(data)


async def answer_head(exchange: Exchange) -> h11.Response | h11.InformationalResponse:
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
    so the same Content-Encoding decoding and charset; httpx is imported then, not before);
    `close()` closes the connection, as closing that response does.
    """

    def __init__(self, head: h11.Response | h11.InformationalResponse, exchange: Exchange) -> None:
        self.status_code: int = head.status_code
        self._head = head
        self._exchange = exchange

    def response(self) -> httpx.Response:
        from agent.edges.probes._transport import answer_response

        return answer_response(self._head, self._exchange)

    def close(self) -> None:
        self._exchange.wire.close()


async def plain_get(host: str, port: int, request: h11.Request, timeout: float) -> PlainAnswer:
    """Send one GET (`request`, a head without a body) over plain http and read the
    answer's head: what `ProbeTransport` does for an httpx request with `timeout` for
    connect, read and write alike, without httpx. Errors are WireErrors (ProbeTransport
    raises the httpx exceptions of the same names); the caller closes the answer."""
    wire = await connect(host, port, timeout)
    exchange = Exchange(wire, timeout)
    try:
        with contextlib.suppress(WireWriteError):
            unsent = exchange.send(request) + exchange.send(h11.EndOfMessage())
            await wire.write(unsent, timeout)
        head = await answer_head(exchange)
    except BaseException:
        wire.close()
        raise
    return PlainAnswer(head, exchange)
