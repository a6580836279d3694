"""Serves this node's latest view to its peers (`--share-view`): GET only, read-only.

A small http.server on ONE address: this node's own Tailscale IP as Tailscale reports it
(the wiring passes it; loopback in tests), never a wildcard address. It answers
`GET /v1/view` with the document agent.core.share_view.encode_view made (states and
reason codes only, at most VIEW_MAX_BYTES), 404 for any other path, 405 for any other
method, and 429 when one client asks more than RATE_PER_S times a second on average. One
request at a time, each bounded by REQUEST_TIMEOUT_S, so no client can hold it open.
`close` (the agent stopping) closes the socket and joins the serving thread.
"""

from __future__ import annotations

import http.server
import ipaddress
import logging
import threading
import time
from typing import Any

from agent.core.rate_limit import BURST, RATE_PER_S, ClientRates
from agent.core.share_view import VIEW_MAX_BYTES, VIEW_PATH
from agent.errors import AgentError

__all__ = ["BURST", "RATE_PER_S", "REQUEST_TIMEOUT_S", "ViewServer"]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 2.0


class _Server(http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        self.body = b""
        self.rates = ClientRates()
        super().__init__(address, _Handler)

    def allow(self, client: str) -> bool:
        return self.rates.allow(client, time.monotonic())

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("share-view: a request from %s failed", client_address[0], exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_S
    server_version = "tailnet-agent"
    sys_version = ""

    def _send(
        self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if code == 405:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if not self.server.allow(self.client_address[0]):
            self._send(429, b"too many requests\n")
        elif self.path.split("?", 1)[0] != VIEW_PATH:
            self._send(404, b"not found\n")
        elif not self.server.body:
            self._send(503, b"no sweep yet\n")
        else:
            self._send(200, self.server.body, "application/json")

    do_HEAD = do_GET

    def _refuse(self) -> None:
        self.close_connection = True
        self._send(405, b"read-only: GET only\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("share-view: %s %s", self.client_address[0], format % args)


class ViewServer:
    """The endpoint's lifetime: bind (or move to a new address), publish, close."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        return None if self._server is None else self.address_of(self._server)

    @staticmethod
    def address_of(server: http.server.HTTPServer) -> tuple[str, int]:
        host, port = server.server_address[:2]
        return str(host), int(port)

    def bind(self, host: str) -> None:
        """Serve on `host` (this node's Tailscale IP); a new host moves the endpoint."""
        ip = ipaddress.ip_address(host)  # ValueError for a name: the wiring passes an IP
        if ip.is_unspecified or ip.is_multicast:
            raise AgentError(f"share-view: refusing to listen on {host}")
        if self._server is not None and self.address is not None and self.address[0] == host:
            return
        self.close()
        try:
            server = _Server((host, self.port))
        except OSError as error:
            raise AgentError(f"share-view: cannot listen on {host}:{self.port}: {error}") from error
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.2,), name="share-view", daemon=True
        )
        self._thread.start()
        log.info("sharing this node's view on http://%s:%d%s", host, self.port, VIEW_PATH)

    def publish(self, body: bytes) -> None:
        if len(body) > VIEW_MAX_BYTES:
            log.warning("share-view: the view is %d bytes, over the limit: not shared", len(body))
            body = b""
        if self._server is not None:
            self._server.body = body

    def close(self) -> None:
        """Stop serving: the socket closed and the serving thread joined (on a move to a new
        address, and when the agent stops)."""
        server, self._server = self._server, None
        if server is not None:
            host, port = self.address_of(server)
            server.shutdown()
            server.server_close()
            log.info("share-view endpoint %s:%d closed", host, port)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
