"""The listening TCP sockets of this machine, read with psutil (for the exposure audit).

psutil reads them the same way on Linux (/proc/net), Windows (GetExtendedTcpTable) and
macOS (libproc), where hand-written code would need three parsers. On macOS (and AIX) the
system-wide list needs administrator rights: without them, each process this user may
inspect is asked instead, and the scan says that other users' sockets may be missing. Only
the local address and port are kept: no process names, no remote addresses.

Reading the table costs 40-70 ms of CPU with 100-2000 listening sockets on a loaded
2-core machine (tests/bench/audit.py): more than the probes of a small sweep. The monitor
therefore reads it through a `ListenerCache`, at most once per SCAN_EVERY_S; `check` and
`audit` read it afresh. psutil is imported by the first scan (10-20 ms of a `check`'s
start-up otherwise, when this machine's node has no services and nothing is scanned).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agent.core.exposure import Listener, ListenerScan

__all__ = ["SCAN_EVERY_S", "ListenerCache", "scan_listeners"]

SCAN_EVERY_S = 60.0  # the monitor's socket table is at most this old

_PARTIAL = (
    "sockets of {n} other users' processes could not be read without administrator rights; "
    "a service they run may be missing here"
)


def scan_listeners() -> ListenerScan:
    """Every listening TCP socket (IPv4 and IPv6) of this machine, or why it cannot be read."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return _scan_per_process()
    except (OSError, psutil.Error) as error:
        return ListenerScan(problem=f"the listening sockets could not be read: {error}")
    return ListenerScan(_listeners(connections))


def _scan_per_process() -> ListenerScan:
    import psutil

    found: list[Listener] = []
    denied = 0
    for process in psutil.process_iter():
        try:
            found += _listeners(process.net_connections(kind="tcp"))
        except psutil.AccessDenied:
            denied += 1
        except (psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue  # it ended meanwhile
    return ListenerScan(tuple(found), partial=_PARTIAL.format(n=denied) if denied else "")


def _listeners(connections: Sequence[Any]) -> tuple[Listener, ...]:
    """The listening TCP sockets among psutil's connections (system-wide or a process's)."""
    import psutil

    out: list[Listener] = []
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or conn.type != socket.SOCK_STREAM:
            continue
        laddr = conn.laddr
        if not laddr:
            continue
        out.append(Listener(str(laddr[0]), int(laddr[1])))
    return tuple(dict.fromkeys(out))


class ListenerCache:
    """`scan_listeners`, read again only once the last reading is `every_s` old (on a
    monotonic clock); a call is safe from any thread (sweeps read it in a worker thread)."""

    def __init__(
        self,
        every_s: float = SCAN_EVERY_S,
        *,
        scan: Callable[[], ListenerScan] = scan_listeners,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._every_s = every_s
        self._scan = scan
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, ListenerScan] | None = None

    def __call__(self) -> ListenerScan:
        with self._lock:
            now = self._clock()
            if self._last is None or now - self._last[0] >= self._every_s:
                self._last = (now, self._scan())
            return self._last[1]
