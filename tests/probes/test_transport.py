"""The shared client's transport (`agent.edges.probes._transport`) against real sockets on loopback:
what goes on the wire, how answers of every framing are read, how failures surface (as the
httpx exceptions the probes classify), that connections close with their response, that
no cookie is kept, and that https still goes through TLS."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from agent import __version__
from agent.core.model import ProbeState, Reason
from agent.edges.probes import http, make_http_client
from agent.edges.probes._errors import classify
from tests.helpers.servers import Address, Route, black_hole, closed_port, http_server
from tests.probes.support import fixed_clock, probe_once, target

WAIT_S = 5.0  # hang guard for a server-side observation

Answer = Callable[[socket.socket, bytes], None]


class Scripted:
    """What a scripted server saw: each request head, and when a client hung up."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.hung_up = threading.Event()


@contextlib.contextmanager
def scripted_server(answer: Answer) -> Iterator[tuple[Address, Scripted]]:
    """A TCP server that reads each request head, records it and lets `answer` reply."""
    seen = Scripted()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(WAIT_S)
                head = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in head:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        head += chunk
                seen.heads.append(head)
                with contextlib.suppress(OSError):
                    answer(conn, head)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2], seen
    finally:
        stopping.set()
        thread.join(WAIT_S)
        listener.close()


def reply(raw: bytes) -> Answer:
    """Send `raw`, then close."""

    def answer(conn: socket.socket, head: bytes) -> None:
        conn.sendall(raw)

    return answer


def get(url: str, **kwargs: object) -> httpx.Response:
    """One GET through a fresh shared-style client (body read, connection closed)."""
    return get_with(url, method="GET", **kwargs)


def get_with(url: str, *, method: str, **kwargs: object) -> httpx.Response:
    async def scenario() -> httpx.Response:
        async with make_http_client() as client:
            return await client.request(method, url, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(scenario())


def error_of(url: str, **kwargs: object) -> BaseException:
    with pytest.raises(httpx.HTTPError) as caught:
        get(url, **kwargs)
    return caught.value


# ==== what goes on the wire ====================================================


def test_the_request_head() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with scripted_server(reply(ok)) as ((host, port), seen):
        result = probe_once(target("http", (host, port), path="/health?full=1"))
    assert (result.state, result.detail) == (ProbeState.UP, "HTTP 200")
    request_line, *lines = seen.heads[0].decode("ascii").split("\r\n\r\n")[0].split("\r\n")
    headers = {name.lower(): value for name, _, value in (ln.partition(": ") for ln in lines)}
    assert request_line == "GET /health?full=1 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["user-agent"] == f"tailnet-agent/{__version__} (probe)"
    assert headers["accept"] == "*/*"
    assert "cookie" not in headers


def test_a_set_cookie_is_never_sent_back() -> None:
    answer = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 0\r\n\r\n"
    with scripted_server(reply(answer)) as ((host, port), seen):

        async def twice() -> tuple[ProbeState, ProbeState, int]:
            async with make_http_client() as client:
                first = await http.probe(target("http", (host, port)), client, clock=fixed_clock)
                second = await http.probe(target("http", (host, port)), client, clock=fixed_clock)
                return first.state, second.state, len(client.cookies)

        states = asyncio.run(twice())
    assert states == (ProbeState.UP, ProbeState.UP, 0)
    assert len(seen.heads) == 2
    assert b"cookie:" not in seen.heads[1].lower()


def test_the_client_refuses_to_store_cookies() -> None:
    async def scenario() -> None:
        async with make_http_client() as client:
            client.cookies = {"session": "abc"}

    with pytest.raises(AttributeError, match="no cookies"):
        asyncio.run(scenario())


# ==== reading answers ==========================================================

BODY_FRAMINGS = [
    ("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello there"),
    (
        "chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\nhello \r\n5\r\nthere\r\n0\r\n\r\n",
    ),
    ("close-delimited", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello there"),
    ("http-1.0", b"HTTP/1.0 200 OK\r\n\r\nhello there"),
]


@pytest.mark.parametrize("raw", [c[1] for c in BODY_FRAMINGS], ids=[c[0] for c in BODY_FRAMINGS])
def test_bodies_of_every_framing_are_read(raw: bytes) -> None:
    with scripted_server(reply(raw)) as (address, _):
        found = probe_once(target("http", address, expect_body="there"))
        missing = probe_once(target("http", address, expect_body="elsewhere"))
    assert (found.state, found.detail) == (ProbeState.UP, "HTTP 200")
    assert (missing.state, missing.reason) == (ProbeState.DOWN, Reason.BODY_MISMATCH)


def test_a_long_response_head_is_accepted() -> None:
    """Up to 100 KiB of status line and headers, as under httpx's own transport."""
    cookies = b"".join(b"Set-Cookie: c%d=%s\r\n" % (i, b"v" * 900) for i in range(60))
    raw = b"HTTP/1.1 200 OK\r\n" + cookies + b"Content-Length: 0\r\n\r\n"
    with scripted_server(reply(raw)) as (address, _):
        result = probe_once(target("http", address))
    assert (result.state, result.detail) == (ProbeState.UP, "HTTP 200")


def test_an_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    with scripted_server(reply(raw)) as (address, _):
        result = probe_once(target("http", address))
    assert (result.state, result.detail) == (ProbeState.UP, "HTTP 204")


def test_an_upgrade_nobody_asked_for_is_a_protocol_mismatch() -> None:
    """h11 refuses a 101 to a request without Upgrade (as it did under httpcore)."""
    raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with scripted_server(reply(raw)) as (address, _):
        result = probe_once(target("http", address))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)


def test_a_body_far_larger_than_the_read_buffer_arrives_whole() -> None:
    body = bytes(range(256)) * 8192 + b"END"  # 2 MiB: reading pauses and resumes
    with http_server({"/big": Route(200, body)}) as (host, port):
        response = get(f"http://{host}:{port}/big")
    assert response.content == body


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_concurrent_answers_never_mix(loop: str) -> None:
    """Every connection of a loop reads through one scratch buffer: no answer may leak
    into another's. 120 probes at once, each looking for its own marker at the end of a
    20 KiB body (several reads each)."""
    routes = {f"/n/{i}": Route(200, f"{i:04d}-" * 4000 + f"<{i}>") for i in range(120)}
    with http_server(routes) as address:
        targets = [target("http", address, path=p, expect_body=f"<{p[3:]}>") for p in routes]

        async def sweep() -> list[ProbeState]:
            async with make_http_client() as client:
                jobs = [http.probe(t, client, clock=fixed_clock) for t in targets]
                return [r.state for r in await asyncio.gather(*jobs)]

        with asyncio.Runner(loop_factory=new_loop(loop)) as runner:
            states = runner.run(sweep())
    assert states == [ProbeState.UP] * len(routes)


def new_loop(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        pytest.fail("uvloop is not installed: pip install uvloop (Linux, macOS)")
    return uvloop.new_event_loop


def test_a_large_request_body_is_sent_with_flow_control() -> None:
    """Not a probe's request, but the shared client's transport takes any: 8 MiB, more
    than the socket buffers hold, so writing pauses until the server has read."""
    body = bytes(range(256)) * 32768

    def count_body(conn: socket.socket, head: bytes) -> None:
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        got = len(head.split(b"\r\n\r\n", 1)[1])
        while got < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        text = str(got).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))

    with scripted_server(count_body) as ((host, port), _):
        response = get_with(f"http://{host}:{port}/upload", method="POST", content=body)
    assert (response.status_code, response.text) == (200, str(len(body)))


def test_a_request_body_nobody_reads_times_out() -> None:
    with black_hole() as (host, port), pytest.raises(httpx.WriteTimeout):
        get_with(f"http://{host}:{port}/", method="POST", content=b"x" * (32 << 20), timeout=0.3)


# ==== connections ==============================================================


def test_the_connection_closes_with_the_response() -> None:
    """The answer allows keep-alive; the client still hangs up as soon as it is done."""

    def keep_alive(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if conn.recv(4096) == b"":
            seen.hung_up.set()

    with scripted_server(keep_alive) as (address, seen):
        result = probe_once(target("http", address))
        assert seen.hung_up.wait(WAIT_S)
    assert result.state is ProbeState.UP


def test_a_reset_after_the_request_is_a_protocol_mismatch() -> None:
    def reset(conn: socket.socket, head: bytes) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with scripted_server(reset) as (address, _):
        result = probe_once(target("http", address))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)
    assert "reset" in result.detail


def test_a_close_without_an_answer_is_a_protocol_mismatch() -> None:
    with scripted_server(reply(b"")) as (address, _):
        result = probe_once(target("http", address))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)
    assert result.detail.endswith("(it closed the connection without an answer)")


def test_garbage_is_a_protocol_mismatch() -> None:
    with scripted_server(reply(b"SSH-2.0-OpenSSH_9.6\r\n")) as (address, _):
        result = probe_once(target("http", address))
    assert (result.state, result.reason) == (ProbeState.DOWN, Reason.PROTOCOL_MISMATCH)


# ==== failures as httpx exceptions =============================================


def test_refused_is_a_connect_error_caused_by_the_os_error() -> None:
    error = error_of(f"http://127.0.0.1:{closed_port()}/")
    assert isinstance(error, httpx.ConnectError)
    assert isinstance(error.__cause__, ConnectionRefusedError)


def test_per_request_read_timeout() -> None:
    with black_hole() as (host, port):
        error = error_of(f"http://{host}:{port}/", timeout=0.2)
    assert isinstance(error, httpx.ReadTimeout)


def test_per_request_connect_timeout() -> None:
    with black_hole(handshake=False) as (host, port):
        error = error_of(f"http://{host}:{port}/", timeout=0.2)
    assert isinstance(error, httpx.ConnectTimeout)


HOST_NAME_CASES = [
    # a name resolves, then each of its addresses is tried in turn
    ("up", True, ProbeState.UP, None),
    ("refused", False, ProbeState.DOWN, Reason.REFUSED),
]


@pytest.mark.parametrize(
    ("listening", "state", "reason"),
    [c[1:] for c in HOST_NAME_CASES],
    ids=[c[0] for c in HOST_NAME_CASES],
)
def test_a_host_name_is_resolved(listening: bool, state: ProbeState, reason: Reason) -> None:
    with http_server({"/health": "ok"}) as (_, port):
        if not listening:
            port = closed_port()
        result = probe_once(target("http", ("localhost", port), path="/health"))
    assert (result.state, result.reason) == (state, reason)


def test_https_goes_through_tls(web_addr: Address) -> None:
    """The plain-HTTP server cannot answer a TLS handshake: the error comes from ssl."""
    host, port = web_addr
    error = error_of(f"https://{host}:{port}/health")
    assert isinstance(error, httpx.ConnectError)
    assert classify(error, 3.0, host)[1] is Reason.TLS
    chain, link = [], error.__cause__
    while link is not None:
        chain.append(link)
        link = link.__cause__ or (link.args[0] if link.args else None)
        if not isinstance(link, BaseException):
            link = None
    assert any(isinstance(e, ssl.SSLError) for e in chain)
