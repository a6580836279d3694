"""The WebSocket probe: a real opening handshake (RFC 6455), written by hand.

GET ws://host:port{path} with Upgrade headers and a fresh Sec-WebSocket-Key.
101 with the right Sec-WebSocket-Accept -> UP, then the probe closes cleanly (a
Close frame 1000, waits for the server's Close or end of stream, bounded by the
probe's deadline). Another HTTP status -> DOWN HTTP_STATUS "HTTP 404 instead of
a WebSocket upgrade"; an answer that is not HTTP -> DOWN PROTOCOL_MISMATCH.
By hand rather than with the websockets client: one small exchange, no extra
tasks, keep-alive pings or proxy lookups per probe.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from typing import TYPE_CHECKING

from agent.core.model import ProbeResult, ProbeState, ProbeTarget, Reason
from agent.edges.probes._errors import NOT_HTTP_DETAIL, Finding
from agent.edges.probes._run import USER_AGENT, Clock, guarded, mark_connected, url_host

if TYPE_CHECKING:
    from agent.edges.probes.http import HttpClient

__all__ = ["HEAD_LIMIT", "accept_for", "probe"]

HEAD_LIMIT = 16 * 1024  # bytes of response head accepted
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CLOSE_NORMAL = 1000


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer to `key` (RFC 6455 section 4.2.2)."""
    import hashlib  # here: a sweep without a WebSocket target never loads it (~2 ms of check)

    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")  # noqa: S324 — RFC 6455 fixes SHA-1 for the handshake


def _request(target: ProbeTarget, key: str) -> bytes:
    path = target.service.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise ValueError(f"path {path!r} cannot go into a request line")
    host = f"{url_host(target.host)}:{target.service.port}"
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"User-Agent: {USER_AGENT}\r\n"
        "\r\n"
    ).encode("ascii")


def _close_frame() -> bytes:
    """A masked client Close frame with status 1000."""
    mask = os.urandom(4)
    payload = struct.pack("!H", _CLOSE_NORMAL)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x88, 0x80 | len(payload))) + mask + masked


def _mismatch(detail: str = NOT_HTTP_DETAIL) -> Finding:
    return ProbeState.DOWN, Reason.PROTOCOL_MISMATCH, detail


def _judge_head(head: bytes, key: str) -> Finding:
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        return _mismatch()
    status = int(parts[1])
    if status != 101:
        return (
            ProbeState.DOWN,
            Reason.HTTP_STATUS,
            f"HTTP {status} instead of a WebSocket upgrade",
        )
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept") != accept_for(key):
        return _mismatch("HTTP 101 with a wrong Sec-WebSocket-Accept (not a WebSocket server)")
    return ProbeState.UP, None, "WebSocket upgrade accepted"


class _Exchange:
    """One handshake on one connection; `close` ends it politely when it succeeded."""

    def __init__(self, target: ProbeTarget) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.upgraded = False

    async def handshake(self) -> Finding:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = _request(self.target, key)
        reader, writer = await asyncio.open_connection(self.target.host, self.target.service.port)
        mark_connected()
        self.reader, self.writer = reader, writer
        writer.write(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await reader.read(4096)
            if not chunk:
                break
            head += chunk
            if not (head.startswith(b"HTTP/") or b"HTTP/".startswith(head)):
                return _mismatch()
            if len(head) > HEAD_LIMIT:
                return _mismatch("HTTP answer head too large")
        if not head:
            return _mismatch(f"{NOT_HTTP_DETAIL} (it closed the connection without an answer)")
        if b"\r\n\r\n" not in head and b"\r\n" not in head:
            return _mismatch()
        finding = _judge_head(head, key)
        if finding[0] is ProbeState.UP and b"\r\n\r\n" not in head:
            return _mismatch("HTTP 101 cut short (not a WebSocket server)")
        self.upgraded = finding[0] is ProbeState.UP
        return finding

    async def close(self) -> None:
        writer = self.writer
        if writer is None:
            return
        try:
            if self.upgraded and self.reader is not None and not writer.is_closing():
                writer.write(_close_frame())
                # The server answers with its Close frame and ends the connection.
                while await self.reader.read(4096):
                    pass
        finally:
            writer.transport.abort()


async def probe(
    target: ProbeTarget, client: HttpClient | None = None, *, clock: Clock = time.time
) -> ProbeResult:
    """Probe one WebSocket endpoint (the client is not used)."""
    exchange = _Exchange(target)
    return await guarded(target, exchange.handshake, clock=clock, cleanup=exchange.close)
