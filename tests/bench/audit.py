#!/usr/bin/env python3
"""Benchmark: the exposure audit's cost per sweep (prints figures; not a test).

Each sweep on a node with services reads this machine's socket table
(`agent.edges.listeners.scan_listeners`, psutil) and judges it (`core.exposure`). This
opens N extra listening TCP sockets on 127.0.0.1 (in this process), then times R scans and
audits of a Sparklio-like node and prints, per N, the wall and CPU time of one scan and of
one judgement (median of the rounds), and how many listening sockets the scan saw.

    .venv/bin/python tests/bench/audit.py                  # N = 100 and 2000, 20 rounds
    .venv/bin/python tests/bench/audit.py --sizes 0 500 --rounds 50

Only loopback sockets are opened; nothing connects anywhere. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.core.exposure import audit_exposure  # noqa: E402
from agent.core.model import CheckKind, Impact, Node, Service, Topology  # noqa: E402
from agent.edges.listeners import scan_listeners  # noqa: E402

NODE = Node(
    "macmini",
    "Mac mini — Backend Server",
    "woosuns-mac-mini",
    "127.0.0.5",
    "macos",
    services=tuple(
        Service(name, port, CheckKind.TCP, impact=Impact.CRITICAL)
        for name, port in (("FastAPI", 8000), ("PostgreSQL", 5432), ("Redis", 6379))
    ),
)
TOPOLOGY = Topology("bench", (NODE,))


def open_listeners(count: int) -> list[socket.socket]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        socks.append(sock)
    return socks


def timed(fn, rounds: int) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    walls, cpus = [], []
    result = None
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds, median per call")
    print(f"{'extra sockets':>13} {'seen':>6} {'scan wall ms':>13} {'scan CPU ms':>12} "
          f"{'judge ms':>9}")  # fmt: skip
    for size in args.sizes:
        socks = open_listeners(size)
        try:
            wall, cpu, scan = timed(scan_listeners, args.rounds)
            judge = functools.partial(audit_exposure, TOPOLOGY, "macmini", ("127.0.0.5",), scan)
            judged, _, _ = timed(judge, args.rounds)
            seen = len(scan.listeners)  # type: ignore[attr-defined]
            print(f"{size:>13} {seen:>6} {wall:>13.2f} {cpu:>12.2f} {judged:>9.3f}")
        finally:
            for sock in socks:
                sock.close()


if __name__ == "__main__":
    main()
