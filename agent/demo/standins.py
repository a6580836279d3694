"""The demo's stand-in services: small asyncio servers answering as the real programs do.

Each StandIn serves one service of the simulated network on a loopback address, in the
response shape of the program it stands for, so the agent's real probes (and a curious
person with curl or a browser) meet what they would meet on the tailnet:

    Ollama         GET /api/tags: the installed models; GET /api/ps: the one loaded in
                   memory (JSON); GET /: "Ollama is running"
    ComfyUI        GET /: its web page; GET /queue: one prompt running, two pending;
                   GET /system_stats (JSON); /ws: a WebSocket that sends ComfyUI's first
                   "status" message
    FastAPI        GET /health: {"status": "ok"}; GET /docs: a page; else {"detail": ...} 404
    MinIO API      GET /minio/health/live and /minio/health/ready: 200; else a 403 S3 error
    MinIO Console  GET /: its login page
    Next.js        GET /: a page (X-Powered-By: Next.js)
    Redis          RESP: PING -> +PONG, anything else an error line
    PostgreSQL     SSLRequest -> 'N'; a startup message -> an ErrorResponse (no logins)

A service of another name gets its check kind's plain answer. The port is the real
program's when it is free on that address, else one the system picks (a real Next.js may
run on 3000 here), or with `exact` that port or an error (agent.demo.network then tries
another loopback block); `start` after `stop` binds the same port again when it can (the
topology, written from `port`, follows when it cannot).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from agent.core.model import CheckKind, Service
from agent.edges.probes.websocket import accept_for

__all__ = ["Reply", "Site", "StandIn", "handler_for"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

_IDLE_S = 10.0  # a client that says nothing for this long is let go
_REASONS = {101: "Switching Protocols", 200: "OK", 400: "Bad Request", 403: "Forbidden"}
_REASONS[404] = "Not Found"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: str = ""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Site:
    """An HTTP program's answers: by path, for any other path, and its WebSocket if any."""

    routes: Mapping[str, Reply]
    not_found: Reply = Reply(404, "404 page not found\n", "text/plain; charset=utf-8")
    headers: tuple[tuple[str, str], ...] = ()  # on every answer (Server, X-Powered-By)
    websocket: str | None = None  # the path that upgrades
    greeting: Mapping[str, object] = field(default_factory=dict)  # its first message


def _html(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body>{body}</body></html>\n"
    )


_OLLAMA_MODELS = {
    "models": [
        {
            "name": name,
            "model": name,
            "modified_at": "2026-08-20T09:12:44.918274+09:00",
            "size": size,
            "digest": digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": params,
                "quantization_level": "Q4_K_M",
            },
        }
        for name, size, digest, family, params in (
            ("llama3.1:8b", 4920753328, "46e0c10c039e" * 5 + "666e", "llama", "8.0B"),
            ("qwen2.5:14b", 8988124069, "7cdf5a0187d5" * 5 + "c1e5", "qwen2", "14.8B"),
        )
    ]
}

# GET /api/ps (Ollama's docs, "List running models"): llama3.1:8b loaded, all of it in VRAM.
_OLLAMA_LOADED = {
    "models": [
        {
            **{k: v for k, v in _OLLAMA_MODELS["models"][0].items() if k != "modified_at"},
            "size": 5137025024,
            "expires_at": "2026-08-24T19:46:05.218633+09:00",
            "size_vram": 5137025024,
            "context_length": 4096,
        }
    ]
}


def _comfyui_prompt(number: int, prompt_id: str) -> list[object]:
    """A queue item as ComfyUI's server.py lists it under GET /queue:
    [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
    prompt = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sparklio"}},
    }
    return [number, prompt_id, prompt, {"client_id": "5c0f7d2e9b"}, ["9"]]


_COMFYUI_QUEUE = {
    "queue_running": [_comfyui_prompt(41, "3c1b0d1e-5a2e-4b8f-9a3e-1f2d4c5b6a70")],
    "queue_pending": [
        _comfyui_prompt(42, "b9e1a3f0-0c2d-4e5f-8a9b-7c6d5e4f3a21"),
        _comfyui_prompt(43, "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"),
    ],
}

# ComfyUI's status message counts both: PromptQueue.get_tasks_remaining().
_QUEUE_REMAINING = len(_COMFYUI_QUEUE["queue_running"]) + len(_COMFYUI_QUEUE["queue_pending"])

_COMFYUI_STATS = {
    "system": {
        "os": "nt",
        "ram_total": 68560506880,
        "ram_free": 41234567168,
        "comfyui_version": "0.3.43",
        "required_frontend_version": "1.23.4",
        "python_version": "3.12.10 (tags/v3.12.10:0cc8128, Apr  8 2025) [MSC v.1943 64 bit]",
        "pytorch_version": "2.7.1+cu128",
        "embedded_python": True,
        "argv": ["ComfyUI\\main.py"],
    },
    "devices": [
        {
            "name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
            "type": "cuda",
            "index": 0,
            "vram_total": 25756696576,
            # device-wide: Ollama's loaded model (5.1 GB) and the running prompt's 3 GiB
            "vram_free": 17398446080,
            "torch_vram_total": 0,
            "torch_vram_free": 0,
        }
    ],
}

_S3_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Access Denied.</Message><Resource>/</Resource>"
    "<RequestId>1863A1F2D5E0C7B4</RequestId><HostId>dd9025bab4ad464b</HostId></Error>"
)

SITES: Mapping[str, Site] = {
    "Ollama": Site(
        {
            "/": Reply(200, "Ollama is running", "text/plain; charset=utf-8"),
            "/api/tags": Reply(200, json.dumps(_OLLAMA_MODELS)),
            "/api/ps": Reply(200, json.dumps(_OLLAMA_LOADED)),
            "/api/version": Reply(200, '{"version":"0.11.4"}'),
        }
    ),
    "ComfyUI": Site(
        {
            "/": Reply(200, _html("ComfyUI", '<div id="vue-app"></div>'), "text/html"),
            "/queue": Reply(200, json.dumps(_COMFYUI_QUEUE)),
            "/system_stats": Reply(200, json.dumps(_COMFYUI_STATS)),
        },
        headers=(("Server", "Python/3.12 aiohttp/3.11.18"),),
        websocket="/ws",
        greeting={
            "type": "status",
            "data": {
                "status": {"exec_info": {"queue_remaining": _QUEUE_REMAINING}},
                "sid": "5c0f7d2e9b",
            },
        },
    ),
    "FastAPI": Site(
        {
            "/health": Reply(200, '{"status":"ok"}'),
            "/docs": Reply(
                200, _html("Sparklio API - Swagger UI", '<div id="swagger-ui">'), "text/html"
            ),
        },
        not_found=Reply(404, '{"detail":"Not Found"}'),
        headers=(("Server", "uvicorn"),),
    ),
    "MinIO API": Site(
        {
            "/minio/health/live": Reply(200, "", "text/plain"),
            "/minio/health/ready": Reply(200, "", "text/plain"),
        },
        not_found=Reply(403, _S3_DENIED, "application/xml"),
        headers=(("Server", "MinIO"),),
    ),
    "MinIO Console": Site(
        {"/": Reply(200, _html("MinIO Console", '<div id="root"></div>'), "text/html")},
        headers=(("Server", "MinIO Console"),),
    ),
    "Next.js": Site(
        {"/": Reply(200, _html("Sparklio Studio", '<div id="__next"></div>'), "text/html")},
        not_found=Reply(404, _html("404: This page could not be found.", ""), "text/html"),
        headers=(("X-Powered-By", "Next.js"),),
    ),
}

_PLAIN_SITE = Site({"/": Reply(200, "ok\n", "text/plain; charset=utf-8")})


# ==== HTTP and its WebSocket ====================================================


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _text_frame(text: str) -> bytes:
    """An unmasked server text frame (RFC 6455 section 5.2)."""
    payload = text.encode("utf-8")
    if len(payload) < 126:
        return bytes((0x81, len(payload))) + payload
    return bytes((0x81, 126)) + struct.pack("!H", len(payload)) + payload


async def _websocket(
    site: Site,
    headers: Mapping[str, str],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    key = headers.get("sec-websocket-key", "")
    if not key:
        writer.write(_head(400, [("Content-Length", "0"), ("Connection", "close")]))
        return
    upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    writer.write(_head(101, [*upgrade, ("Sec-WebSocket-Accept", accept_for(key))]))
    writer.write(_text_frame(json.dumps(site.greeting)))
    await writer.drain()
    with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError):
        first = await asyncio.wait_for(reader.readexactly(2), _IDLE_S)
        if first[0] & 0x0F == 0x8:  # the client's Close: answer it (1000, normal)
            writer.write(bytes((0x88, 2)) + struct.pack("!H", 1000))


async def _serve_http(
    site: Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_S)
    lines = raw.decode("latin-1").split("\r\n")
    words = lines[0].split(" ")
    if len(words) != 3:
        writer.write(_head(400, [("Content-Length", "0"), ("Connection", "close")]))
        return
    method, target = words[0], words[1]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    path = target.split("?", 1)[0]
    if path == site.websocket and headers.get("upgrade", "").lower() == "websocket":
        await _websocket(site, headers, reader, writer)
        return
    reply = site.routes.get(path, site.not_found)
    body = reply.body.encode("utf-8")
    answer = [
        ("Content-Type", reply.content_type),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        *site.headers,
        *reply.headers,
    ]
    writer.write(_head(reply.status, answer) + (b"" if method == "HEAD" else body))


# ==== Redis and PostgreSQL ======================================================


async def _serve_redis(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each arriving command: PING with PONG, QUIT with OK, others with an error."""
    while data := await asyncio.wait_for(reader.read(4096), _IDLE_S):
        command = data.upper()
        if b"PING" in command:
            writer.write(b"+PONG\r\n")
        elif b"QUIT" in command:
            writer.write(b"+OK\r\n")
            return
        else:
            writer.write(b"-ERR unknown command (a stand-in Redis: PING only)\r\n")
        await writer.drain()


_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


def _postgres_error(code: str, message: str) -> bytes:
    fields = b"".join(
        kind + text.encode("utf-8") + b"\0"
        for kind, text in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    fields += b"\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


async def _serve_postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """'N' to an SSL or GSS encryption request; an ErrorResponse to a startup message."""
    while True:
        length, code = struct.unpack("!II", await asyncio.wait_for(reader.readexactly(8), _IDLE_S))
        if code in (_SSL_REQUEST, _GSSENC_REQUEST):
            writer.write(b"N")
            await writer.drain()
            continue
        await reader.readexactly(max(0, length - 8))
        writer.write(_postgres_error("28000", "a stand-in PostgreSQL (the demo) takes no logins"))
        return


async def _serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts, and waits for the client to leave."""
    while await asyncio.wait_for(reader.read(4096), _IDLE_S):
        pass


def handler_for(service: Service) -> Handler:
    """How the stand-in for `service` (by its name, else its check kind) answers."""
    name, check = service.name, service.check
    if check is CheckKind.REDIS:
        serve: Handler = _serve_redis
    elif check is CheckKind.POSTGRES:
        serve = _serve_postgres
    elif check is CheckKind.TCP and name not in SITES:
        serve = _serve_tcp
    else:
        site = SITES.get(name, _PLAIN_SITE)
        if check is CheckKind.WEBSOCKET and site.websocket is None:
            site = Site(site.routes, websocket=service.path, headers=site.headers)
        serve = functools.partial(_serve_http, site)

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # A client that hangs up, stalls or sends garbage ends its own connection only.
            with contextlib.suppress(
                ConnectionError,
                TimeoutError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ):
                await serve(reader, writer)
                await writer.drain()
        finally:
            writer.close()

    return connection


# ==== one service ===============================================================


class StandIn:
    """The stand-in for `service` on `host`: started, stopped and started again on its port
    (the service's own when it was free)."""

    def __init__(self, service: Service, host: str) -> None:
        self.name = service.name
        self.host = host
        self.preferred_port = service.port
        self.port: int | None = None  # known once started
        self._handler = handler_for(service)
        self._server: asyncio.Server | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self, *, exact: bool = False) -> None:
        """Listen: on the port it had, else the service's own, else any free one (taken
        meanwhile, or a real server runs here); `port` says which. `exact`: that port or
        OSError (the demo then tries another loopback block)."""
        if self._server is not None:
            return
        try:
            self._server = await asyncio.start_server(
                self._handler, self.host, self.port or self.preferred_port
            )
        except OSError:
            if exact:
                raise
            self._server = await asyncio.start_server(self._handler, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listening socket: from now on a connection is refused."""
        if self._server is not None:
            self._server.close()
            self._server = None
