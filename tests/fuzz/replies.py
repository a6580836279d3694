"""A loopback server that answers one probe with the bytes an example chose.

`answer(reply, request_done, call)` starts a server on 127.0.0.1 (a free port) in the
running event loop, runs `call(port)` (the probe) against it and stops it. Each connection
reads the probe's request until `request_done(bytes so far)` (or the end of the stream),
then writes the reply in its chunks, each drained, and ends: closing at once, or half-
closing and waiting for the probe to close (as a server that finished its answer does).
A real socket pair on loopback, so the probe reads through its own stream code; a few
milliseconds per example.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from hypothesis import strategies as st

__all__ = ["Reply", "answer", "replies"]

_REQUEST_WAIT_S = 2.0
T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """What the server sends: `data` cut into pieces at `cuts`, then how it ends."""

    data: bytes
    cuts: tuple[int, ...] = ()
    half_close: bool = False

    def chunks(self) -> list[bytes]:
        edges = [0, *sorted(c for c in self.cuts if 0 < c < len(self.data)), len(self.data)]
        return [self.data[a:b] for a, b in itertools.pairwise(edges) if b > a]


@st.composite
def replies(draw: st.DrawFn, data: st.SearchStrategy[bytes]) -> Reply:
    """Replies with these bytes, sent whole or in up to four pieces, ended either way."""
    body = draw(data)
    cuts = draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=3)) if body else []
    return Reply(body, tuple(cuts), draw(st.booleans()))


async def _read_request(reader: asyncio.StreamReader, done: Callable[[bytes], bool]) -> bytes:
    request = b""
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_REQUEST_WAIT_S):
            while not done(request):
                more = await reader.read(4096)
                if not more:
                    break
                request += more
    return request


async def _send(reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for chunk in reply.chunks():
            writer.write(chunk)
            await writer.drain()
        if reply.half_close and writer.can_write_eof():
            writer.write_eof()
            async with asyncio.timeout(_REQUEST_WAIT_S):
                while await reader.read(4096):
                    pass
    except (OSError, TimeoutError):
        pass  # the probe hung up first: what it made of that is the test's to judge
    finally:
        writer.transport.abort()


async def answer(
    reply: Reply | Callable[[bytes], Reply],
    request_done: Callable[[bytes], bool],
    call: Callable[[int], Awaitable[T]],
) -> T:
    """Run `call(port)` against a server answering with `reply` (or `reply(request)`, for
    an answer that depends on the request: a WebSocket accept key)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader, request_done)
        await _send(reply(request) if callable(reply) else reply, reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await call(port)
    finally:
        server.close()
