#!/usr/bin/env python3
"""Benchmark: the agent's footprint and how fast it tells (prints figures; not a test).

On a private desktop (Xvfb, a session D-Bus with a notification capture server,
a trayer tray host — tests/helpers/desktop.py), over a 12-service loopback
network (3 nodes at 127.0.0.1-3; the backend "FastAPI" is a real process that
is killed and restarted), for each mode — `run --headless`, and the tray
(`tailnet-agent` with PYSTRAY_BACKEND=gtk) — it measures:

  * RSS (median, max) and CPU % of the agent process over --seconds (60) at the
    default interval (10 s), after a warm-up sweep;
  * detection latency: from the backend being killed to the "FastAPI down"
    notification on the bus, over --trials (10): median and max; each trial also
    waits for the recovery notification, then a random part of an interval (so
    kills land anywhere between sweeps, as real outages do) before the next kill.

    .venv/bin/python tests/bench/footprint.py                     # both modes, 60 s, 10 trials
    .venv/bin/python tests/bench/footprint.py --modes headless --seconds 20 --trials 3

Linux only; needs the packages tests/run installs. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.desktop import DesktopEnv, start_desktop, wait_for  # noqa: E402

FAKE_TAILSCALE_DIR = ROOT / "tests" / "helpers" / "fake_tailscale"
TAILSCALE_JSON = ROOT / "tests" / "fixtures" / "tailscale" / "loopback_all_direct.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NODES = {"desktop": "127.0.0.1", "laptop": "127.0.0.2", "macmini": "127.0.0.3"}
INTERVAL_S = 10.0  # the default interval: the topology below sets none


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start_backend(desk: DesktopEnv, port: int) -> subprocess.Popen[bytes]:
    proc = desk.spawn(
        [sys.executable, "-m", "http.server", "--bind", NODES["macmini"], str(port)],
        name="backend",
        cwd=desk.root,
    )
    wait_for(lambda: listening(NODES["macmini"], port), 10, message="backend did not start")
    return proc


def network(desk: DesktopEnv) -> tuple[str, int]:
    """11 HTTP services in one fleet process + the killable backend: (topology TOML, port)."""
    spec: dict[str, list[list[object]]] = {"http": [], "blackhole": []}
    lines = ['version = 1\nname = "footprint"\n']
    layout = {"desktop": 4, "laptop": 3, "macmini": 4}
    for node_id, count in layout.items():
        host = NODES[node_id]
        lines.append(f'[[nodes]]\nid = "{node_id}"\nhostname = "h-{node_id}"\nip = "{host}"\n')
        for index in range(count):
            port = free_port(host)
            spec["http"].append([host, port])
            lines.append(
                f'[[nodes.services]]\nname = "svc{index}"\nport = {port}\ncheck = "http"\n'
                'path = "/health"\n'
            )
        if node_id == "macmini":
            backend_port = free_port(host)
            lines.append(
                f'[[nodes.services]]\nname = "FastAPI"\nport = {backend_port}\n'
                'check = "http"\nimpact = "critical"\n'
            )
    read_fd, write_fd = os.pipe()
    desk.spawn(
        [sys.executable, str(ROOT / "tests" / "bench" / "sweep.py"), "--serve", json.dumps(spec),
         str(write_fd)],
        name="fleet",
        pass_fds=(write_fd,),
    )  # fmt: skip
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        if ready.readline() != b"ready\n":
            raise SystemExit("the fleet did not start")
    return "\n".join(lines), backend_port


def sample(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, RSS MiB) of one process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


def measure(mode: str, args: argparse.Namespace) -> dict[str, object]:
    desk = start_desktop()
    try:
        log = desk.start_notification_server()
        if mode == "tray":
            desk.start_tray_host()
        topology_text, backend_port = network(desk)
        topo = desk.root / "topology.toml"
        topo.write_text(topology_text, encoding="utf-8")
        backend = start_backend(desk, backend_port)
        agent_exe = str(Path(sys.executable).parent / "tailnet-agent")
        command = ["run", "--headless"] if mode == "headless" else ["tray"]
        argv = [agent_exe, *command, "--topology", str(topo)]
        env = {
            "PATH": f"{FAKE_TAILSCALE_DIR}:{desk.env['PATH']}",
            "FAKE_TAILSCALE_JSON": str(TAILSCALE_JSON),
            "PYSTRAY_BACKEND": "gtk",
        }
        agent = desk.spawn(argv, name=f"agent-{mode}", extra_env=env)
        time.sleep(5)  # start-up, the first sweep and its re-check
        if agent.poll() is not None:
            raise SystemExit(f"the agent exited: {desk.log_tail(f'agent-{mode}')}")

        cpu0, _ = sample(agent.pid)
        t0 = time.monotonic()
        rss: list[float] = []
        while time.monotonic() - t0 < args.seconds:
            rss.append(sample(agent.pid)[1])
            time.sleep(1.0)
        cpu1, _ = sample(agent.pid)
        cpu_pct = (cpu1 - cpu0) / (time.monotonic() - t0) * 100

        latencies: list[float] = []
        rng = random.Random(args.seed)
        for trial in range(args.trials):
            # A kill right after a recovery would always land just after a sweep (the worst
            # case); outages start at any moment, so wait a random part of an interval first.
            time.sleep(rng.uniform(0, INTERVAL_S))
            log.mark()
            backend.send_signal(signal.SIGKILL)
            backend.wait(5)
            killed = time.monotonic()
            log.wait_for(lambda r: "FastAPI down" in r["summary"], timeout=60)
            latencies.append(time.monotonic() - killed)
            print(f"  [{mode}] trial {trial + 1}: {latencies[-1]:.2f} s", file=sys.stderr)
            log.mark()
            backend = start_backend(desk, backend_port)
            log.wait_for(lambda r: "FastAPI up" in r["summary"], timeout=60)
        desk.stop(agent, timeout=10)
        return {
            "mode": mode,
            "seconds": args.seconds,
            "rss_mib_median": statistics.median(rss),
            "rss_mib_max": max(rss),
            "cpu_percent": cpu_pct,
            "trials": args.trials,
            "detect_s_median": statistics.median(latencies) if latencies else None,
            "detect_s_max": max(latencies) if latencies else None,
            "outside_connections": desk.outside_connections(),
        }
    finally:
        desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="headless,tray")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1, help="for the kill moments")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [measure(mode, args) for mode in args.modes.split(",")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| mode | RSS MiB median (max) | CPU % | detection s median (max), trials |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['mode']} | {row['rss_mib_median']:.1f} ({row['rss_mib_max']:.1f}) "
            f"| {row['cpu_percent']:.2f} | {row['detect_s_median']:.2f} "
            f"({row['detect_s_max']:.2f}), {row['trials']} |"
        )
        if row["outside_connections"]:
            print(f"WARNING: outside connections attempted: {row['outside_connections']}")


if __name__ == "__main__":
    main()
