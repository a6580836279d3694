"""Rich details (edge): a few extra requests to a service its probe found up.

`fetch_details(target, client)` asks the service what core.details says it offers and
returns (name, value) pairs; it never raises and never fails the service: any error,
an answer in another shape or the deadline (the target's timeout, for all of its
requests together) leaves the details out. At most two requests per service and sweep,
each answer read up to DETAIL_BODY_LIMIT bytes. The answers' shapes, from the projects:

- Ollama (github.com/ollama/ollama docs/api.md, "List Local Models" and "List Running
  Models"): GET /api/tags and GET /api/ps -> {"models": [{"name": "llama3.1:8b", ...}]}.
- ComfyUI (github.com/comfyanonymous/ComfyUI server.py, routes "/queue" and
  "/system_stats"): {"queue_running": [[number, prompt_id, ...]], "queue_pending": [...]};
  {"system": {...}, "devices": [{"name": ..., "vram_total": bytes, "vram_free": bytes, ...}]}.
- MinIO (min.io docs, "Healthcheck API"): GET /minio/health/live and /minio/health/ready,
  200 when live / ready, 503 otherwise; no body, no credentials.
- Redis (redis.io docs, INFO): `INFO server` then `INFO replication`, each a bulk string of
  "key:value" lines (redis_version, role); -NOAUTH when a password is required: nothing.
- PostgreSQL (postgresql.org docs, "Message Flow: Start-up"): a StartupMessage for user
  and database "postgres"; with trust authentication the server sends AuthenticationOk,
  then ParameterStatus messages, server_version among them, then ReadyForQuery; the probe
  then sends Terminate. Any other authentication request ends it there, with nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import TYPE_CHECKING

from agent.core.details import DetailSource, detail_source
from agent.core.model import DetailValue, ProbeTarget
from agent.edges.probes.http import HttpClient, httpx_client

if TYPE_CHECKING:
    import httpx

__all__ = ["DETAIL_BODY_LIMIT", "STARTUP_MESSAGE", "fetch_details"]

DETAIL_BODY_LIMIT = 256 * 1024
NAMES_MAX = 50  # model names kept
_TEXT_MAX = 80  # a version or a name, cut to this much
Details = tuple[tuple[str, DetailValue], ...]


def _startup_message() -> bytes:
    params = b"user\0postgres\0database\0postgres\0application_name\0tailnet-agent\0\0"
    return struct.pack("!II", 8 + len(params), 196608) + params  # protocol 3.0


STARTUP_MESSAGE = _startup_message()
_TERMINATE = b"X" + struct.pack("!I", 4)


def _text(value: object) -> str | None:
    """A name or version on one line, cut to _TEXT_MAX characters (no space left at the cut)."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split())[:_TEXT_MAX].rstrip() or None


# ==== HTTP =====================================================================


async def _get(client: httpx.AsyncClient, target: ProbeTarget, path: str) -> tuple[int, bytes]:
    from agent.edges.probes._client import probe_url

    url = probe_url(target.host, target.service.port, path)
    async with client.stream("GET", url, timeout=target.timeout_s) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > DETAIL_BODY_LIMIT:
                raise ValueError("answer too large")
        return response.status_code, bytes(body)


async def _get_json(client: httpx.AsyncClient, target: ProbeTarget, path: str) -> object:
    status, body = await _get(client, target, path)
    return json.loads(body) if status == 200 else None


def _model_names(data: object) -> tuple[str, ...] | None:
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    names = (_text(m.get("name")) for m in models if isinstance(m, dict))
    return tuple(n for n in names if n)[:NAMES_MAX]


async def _ollama(client: httpx.AsyncClient, target: ProbeTarget) -> Details:
    tags, ps = await asyncio.gather(
        _get_json(client, target, "/api/tags"),
        _get_json(client, target, "/api/ps"),
        return_exceptions=True,
    )
    out: list[tuple[str, DetailValue]] = []
    for key, data in (("models", tags), ("models_loaded", ps)):
        names = None if isinstance(data, BaseException) else _model_names(data)
        if names is not None:
            out.append((key, names))
    return tuple(out)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def _comfyui(client: httpx.AsyncClient, target: ProbeTarget) -> Details:
    queue, stats = await asyncio.gather(
        _get_json(client, target, "/queue"),
        _get_json(client, target, "/system_stats"),
        return_exceptions=True,
    )
    out: list[tuple[str, DetailValue]] = []
    if isinstance(queue, dict):
        running, pending = queue.get("queue_running"), queue.get("queue_pending")
        if isinstance(running, list) and isinstance(pending, list):
            out += [("queue_running", len(running)), ("queue_pending", len(pending))]
    devices = stats.get("devices") if isinstance(stats, dict) else None
    if isinstance(devices, list) and devices and isinstance(devices[0], dict):
        gpu = devices[0]
        total, free = _int(gpu.get("vram_total")), _int(gpu.get("vram_free"))
        if total and free is not None and free <= total:
            out += [("vram_used_bytes", total - free), ("vram_total_bytes", total)]
            name = _text(gpu.get("name"))
            if name:
                out.append(("gpu", name))
    return tuple(out)


async def _minio(client: httpx.AsyncClient, target: ProbeTarget) -> Details:
    live, ready = await asyncio.gather(
        _get(client, target, "/minio/health/live"),
        _get(client, target, "/minio/health/ready"),
        return_exceptions=True,
    )
    out: list[tuple[str, DetailValue]] = []
    for key, answer in (("live", live), ("ready", ready)):
        if not isinstance(answer, BaseException):
            out.append((key, "yes" if answer[0] == 200 else "no"))
    return tuple(out)


# ==== Redis and PostgreSQL ======================================================

_REDIS_INFO = b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"


async def _redis_bulk(reader: asyncio.StreamReader) -> str | None:
    head = await reader.readline()
    if not head.startswith(b"$"):
        return None  # -NOAUTH, -ERR ...: nothing to tell
    size = int(head[1:].strip())
    if size < 0 or size > DETAIL_BODY_LIMIT:
        return None
    body = await reader.readexactly(size + 2)
    return body[:size].decode("utf-8", errors="replace")


async def _redis(target: ProbeTarget) -> Details:
    reader, writer = await asyncio.open_connection(target.host, target.service.port)
    try:
        writer.write(_REDIS_INFO)
        fields: dict[str, str] = {}
        for _ in range(2):
            text = await _redis_bulk(reader)
            if text is None:
                break
            for line in text.splitlines():
                key, sep, value = line.partition(":")
                if sep:
                    fields[key.strip()] = value.strip()
    finally:
        writer.transport.abort()
    out: list[tuple[str, DetailValue]] = []
    for key, name in (("redis_version", "version"), ("role", "role")):
        said = _text(fields.get(key))
        if said:
            out.append((name, said))
    return tuple(out)


async def _postgres(target: ProbeTarget) -> Details:
    reader, writer = await asyncio.open_connection(target.host, target.service.port)
    try:
        writer.write(STARTUP_MESSAGE)
        version: str | None = None
        for _ in range(64):  # AuthenticationOk, ~15 ParameterStatus, BackendKeyData, Ready
            kind = await reader.readexactly(1)
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            if length < 4 or length > 64 * 1024:
                break
            body = await reader.readexactly(length - 4)
            if kind == b"R" and body[:4] != b"\0\0\0\0":
                break  # a password or another method is asked for: the version stays unsaid
            if kind == b"S":
                name, _, rest = body.partition(b"\0")
                if name == b"server_version":
                    version = rest.split(b"\0", 1)[0].decode("utf-8", errors="replace")
            if kind in (b"Z", b"E"):
                break
        if version is not None:
            writer.write(_TERMINATE)
            with contextlib.suppress(OSError):
                await writer.drain()
    finally:
        writer.transport.abort()
    text = _text(version)
    return (("server_version", text),) if text else ()


# ==== all ======================================================================


def _over_http(source: DetailSource | None) -> bool:
    return source in (DetailSource.OLLAMA, DetailSource.COMFYUI, DetailSource.MINIO)


async def fetch_details(target: ProbeTarget, client: HttpClient | None) -> Details:
    """The details of one service that is up; () when it offers none or they failed."""
    source = detail_source(target.service)
    shared = client
    client = None if shared is None else httpx_client(shared) if _over_http(source) else None
    try:
        async with asyncio.timeout(target.timeout_s):
            match source:
                case DetailSource.OLLAMA if client is not None:
                    return await _ollama(client, target)
                case DetailSource.COMFYUI if client is not None:
                    return await _comfyui(client, target)
                case DetailSource.MINIO if client is not None:
                    return await _minio(client, target)
                case DetailSource.REDIS:
                    return await _redis(target)
                case DetailSource.POSTGRES:
                    return await _postgres(target)
    except Exception:  # a detail never fails the service, nor the sweep
        return ()
    return ()
