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

`ProbeTransport` does, per request, `_wire`'s exchange: connect with asyncio, write the
request (`_wire.request_head`, and the body as its headers frame it) and read the answer
with httptools, and hand httpx a response whose body stream
closes the socket when the response is closed. Per-request timeouts (connect, read,
write) are honoured; errors are raised as the httpx exceptions httpx's own transport
raises (`_wire`'s WireErrors turned into their httpx names), chained to the OS error that
caused them (`_errors.classify` reads that chain). https (and any other scheme) goes to
httpx's own transport, made on first use with certificates verified, so a client that
never fetches https never builds an SSL context.

`answer_response` makes the httpx.Response of a `_wire.PlainAnswer` (the HTTP probe's
plain path, once it reads a body).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import NoReturn, TypeVar

import httpx

from agent.edges.probes._errors import WireError, WireLocalProtocolError, WireWriteError
from agent.edges.probes._wire import AnswerHead, Exchange, connect, request_head

__all__ = ["ProbeTransport", "answer_response", "as_httpx_error"]

T = TypeVar("T")


def as_httpx_error(exc: WireError) -> NoReturn:
    """Raise the httpx exception `exc` stands for, chained to its cause as httpx's own
    transport chains it (the OS error, the parser's error), or to nothing."""
    raise getattr(httpx, exc.httpx_name)(str(exc)) from exc.__cause__


async def _in_httpx_terms(job: Awaitable[T]) -> T:
    try:
        return await job
    except WireError as exc:
        as_httpx_error(exc)


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; closing it closes the connection."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._exchange.body():
                yield chunk
        except WireError as exc:
            as_httpx_error(exc)

    async def aclose(self) -> None:
        self._exchange.wire.close()


async def _send(request: httpx.Request, exchange: Exchange, timeout: float | None) -> None:
    """Write the request: the head, then the body as its headers frame it (chunked, or the
    Content-Length's bytes); a GET goes out in one write."""
    head = request_head(request.method.encode("ascii"), request.url.raw_path, request.headers.raw)
    chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
    length = None if chunked else int(request.headers.get("content-length", "0"))
    unsent, sent = head, 0
    assert isinstance(request.stream, httpx.AsyncByteStream)  # noqa: S101 — narrows a type the lines above guarantee; not an input check
    async for chunk in request.stream:
        if not chunk:
            continue
        sent += len(chunk)
        if length is not None and sent > length:
            raise WireLocalProtocolError("more body than the request's Content-Length")
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
        await exchange.wire.write(unsent + framed, timeout)
        unsent = b""
    if length is not None and sent < length:
        raise WireLocalProtocolError("less body than the request's Content-Length")
    await exchange.wire.write(unsent + (b"0\r\n\r\n" if chunked else b""), timeout)


def answer_response(head: AnswerHead, exchange: Exchange) -> httpx.Response:
    """The httpx.Response for an answer whose head was read: the body still arriving."""
    return httpx.Response(
        head.status_code,
        headers=head.headers,
        stream=_Body(exchange),
        extensions={
            "http_version": b"HTTP/" + head.http_version,
            "reason_phrase": head.reason,
        },
    )


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
        wire = await _in_httpx_terms(connect(url.host, url.port or 80, timeouts.get("connect")))
        exchange = Exchange(wire, timeouts.get("read"))
        try:
            try:
                # If it answered and hung up early, read what it said (as httpcore does).
                with contextlib.suppress(WireWriteError):
                    await _send(request, exchange, timeouts.get("write"))
                head = await exchange.head()
            except WireError as exc:
                as_httpx_error(exc)
        except BaseException:
            wire.close()
            raise
        return answer_response(head, exchange)

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
