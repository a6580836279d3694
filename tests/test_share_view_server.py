"""The view endpoint (agent.edges.share_view) on a real socket: bound to the one address it
is given, GET only, the document as published, and a bounded rate."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import pytest

from agent.edges.share_view import BURST, ViewServer
from agent.errors import AgentError
from tests.helpers.servers import free_port

HOST = "127.0.0.9"


def request(port: int, method: str = "GET", path: str = "/v1/view") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=b"x" if method == "POST" else None)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def server() -> Iterator[ViewServer]:
    server = ViewServer(free_port(HOST))
    server.bind(HOST)
    yield server
    server.close()


def test_serves_the_published_view_on_its_address_alone(server: ViewServer) -> None:
    assert request(server.port)[0] == 503  # nothing swept yet
    server.publish(b'{"kind":"tailnet-agent/view"}')
    assert request(server.port) == (200, b'{"kind":"tailnet-agent/view"}')
    assert request(server.port, path="/")[0] == 404
    with pytest.raises(ConnectionRefusedError):  # not on another loopback address
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_read_only(server: ViewServer, method: str) -> None:
    assert request(server.port, method)[0] == 405


def test_rate_is_bounded(server: ViewServer) -> None:
    server.publish(b"{}")
    codes = [request(server.port)[0] for _ in range(int(BURST) + 5)]
    assert codes.count(200) <= BURST + 1 and codes[-1] == 429


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "224.0.0.1"])
def test_never_a_wildcard_address(host: str) -> None:
    with pytest.raises(AgentError, match="refusing to listen"):
        ViewServer(free_port()).bind(host)


def test_close_frees_the_port_and_ends_the_thread() -> None:
    server = ViewServer(free_port(HOST))
    server.bind(HOST)
    server.publish(b"{}")
    assert request(server.port)[0] == 200
    assert [t for t in threading.enumerate() if t.name == "share-view"]
    server.close()
    assert server.address is None
    assert not [t for t in threading.enumerate() if t.name == "share-view"]
    with socket.socket() as probe:
        assert probe.connect_ex((HOST, server.port)) != 0  # nothing listens
    socket.create_server((HOST, server.port)).close()  # and the port can be taken again
