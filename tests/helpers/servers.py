"""Real servers on loopback for tests: HTTP, a black hole, a closed port, Redis,
PostgreSQL and WebSocket.

Every helper is a context manager that starts the real thing on 127.0.0.1 (or
::1 where it takes a `host`) on a free port, waits until it answers, yields its
address and stops it in `finally`. Redis and PostgreSQL are the real Debian
binaries; when one is missing the helper raises `MissingTool` naming the apt
package (tests fail, they never skip).

    with http_server({"/health": Route(200, "ok")}) as (host, port): ...
    with black_hole() as (host, port): ...          # handshake done, never answers
    with black_hole(handshake=False) as (host, port): ...   # SYNs dropped: connect hangs
    port = closed_port()
    with redis_server(requirepass="s3cret") as (host, port): ...
    with postgres_server() as (host, port): ...     # trust authentication
    with postgres_server(auth="scram-sha-256") as (host, port): ...  # a password is asked
    with websocket_server("/ws") as (host, port): ...
    with tcp_server(b"SSH-2.0-OpenSSH_9.6\r\n") as (host, port): ...   # something else
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import http.server
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "POSTGRES_PASSWORD",
    "Address",
    "MissingTool",
    "Route",
    "black_hole",
    "closed_port",
    "free_port",
    "has_ipv6_loopback",
    "http_server",
    "postgres_server",
    "redis_server",
    "tcp_server",
    "websocket_server",
]

Address = tuple[str, int]

POSTGRES_PASSWORD = "pg-test-secret"
START_TIMEOUT_S = 20.0  # a hang guard for server start-up, not a speed expectation


class MissingTool(RuntimeError):
    """A server binary the tests need is not installed."""


# ==== plain sockets ============================================================


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bind to 0, read it, close)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on `host` with nothing listening: connecting to it is refused."""
    return free_port(host)


def has_ipv6_loopback() -> bool:
    """True when ::1 can be bound (the machine has an IPv6 loopback)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def black_hole(host: str = "127.0.0.1", *, handshake: bool = True) -> Iterator[Address]:
    """A port that never answers.

    handshake=True: a listening socket that is never accepted from; the kernel
    completes the TCP handshake (listen backlog), then nothing is ever sent.
    handshake=False: the listen queue is kept full, so new SYNs are dropped and
    a connect hangs (how a firewalled or unreachable host looks).
    """
    listener = socket.socket(_family(host), socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind((host, 0))
        address: Address = listener.getsockname()[:2]
        if handshake:
            listener.listen(512)
        else:
            listener.listen(0)
            _fill_listen_queue(listener, address, fillers)
        yield address
    finally:
        for sock in fillers:
            sock.close()
        listener.close()


def _fill_listen_queue(
    listener: socket.socket, address: Address, fillers: list[socket.socket]
) -> None:
    """Connect until a connect no longer completes: the queue is full."""
    for _ in range(8):
        sock = socket.socket(listener.family, socket.SOCK_STREAM)
        fillers.append(sock)
        sock.setblocking(False)
        sock.connect_ex(address)
        _, writable, _ = select.select([], [sock], [], 0.05)
        if not writable:
            return  # this SYN was dropped: the queue is full
    raise RuntimeError("black_hole(handshake=False): the listen queue never filled")


@contextlib.contextmanager
def tcp_server(reply: bytes, host: str = "127.0.0.1") -> Iterator[Address]:
    """A TCP server that, on each connection, reads what arrives first, sends `reply`
    and closes: "something else" answering on a port (a banner, an old server)."""
    listener = socket.socket(_family(host), socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(64)
    listener.settimeout(0.05)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(OSError):
                    conn.recv(4096)
                    conn.sendall(reply)
                    conn.shutdown(socket.SHUT_WR)
                    conn.recv(4096)  # let the client close first: no RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stopping.set()
        thread.join(5)
        listener.close()


# ==== HTTP =====================================================================


@dataclass(frozen=True)
class Route:
    """A scripted answer: status, body, a delay before answering, extra headers."""

    status: int = 200
    body: bytes | str = b""
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    drip: float = 0.0  # > 0: send the body 16 bytes at a time, this many seconds apart
    gate: threading.Barrier | None = None  # answer only once this many requests are in

    def payload(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        route = self.server.routes.get(self.path) or self.server.routes.get(path)
        if route is None:
            route = Route(404, b"not found\n")
        self.server.hits.append(self.path)
        if route.gate is not None:
            try:
                route.gate.wait(START_TIMEOUT_S)
            except threading.BrokenBarrierError:
                return
        if route.delay and self.server.stopping.wait(route.delay):
            return
        body = route.payload()
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if not route.drip:
            self.wfile.write(body)
            return
        for start in range(0, len(body), 16):
            self.wfile.write(body[start : start + 16])
            self.wfile.flush()
            if self.server.stopping.wait(route.drip):
                return

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # many probes connect at once

    def __init__(self, host: str, routes: Mapping[str, Route]) -> None:
        self.address_family = _family(host)
        self.routes = dict(routes)
        self.hits: list[str] = []
        self.stopping = threading.Event()
        super().__init__((host, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a probe hanging up early is normal here


def _as_route(value: Route | int | str | bytes) -> Route:
    if isinstance(value, Route):
        return value
    if isinstance(value, int):
        return Route(value)
    return Route(200, value)


@contextlib.contextmanager
def http_server(
    routes: Mapping[str, Route | int | str | bytes] | None = None, host: str = "127.0.0.1"
) -> Iterator[Address]:
    """A threaded http.server with scripted answers per path (404 for others).

    A route is a Route, or a shorthand: an int (status, empty body) or a str/bytes
    (200 with that body). Paths match with or without their query string.
    """
    server = _HTTPServer(host, {path: _as_route(v) for path, v in (routes or {}).items()})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        bound_host, bound_port = server.server_address[:2]
        yield str(bound_host), int(bound_port)
    finally:
        server.stopping.set()
        for route in server.routes.values():
            if route.gate is not None:
                route.gate.abort()
        server.shutdown()
        server.server_close()
        thread.join(5)


# ==== processes ================================================================


def _wait_until(ready: Any, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not get ready within {START_TIMEOUT_S:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _exchange(address: Address, payload: bytes, timeout: float = 0.5) -> bytes:
    """Send `payload`, return the first bytes answered (b"" on any failure)."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(payload)
            return sock.recv(256)
    except OSError:
        return b""


@contextlib.contextmanager
def redis_server(
    requirepass: str | None = None, extra_args: Sequence[str] = (), *, host: str = "127.0.0.1"
) -> Iterator[Address]:
    """The real redis-server on `host` (a loopback address) and a free port, no
    persistence, in a tmp dir.

    `extra_args` are more redis-server options, e.g. ("--rename-command", "PING", "").
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise MissingTool("redis-server not found: apt-get install redis-server")
    with tempfile.TemporaryDirectory(prefix="tailnet-redis-") as tmp:
        log = Path(tmp, "redis.log")
        port = free_port(host)
        argv = [binary, "--port", str(port), "--bind", host, "--save", "", "--appendonly"]
        argv += ["no", "--dir", tmp, "--daemonize", "no", "--logfile", str(log)]
        if requirepass is not None:
            argv += ["--requirepass", requirepass]
        argv += list(extra_args)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            address: Address = (host, port)
            ping = b"*1\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"
            _wait_until(
                lambda: _exchange(address, ping)[:1] in (b"+", b"-"), proc, "redis-server", log
            )
            yield address
        finally:
            _stop(proc)


def _postgres_bin() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
    )
    if not found:
        raise MissingTool("PostgreSQL server binaries not found: apt-get install postgresql")
    return Path(found[-1]).parent


def _unprivileged() -> dict[str, Any]:
    """Popen arguments that drop root to `nobody` (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "nobody", "group": "nogroup", "extra_groups": []}


@contextlib.contextmanager
def postgres_server(host: str = "127.0.0.1", *, auth: str = "trust") -> Iterator[Address]:
    """A real PostgreSQL: initdb into a tmp dir, listen on `host` (a loopback address)
    and a free port, its unix socket in the tmp dir. `auth` is initdb's -A method: with
    "trust" anyone may log in as postgres; with "scram-sha-256" (or "md5") a password is
    asked (the superuser's is POSTGRES_PASSWORD)."""
    bindir = _postgres_bin()
    drop = _unprivileged()
    tmp = tempfile.mkdtemp(prefix="tailnet-pg-")
    try:
        if drop:
            os.chown(tmp, _uid("nobody"), _gid("nogroup"))
        data = Path(tmp, "data")
        log = Path(tmp, "postgres.log")
        password: tuple[str, ...] = ()
        if auth != "trust":
            pwfile = Path(tmp, "pwfile")
            pwfile.write_text(POSTGRES_PASSWORD + "\n")
            if drop:
                os.chown(pwfile, _uid("nobody"), _gid("nogroup"))
            password = ("--pwfile", str(pwfile))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": tmp}
        with log.open("wb") as out:
            initdb = subprocess.run(
                [
                    *(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", auth),
                    *password,
                    *("--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
                check=False,
                timeout=120,
                **drop,
            )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{_tail(log)}")
        port = free_port(host)
        out = log.open("ab")
        proc = subprocess.Popen(
            [
                *(str(bindir / "postgres"), "-D", str(data), "-h", host, "-p", str(port)),
                *("-k", tmp, "-c", "fsync=off", "-c", "full_page_writes=off"),
                *("-c", "synchronous_commit=off", "-c", "max_connections=20"),
                *("-c", "shared_buffers=8MB", "-c", "logging_collector=off"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
            **drop,
        )
        try:
            address: Address = (host, port)
            _wait_until(lambda: _pg_ready(bindir, address), proc, "postgres", log)
            yield address
        finally:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    cwd=tmp,
                    timeout=10,
                    check=False,
                    **drop,
                )
            _stop(proc)
            out.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pg_ready(bindir: Path, address: Address) -> bool:
    # A cheap socket check first (the SSLRequest answer), then pg_isready for "accepting".
    host, port = address
    if _exchange(address, struct.pack("!II", 8, 80877103))[:1] not in (b"S", b"N"):
        return False
    argv = [str(bindir / "pg_isready"), "-q", "-h", host, "-p", str(port), "-t", "1"]
    done = subprocess.run(
        [*argv, "-U", "postgres"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode == 0


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


# ==== WebSocket ================================================================


@contextlib.contextmanager
def websocket_server(
    path: str = "/ws", host: str = "127.0.0.1", close_codes: list[int | None] | None = None
) -> Iterator[Address]:
    """A real WebSocket server (the websockets library) in a thread with its own loop.

    Upgrades on `path` (it sends "hello" and echoes until the client closes);
    any other path gets an HTTP 404. When `close_codes` is given, the close code
    the client sent (None: no Close frame) is appended to it for each connection.
    """
    from http import HTTPStatus

    from websockets.asyncio.server import ServerConnection, serve
    from websockets.http11 import Request, Response

    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None
    address: list[Address] = []
    failure: list[BaseException] = []

    def route(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != path:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async def echo(connection: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            await connection.send("hello")
            async for message in connection:
                await connection.send(message)
        await connection.wait_closed()
        if close_codes is not None:
            received = connection.protocol.close_rcvd
            close_codes.append(None if received is None else int(received.code))

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with serve(echo, host, 0, process_request=route, compression=None) as server:
            sock = next(iter(server.sockets))
            address.append(sock.getsockname()[:2])
            started.set()
            await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(START_TIMEOUT_S)
    if failure or not address:
        thread.join(5)
        raise RuntimeError(f"websocket server did not start: {failure!r}")
    try:
        yield address[0]
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)
