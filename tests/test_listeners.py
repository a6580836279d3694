"""The listening sockets edge against real sockets: a scan sees them, the monitor's cache
reads the table again only once its reading is a minute old."""

from __future__ import annotations

import socket
import subprocess
import sys

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


_FIRST_SCAN = """
import socket, sys
from agent.edges.listeners import scan_listeners
import agent.sweep
before = "psutil" in sys.modules
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
port = sock.getsockname()[1]
seen = any(listener.port == port for listener in scan_listeners().listeners)
print(before, "psutil" in sys.modules, seen)
"""


def test_psutil_is_loaded_by_the_first_scan_and_not_before() -> None:
    # a `check` whose node has no services never scans, and so never pays psutil's import
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_SCAN], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "True", "True"]
