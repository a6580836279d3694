"""A loopback HTTP server that serves one topology document the way a real web server does.

ETag and Last-Modified on every 200, 304 for a matching If-None-Match or If-Modified-Since,
redirects from other paths, a status to answer instead, and every request's headers
recorded. It can stop and start again on the same port (a source going away and coming
back), and its document can be changed while it runs. Given an ssl.SSLContext
(tests/helpers/tls.py) it serves https.

    server = TopologyServer(TEXT)
    with server.running():
        url = server.url()
        server.serve(OTHER_TEXT)      # a new ETag
        server.stop(); server.start() # the same port
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from email.utils import formatdate

__all__ = ["TopologyServer"]

PATH = "/topology.toml"


class _Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    owner: TopologyServer


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.requests.append({k.lower(): v for k, v in self.headers.items()})
            body, etag, modified = owner.document, owner.etag, owner.last_modified
            location = owner.redirects.get(self.path)
            status = owner.status
        if location is not None:
            self._answer(302, b"", {"Location": location})
            return
        if self.path != PATH:
            self._answer(404, b"not found\n", {})
            return
        if status != 200:
            self._answer(status, b"failing\n", {})
            return
        headers = {"ETag": etag, "Last-Modified": modified, "Content-Type": "application/toml"}
        if self.headers.get("If-None-Match") == etag or (
            self.headers.get("If-None-Match") is None
            and self.headers.get("If-Modified-Since") == modified
        ):
            self._answer(304, b"", headers)
            return
        self._answer(200, body, headers)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != 304 and self.server.owner.send_length:
            self.send_header("Content-Length", str(len(body)))
        elif status != 304:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TopologyServer:
    def __init__(
        self, text: str | bytes, port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.tls = tls
        self.lock = threading.Lock()
        self.requests: list[dict[str, str]] = []
        self.redirects: dict[str, str] = {}
        self.status = 200
        self.send_length = True  # False: no Content-Length, the body ends when the server closes
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._version = 0
        self.serve(text)

    def serve(self, text: str | bytes) -> None:
        """Serve this document from now on, with a new ETag and Last-Modified."""
        body = text.encode("utf-8") if isinstance(text, str) else text
        with self.lock:
            self._version += 1
            self.document = body
            self.etag = f'"{hashlib.sha256(body).hexdigest()[:12]}-{self._version}"'
            self.last_modified = formatdate(1_700_000_000 + self._version, usegmt=True)

    def url(self, path: str = PATH) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.owner = self
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    @contextlib.contextmanager
    def running(self) -> Iterator[TopologyServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
