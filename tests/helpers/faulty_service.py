"""A loopback HTTP service whose behaviour a test switches while an agent probes it.

`FaultyService` listens on one port for its whole life, so the agent's topology never
changes: the test sets `mode` and every connection accepted from then on gets that
behaviour — an honest answer ("ok"), silence after the accept ("silent"), a hang-up in the
middle of the status line or of the body ("cut_head", "cut_body"), one byte at a time
("drip", the slowloris) or a 10 MB answer ("huge"). It counts what it did, so a test can
say what the probe's side did to it (hung up on a drip before the drip was over, closed a
huge answer before it was sent) without timing anything.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["HUGE_BYTES", "FaultyService", "Tally", "faulty_service"]

HUGE_BYTES = 10 * 1024 * 1024
DRIP_INTERVAL_S = 0.05  # far below any read timeout: only a total deadline ends a drip
DRIP_BYTES = 2000  # 100 s of dripping: longer than any test waits
OK_BODY = b"ok"
MODES = ("ok", "silent", "cut_head", "cut_body", "drip", "huge")


@dataclass
class Tally:
    """What the service did, per mode: connections served, and how they ended."""

    served: dict[str, int] = field(default_factory=dict)
    cut_by_client: dict[str, int] = field(default_factory=dict)  # the probe hung up first
    completed: dict[str, int] = field(default_factory=dict)  # the whole answer went out
    sent_bytes: dict[str, list[int]] = field(default_factory=dict)  # per connection


class FaultyService:
    """The server; use `faulty_service()` for one that is stopped when the test ends."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.host, self.port = self.listener.getsockname()[:2]
        self.mode = "ok"
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def count(self, what: str, mode: str) -> int:
        with self._lock:
            return int(getattr(self.tally, what).get(mode, 0))

    def sent(self, mode: str) -> list[int]:
        with self._lock:
            return list(self.tally.sent_bytes.get(mode, []))

    def stop(self) -> None:
        self._stopping.set()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)
        self.listener.close()

    # ---- serving ------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            mode = self.mode
            thread = threading.Thread(target=self._serve, args=(conn, mode), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _note(self, what: str, mode: str) -> None:
        with self._lock:
            counts: dict[str, int] = getattr(self.tally, what)
            counts[mode] = counts.get(mode, 0) + 1

    def _serve(self, conn: socket.socket, mode: str) -> None:
        self._note("served", mode)
        sent = [0]
        with conn:
            try:
                conn.settimeout(1.0)
                _read_request(conn)
                conn.settimeout(None)
                self._answer(_Counting(conn, sent), mode)
            except OSError:  # reset or broken pipe: the probe hung up on us
                self._note("cut_by_client", mode)
            else:
                self._note("completed", mode)
        with self._lock:
            self.tally.sent_bytes.setdefault(mode, []).append(sent[0])

    def _answer(self, conn: _Counting, mode: str) -> None:
        if mode == "ok":
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(OK_BODY)}\r\nConnection: close\r\n\r\n"
            conn.sendall(head.encode() + OK_BODY)
        elif mode == "silent":
            conn.sock.settimeout(0.05)
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    if not conn.sock.recv(4096):
                        raise ConnectionResetError("the client closed")
        elif mode == "cut_head":
            conn.sendall(b"HTTP/1.1 200 O")
        elif mode == "cut_body":
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"status": "o')
        elif mode == "drip":
            self._drip(conn)
        elif mode == "huge":
            _send_huge(conn)
        else:
            raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")

    def _drip(self, conn: _Counting) -> None:
        """A status line and an endless header, one byte at a time: every read succeeds."""
        payload = b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * DRIP_BYTES
        for byte in payload:
            if self._stopping.is_set():
                return
            conn.sendall(bytes((byte,)))
            time.sleep(DRIP_INTERVAL_S)


class _Counting:
    """A connection's sending side that counts the bytes the kernel took."""

    def __init__(self, sock: socket.socket, sent: list[int]) -> None:
        self.sock = sock
        self._sent = sent

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self.sock.send(view)
            self._sent[0] += n
            view = view[n:]


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionResetError("the client closed before its request ended")
        data += chunk
    return data


def _send_huge(conn: _Counting) -> None:
    """200, and a 10 MB body that starts with "ok"; a small send buffer, so the count of
    what went out is close to what the probe let in."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE_BYTES}\r\n\r\n".encode())
    block = 64 * 1024
    conn.sendall(OK_BODY + b"x" * (block - len(OK_BODY)))
    for _ in range(HUGE_BYTES // block - 1):
        conn.sendall(b"x" * block)


@contextlib.contextmanager
def faulty_service(host: str = "127.0.0.1") -> Iterator[FaultyService]:
    service = FaultyService(host)
    try:
        yield service
    finally:
        service.stop()
