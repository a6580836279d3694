#!/usr/bin/env python3
"""Benchmark: the history store at full size (prints figures; not a test).

Fills a temporary database with 7 days (the sweep retention) of 12 services swept every
10 s, through the real record_sweep, in two shapes: steady (every sweep reads like the
last: one row) and flapping (one service flips on every sweep: one row per sweep, the
worst case). Then it times what the monitor and the CLI call: record_sweep, uptime over
24 h, state_since, events, and opening the file; and prints the file size.

    .venv/bin/python tests/bench/history.py              # 7 days, 5 rounds
    .venv/bin/python tests/bench/history.py --days 1 --rounds 10
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.core.model import (  # noqa: E402
    CheckKind,
    Health,
    Link,
    Node,
    NodeStatus,
    ProbeResult,
    ProbeState,
    Service,
    ServiceStatus,
    Snapshot,
    TailnetView,
    Topology,
)
from agent.edges.history import History  # noqa: E402

T0 = 1_700_000_000.0
DAY = 86400.0
INTERVAL = 10.0


def make_snapshot(topology: Topology, down: str | None) -> Snapshot:
    nodes = []
    for node in topology.nodes:
        services = tuple(
            ServiceStatus(
                s,
                ProbeResult(ProbeState.DOWN if s.name == down else ProbeState.UP),
                Health.GREEN,
                f"{node.ip}:{s.port}",
            )
            for s in node.services
        )
        nodes.append(
            NodeStatus(node, False, Link.DIRECT, "", True, 1.0, Health.GREEN, (), services)
        )
    return Snapshot(topology, TailnetView(), None, tuple(nodes), Health.GREEN, "", T0)


def timed(fn: Callable[[], object], rounds: int) -> str:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return f"median {statistics.median(times):7.2f} ms  max {max(times):7.2f} ms"


def bench(shape: str, days: float, rounds: int, folder: Path) -> None:
    services = tuple(Service(f"svc{i}", 8000 + i, CheckKind.TCP) for i in range(4))
    topology = Topology(
        "bench",
        tuple(
            Node(f"n{k}", f"Node {k}", f"h{k}", f"100.64.0.{k}", services=services)
            for k in range(3)
        ),
    )
    steady = make_snapshot(topology, None)
    flipped = make_snapshot(topology, "svc1") if shape == "flapping" else steady
    path = folder / f"{shape}.sqlite3"
    sweeps = int(days * DAY / INTERVAL)
    clock = [T0]
    with History(path, clock=lambda: clock[0]) as h:
        started = time.perf_counter()
        for i in range(sweeps):
            clock[0] = T0 + i * INTERVAL
            h.record_sweep(dataclasses.replace(flipped if i % 2 else steady, at=clock[0]))
        per_sweep_us = (time.perf_counter() - started) / sweeps * 1e6
        now = clock[0] + INTERVAL
        print(f"{shape}: {sweeps} sweeps over {days:g} days, {h.size_bytes() / 1e6:.2f} MB")
        print(f"  record_sweep         {per_sweep_us:7.1f} us per sweep (each committed)")
        print(f"  uptime(24 h)         {timed(lambda: h.uptime(now - DAY, now), rounds)}")
        print(f"  state_since          {timed(lambda: h.state_since(now), rounds)}")
        print(f"  events(since 24 h)   {timed(lambda: h.events(since=now - DAY), rounds)}")

    def reopen() -> None:
        with History(path, clock=lambda: now):
            pass

    print(f"  open (quick_check)   {timed(reopen, rounds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for shape in ("steady", "flapping"):
            bench(shape, args.days, args.rounds, Path(folder))


if __name__ == "__main__":
    main()
