"""The listening sockets edge against real sockets: a scan sees them, the monitor's cache
reads the table again only once its reading is a minute old."""

from __future__ import annotations

import socket

from agent.core.exposure import Listener
from agent.edges.listeners import SCAN_EVERY_S, ListenerCache, scan_listeners


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_scan_sees_a_listening_socket_and_not_a_closed_one() -> None:
    sock = _listening()
    port = sock.getsockname()[1]
    assert Listener("127.0.0.1", port) in scan_listeners().listeners
    sock.close()
    assert Listener("127.0.0.1", port) not in scan_listeners().listeners


def test_the_cache_reads_the_table_again_once_a_minute() -> None:
    now = [100.0]
    cache = ListenerCache(clock=lambda: now[0])
    sock = _listening()
    port = sock.getsockname()[1]
    try:
        assert Listener("127.0.0.1", port) in cache().listeners
    finally:
        sock.close()
    now[0] += SCAN_EVERY_S - 1
    assert Listener("127.0.0.1", port) in cache().listeners  # the minute-old reading
    now[0] += 1
    assert Listener("127.0.0.1", port) not in cache().listeners  # read afresh
