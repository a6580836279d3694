#!/usr/bin/env python3
"""Benchmark: one sweep over synthetic loopback networks (prints figures; not a test).

For each size N it starts a fleet in a child process (so its CPU is not counted):
HTTP services answering `GET /health` 200, a few closed ports (refused) and a few
black holes (accept, never answer). Then, in this process, it builds a topology
of those services spread over loopback "nodes" 127.0.0.1..k, plans and probes
them with the agent's own planner and probes (one shared HTTP client), and
prints per round: wall time of the sweep, CPU time of this process per probe,
and whether every verdict was right.

With one black hole at timeout T the sweep must take about T, not N x T.

    .venv/bin/python tests/bench/sweep.py                 # N = 12 and 500, timeout 2 s, 3 rounds
    .venv/bin/python tests/bench/sweep.py --sizes 12 --rounds 5 --timeout 1
    .venv/bin/python tests/bench/sweep.py --loop asyncio  # the stdlib loop even where uvloop is

The event loop is the one `agent.edges.event_loop.run` picks (uvloop where it is installed
and the sweep has at least UVLOOP_MIN_PROBES probes; `check` and the monitor alike), unless
--loop says.

Only loopback addresses are used. Figures and how to read them: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.core.model import (  # noqa: E402
    BackendState,
    CheckKind,
    Impact,
    Node,
    ProbeState,
    Reason,
    Service,
    TailnetView,
    Topology,
)
from agent.core.plan import plan_sweep  # noqa: E402
from agent.edges.event_loop import loop_factory, run  # noqa: E402
from agent.edges.probes import make_http_client, run_probes  # noqa: E402

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nContent-Type: application/json\r\n\r\n"
OK_BODY = b'{"status":"ok"}'


# ---------------------------------------------------------------- the fleet (child process)


async def _serve(spec: dict[str, list[list[object]]], ready_fd: int) -> None:
    async def health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(OK_RESPONSE + OK_BODY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    servers = [
        await asyncio.start_server(health, str(host), cast(int, port))
        for host, port in spec["http"]
    ]
    holes = []
    for host, port in spec["blackhole"]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((str(host), int(port)))  # type: ignore[call-overload]
        sock.listen(512)  # the kernel completes handshakes; nobody ever reads
        holes.append(sock)
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=600)
    for server in servers:
        server.close()


_next_port = 21000  # below the kernel's ephemeral range: no client port lands on a "closed" one


def _free_port(host: str) -> int:
    global _next_port
    while True:
        _next_port += 1
        with socket.socket() as sock:
            try:
                sock.bind((host, _next_port))
            except OSError:
                continue
            return _next_port


def build_network(
    n_up: int, n_refused: int, n_holes: int, n_nodes: int
) -> tuple[dict[str, list[list[object]]], Topology, dict[tuple[str, str], str]]:
    spec: dict[str, list[list[object]]] = {"http": [], "blackhole": []}
    services: dict[str, list[Service]] = {f"node{i + 1}": [] for i in range(n_nodes)}
    expected: dict[tuple[str, str], str] = {}
    kinds = ["up"] * n_up + ["refused"] * n_refused + ["timeout"] * n_holes
    for index, kind in enumerate(kinds):
        node_index = index % n_nodes
        node_id, host = f"node{node_index + 1}", f"127.0.0.{node_index + 1}"
        port = _free_port(host)
        check = CheckKind.TCP if kind == "refused" and index % 2 else CheckKind.HTTP
        name = f"svc-{index:03d}"
        services[node_id].append(Service(name, port, check, "/health", impact=Impact.DEGRADED))
        expected[(node_id, name)] = kind
        if kind == "up":
            spec["http"].append([host, port])
        elif kind == "timeout":
            spec["blackhole"].append([host, port])
    nodes = tuple(
        Node(node_id, node_id, node_id, f"127.0.0.{i + 1}", services=tuple(svcs))
        for i, (node_id, svcs) in enumerate(services.items())
    )
    return spec, Topology("bench", nodes), expected


def start_fleet(spec: dict[str, list[list[object]]]) -> subprocess.Popen[bytes]:
    read_fd, write_fd = os.pipe()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", json.dumps(spec), str(write_fd)],
        pass_fds=(write_fd,),
        start_new_session=True,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        if ready.readline() != b"ready\n":
            child.kill()
            raise SystemExit("fleet did not start")
    return child


# ---------------------------------------------------------------- the sweep (this process)


def verdict(state: ProbeState, reason: Reason | None) -> str:
    if state is ProbeState.UP:
        return "up"
    return {Reason.REFUSED: "refused", Reason.TIMEOUT: "timeout"}.get(reason, str(reason))  # type: ignore[arg-type]


async def one_sweep(
    topology: Topology, expected: dict[tuple[str, str], str]
) -> tuple[float, float, int]:
    tailnet = TailnetView(backend_state=BackendState.RUNNING)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    plan = plan_sweep(topology, None, tailnet)
    async with make_http_client() as client:
        results = await run_probes(plan.targets, client)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    right = sum(
        verdict(r.state, r.reason) == expected[(t.node_id, t.service.name)]
        for t, r in zip(plan.targets, results, strict=True)
    )
    return wall, cpu, right


def pick_loop(name: str, probes: int) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return loop_factory(probes)


def bench(n: int, rounds: int, timeout: float, loop: str = "auto") -> dict[str, object]:
    holes = refused = 1 if n <= 20 else max(1, n // 100)
    n_nodes = 3 if n <= 20 else 10
    spec, topology, expected = build_network(n, refused, holes, n_nodes)
    topology = Topology(
        topology.name,
        topology.nodes,
        type(topology.defaults)(timeout_s=timeout),
    )
    total = len(expected)
    factory = pick_loop(loop, total)
    fleet = start_fleet(spec)
    try:
        walls, cpus, rights = [], [], []
        for _ in range(rounds):
            if loop == "auto":
                wall, cpu, right = run(one_sweep(topology, expected), probes=total)
            else:
                with asyncio.Runner(loop_factory=factory) as runner:
                    wall, cpu, right = runner.run(one_sweep(topology, expected))
            walls.append(wall)
            cpus.append(cpu)
            rights.append(right)
    finally:
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(10)
    return {
        "services": total,
        "loop": factory.__module__.split(".")[0],
        "up": n,
        "refused": refused,
        "black_holes": holes,
        "timeout_s": timeout,
        "rounds": rounds,
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        "wall_over_timeout": statistics.median(walls) / timeout,
        "cpu_ms_per_probe_median": statistics.median(cpus) / total * 1000,
        "cpu_s_median": statistics.median(cpus),
        "correct_worst": f"{min(rights)}/{total}",
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="12,500", help="healthy services per run (12,500)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0, help="probe timeout, s")
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop (auto: what agent.edges.event_loop.run picks)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(json.loads(args.serve[0]), int(args.serve[1])))
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    if not args.json:
        print(
            "| services | black holes | timeout s | loop | sweep wall s (median, min-max) "
            "| wall / timeout | CPU ms per probe | correct | peak RSS MiB |"
        )
        print("|---:|---:|---:|---|---|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        row = bench(size, args.rounds, args.timeout, args.loop)
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"| {row['services']} | {row['black_holes']} | {row['timeout_s']:g} "
                f"| {row['loop']} "
                f"| {row['wall_s_median']:.3f} ({row['wall_s_min']:.3f}-{row['wall_s_max']:.3f}) "
                f"| {row['wall_over_timeout']:.2f} | {row['cpu_ms_per_probe_median']:.3f} "
                f"| {row['correct_worst']} | {row['peak_rss_mib']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
