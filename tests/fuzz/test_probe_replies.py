"""Every probe, and the details readers, fed hostile replies over a real loopback socket.

Each example starts a loopback server (tests/fuzz/replies.py) that reads the probe's
request and answers with bytes built from real answers (an HTTP response, `+PONG`, a
PostgreSQL 'S', a WebSocket 101 with the right accept key, Redis INFO, a PostgreSQL
start-up, Ollama's model lists, ComfyUI's queue and system stats, MinIO's health answers)
and then mutated: truncated, spliced, oversized, wrong lengths, random bytes, sent in
pieces, the connection closed or half-closed after. A probe must come back UP or DOWN with
a reason and a one-line fact, never UNKNOWN "error" (an exception it did not expect); a
details reader gives well-formed details or none (and a one-line detail_line), and reads a
well-formed answer right.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import struct
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from agent.core.details import detail_line
from agent.core.model import CheckKind, DetailValue, ProbeResult, ProbeState, ProbeTarget
from agent.edges.probes import PROBES, make_http_client
from agent.edges.probes.details import NAMES_MAX, STARTUP_MESSAGE, fetch_details
from agent.edges.probes.redis import PING
from agent.edges.probes.websocket import accept_for
from tests.fuzz.documents import edited_bytes, json_values, maybe_edited, mutated, to_json
from tests.fuzz.http_replies import http_replies
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


# ==== HTTP ======================================================================

_EXPECT = st.sampled_from(
    [{}, {"expect_status": (200,)}, {"expect_body": "ok"}, {"expect_status": (204, 503)}]
)


@fuzz
@given(replies(maybe_edited(http_replies())), _EXPECT)
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
@given(replies(maybe_edited(_REDIS_REPLIES)))
def test_redis_probe_reads_any_reply(reply: Reply) -> None:
    result = _probe(CheckKind.REDIS, reply, lambda r: len(r) >= len(PING))
    _is_a_finding(result)


_PG_ERROR = b"E" + struct.pack("!I", 40) + b"SFATAL\0C0A000\0Munsupported frontend\0\0"
_PG_REPLIES = st.sampled_from(
    [b"S", b"N", _PG_ERROR, b"SN", b"E", b"N" * 64, b"HTTP/1.1 400 Bad Request\r\n\r\n", b""]
) | st.binary(max_size=80)


@fuzz
@given(replies(maybe_edited(_PG_REPLIES)))
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
@given(replies(maybe_edited(_WS_REPLIES)))
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


def _details(
    kind: CheckKind,
    reply: Reply | Callable[[bytes], Reply],
    done: Callable[[bytes], bool],
    name: str = "svc",
    **service: Any,
) -> Details:
    """The details `fetch_details` reads from a server answering `reply`; the menu's and the
    table's line of them must be one line, whatever they are."""
    t = target(kind, ("127.0.0.1", 0), timeout=TIMEOUT_S, name=name, **service)

    async def call(port: int) -> Details:
        t_here = target(kind, ("127.0.0.1", port), timeout=TIMEOUT_S, name=name, **service)
        if kind is CheckKind.HTTP:
            async with make_http_client() as client:
                return await fetch_details(t_here, client)
        return await fetch_details(t_here, None)

    details = asyncio.run(answer(reply, done, call))
    line = detail_line(t.service, ProbeResult(ProbeState.UP, details=details))
    assert line.splitlines() == ([line] if line else []), line
    return details


def _is_text(value: DetailValue) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 80 and value == " ".join(value.split())


def _is_count(value: DetailValue) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _are_names(value: DetailValue) -> bool:
    return isinstance(value, tuple) and len(value) <= NAMES_MAX and all(map(_is_text, value))


_SHAPES: dict[str, Callable[[DetailValue], bool]] = {
    "version": _is_text,
    "role": _is_text,
    "server_version": _is_text,
    "models": _are_names,
    "models_loaded": _are_names,
    "queue_running": _is_count,
    "queue_pending": _is_count,
    "vram_used_bytes": _is_count,
    "vram_total_bytes": lambda v: _is_count(v) and v != 0,
    "gpu": _is_text,
    "live": lambda v: v in ("yes", "no"),
    "ready": lambda v: v in ("yes", "no"),
}


def _well_formed(details: Details, names: set[str]) -> dict[str, Any]:
    """The details as a dict, after checking each is one of `names`, once, in its shape."""
    found = dict(details)
    assert set(found) <= names and len(found) == len(details), details
    for key, value in found.items():
        assert _SHAPES[key](value), (key, value)
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


# ==== the HTTP details readers (Ollama, ComfyUI, MinIO) ===========================
# Two requests each, one connection apiece; the server answers each by its path. An answer
# sent well-formed (a 200 with the document the project's API sends, whole or chunked, in
# any pieces) must be read into exactly its details, whatever the other path answered:
# fetch_details swallows every exception, so a reader that broke would otherwise pass.

PathAnswer = tuple[Reply, Any]  # the reply, and what it must be read as (None: anything)


def _response(status: int, body: bytes, chunked: bool, gzipped: bool = False) -> bytes:
    """An HTTP/1.1 answer, its body framed by length or chunked, gzip-encoded if asked."""
    if gzipped:
        body = gzip.compress(body, mtime=0)
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    if gzipped:
        framing = b"Content-Encoding: gzip\r\n" + framing
    if chunked:
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    head = b"HTTP/1.1 %d Reason\r\nContent-Type: application/json\r\nConnection: close\r\n"
    return head % status + framing + b"\r\n\r\n" + body


@st.composite
def _json_answers(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> PathAnswer:
    """A document as the service sends it (whole or chunked, plain or gzip: httpx asks for
    it), or mutated, replaced, refused, cut or spliced."""
    document = draw(documents)
    how = draw(st.sampled_from(["well-formed", "mutated", "any JSON", "status", "edited"]))
    status, body = 200, json.dumps(document, ensure_ascii=draw(st.booleans())).encode()
    if how == "mutated":
        body = to_json(draw(mutated([document]))).encode()
    elif how == "any JSON":
        body = to_json(draw(json_values)).encode()
    elif how == "status":
        status = draw(st.sampled_from([204, 304, 404, 500, 503]))
    data = _response(status, body, draw(st.booleans()), gzipped=draw(st.booleans()))
    if how == "edited":
        data = draw(edited_bytes(data))
    return draw(replies(st.just(data))), document if how == "well-formed" else None


def _by_path(answers: dict[bytes, PathAnswer]) -> Callable[[bytes], Reply]:
    def reply(request: bytes) -> Reply:
        path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
        found = answers.get(path)
        return found[0] if found else Reply(_response(404, b"", chunked=False))

    return reply


# Names as the services give them (no spaces, no control characters: the reader keeps them
# as they are), and GPU names of words.
_NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=("Z", "C")), min_size=1, max_size=40
)
_GPU_NAMES = st.lists(_NAMES, min_size=1, max_size=5).map(" ".join)


def _ollama_model(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": "2024-08-01T10:00:00+09:00",
            "size": 4_661_224_676, "digest": "a" * 64,
            "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B"}}  # fmt: skip


_OLLAMA_NAMES = st.lists(_NAMES, max_size=6) | st.just([f"model{i}:latest" for i in range(60)])
_OLLAMA_LISTS = _OLLAMA_NAMES.map(lambda names: {"models": [_ollama_model(n) for n in names]})


def _names_in(document: Any) -> tuple[str, ...]:
    return tuple(m["name"] for m in document["models"])[:NAMES_MAX]


@fuzz
@given(_json_answers(_OLLAMA_LISTS), _json_answers(_OLLAMA_LISTS))
@example(
    (Reply(_response(200, json.dumps({"models": [_ollama_model("llama3.1:8b")]}).encode(),
                     chunked=True), cuts=(40, 90)), {"models": [_ollama_model("llama3.1:8b")]}),
    (Reply(_response(500, b'{"error":"busy"}', chunked=False)), None),
).via("a chunked list in pieces is read, whatever /api/ps said")  # fmt: skip
def test_ollama_details_read_any_reply(tags: PathAnswer, ps: PathAnswer) -> None:
    reply = _by_path({b"/api/tags": tags, b"/api/ps": ps})
    details = _details(CheckKind.HTTP, reply, _whole_http_head, name="Ollama", path="/api/tags")
    found = _well_formed(details, {"models", "models_loaded"})
    for key, (_, document) in (("models", tags), ("models_loaded", ps)):
        if document is not None:
            assert found.get(key) == _names_in(document), (key, details)


def _comfyui_queue(running: int, pending: int) -> dict[str, Any]:
    def entry(n: int) -> list[Any]:
        prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": n}}}
        return [n, f"prompt-{n}", prompt, {"client_id": "c"}, ["9"]]

    return {"queue_running": [entry(n) for n in range(running)],
            "queue_pending": [entry(running + n) for n in range(pending)]}  # fmt: skip


_COMFYUI_QUEUES = st.builds(_comfyui_queue, st.integers(0, 3), st.integers(0, 5))


@st.composite
def _comfyui_stats(draw: st.DrawFn) -> dict[str, Any]:
    total = draw(st.integers(1, 2**50))
    free = draw(st.integers(0, total))
    gpu = {"name": draw(_GPU_NAMES), "type": "cuda", "index": 0, "vram_total": total,
           "vram_free": free, "torch_vram_total": total // 2,
           "torch_vram_free": free // 2}  # fmt: skip
    system = {"os": "nt", "ram_total": 68_719_476_736, "ram_free": 34_359_738_368,
              "comfyui_version": "0.3.10", "python_version": "3.12.7",
              "embedded_python": True}  # fmt: skip
    return {"system": system, "devices": [gpu, *draw(st.lists(st.just(gpu), max_size=1))]}


def _stats_with_gpu(name: str) -> dict[str, Any]:
    gpu = {"name": name, "type": "cuda", "index": 0, "vram_total": 2**34, "vram_free": 2**33}
    return {"system": {"os": "nt"}, "devices": [gpu]}


_LONG_GPU = _stats_with_gpu("N" * 79 + " GPU")


@fuzz
@given(_json_answers(_COMFYUI_QUEUES), _json_answers(_comfyui_stats()))
@example(
    (
        Reply(_response(200, json.dumps(_comfyui_queue(1, 2)).encode(), chunked=False)),
        _comfyui_queue(1, 2),
    ),
    (Reply(_response(200, json.dumps(_LONG_GPU).encode(), chunked=False)), _LONG_GPU),
).via("found (thorough): a GPU name cut at 80 characters kept the space before the cut")
def test_comfyui_details_read_any_reply(queue: PathAnswer, stats: PathAnswer) -> None:
    reply = _by_path({b"/queue": queue, b"/system_stats": stats})
    details = _details(CheckKind.HTTP, reply, _whole_http_head, name="ComfyUI", path="/")
    found = _well_formed(
        details, {"queue_running", "queue_pending", "vram_used_bytes", "vram_total_bytes", "gpu"}
    )
    if "vram_used_bytes" in found:
        assert found["vram_used_bytes"] <= found["vram_total_bytes"], details
    if queue[1] is not None:
        said = (found.get("queue_running"), found.get("queue_pending"))
        assert said == (len(queue[1]["queue_running"]), len(queue[1]["queue_pending"])), details
    if stats[1] is not None:
        gpu = stats[1]["devices"][0]
        vram = (found.get("vram_used_bytes"), found.get("vram_total_bytes"), found.get("gpu"))
        name = gpu["name"][:80].rstrip()  # a name is cut to 80 characters (no trailing space)
        assert vram == (gpu["vram_total"] - gpu["vram_free"], gpu["vram_total"], name), details


@st.composite
def _health_answers(draw: st.DrawFn) -> PathAnswer:
    """MinIO's health answer (a status, no body), or that cut, spliced or overwritten."""
    status = draw(st.sampled_from([200, 503, 404, 500, 403]))
    data = _response(status, b"", draw(st.booleans()))
    edited = draw(st.booleans())
    if edited:
        data = draw(edited_bytes(data))
    return draw(replies(st.just(data))), None if edited else ("yes" if status == 200 else "no")


@fuzz
@given(_health_answers(), _health_answers())
def test_minio_details_read_any_reply(live: PathAnswer, ready: PathAnswer) -> None:
    reply = _by_path({b"/minio/health/live": live, b"/minio/health/ready": ready})
    details = _details(
        CheckKind.HTTP, reply, _whole_http_head, name="MinIO API", path="/minio/health/live"
    )
    found = _well_formed(details, {"live", "ready"})
    for key, (_, said) in (("live", live), ("ready", ready)):
        if said is not None:
            assert found.get(key) == said, (key, details)
