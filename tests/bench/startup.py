#!/usr/bin/env python3
"""Benchmark: start-up and one-shot speed beside blackbox_exporter, in one run (prints a table).

Side by side, over --rounds rounds (median, min-max), every figure a whole process from spawn
to exit:

- `tailnet-agent --version` and `--help`;
- `tailnet-agent check --json` over the loopback fleet of ../shared/bench (fleet.py: --n 500
  HTTP services answering and --m 5 closed ports on 10 loopback "nodes", no black holes, so
  the wall is the tools' own speed and not a timeout), its verdicts checked against the
  fleet's ground truth, and its CPU per probe;
- blackbox_exporter's client (../shared/bench/peers/blackbox_client.py, 64 in flight, the
  exporter already running) over the same fleet, in the same rounds; the ratio of the two;
- the idle RSS of `run --headless` as on a server (no session bus) over 12 of the fleet's
  services; then, on tests/bench/footprint.py's desktop (Xvfb, a session bus, trayer), of
  `run --headless` and of the tray (pystray's gtk backend) over its 12-service network.

The agent runs as installed: its bytecode compiled beforehand (compileall into a temporary
PYTHONPYCACHEPREFIX), and a first run of each command not counted. Its tailscale is a stand-in
shell script (the real CLI is a Go binary; a Python stand-in would add its own start to every
figure): `status --json` prints the fleet's tailnet, `ping` answers "pong ... via ... in 1ms"
at once.

    .venv/bin/python tests/bench/startup.py                   # 5 rounds, then the RSS figures
    .venv/bin/python tests/bench/startup.py --rounds 3 --no-rss
    .venv/bin/python tests/bench/startup.py --server-rss-only --rss-seconds 30   # ~1 min

Loopback only. Figures and how to read them: docs/benchmarks.md ("Start-up").
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback_net import BenchNode, BenchService, write_network  # noqa: E402

__all__ = ["main"]

SHARED_BENCH = ROOT.parent / "shared" / "bench"
TIMEOUT_S = 2.0

STAND_IN = """#!/bin/sh
# tailscale stand-in for the start-up bench: answers at once, never networks
case "$1" in
  status) exec cat {status} ;;
  ping) for ip; do :; done; echo "pong from peer ($ip) via $ip:41641 in 1ms"; exit 0 ;;
  *) echo "usage: tailscale status --json | ping IP" >&2; exit 2 ;;
esac
"""


def _peers_module(bench: Path) -> ModuleType:
    sys.path.insert(0, str(bench))
    import run_peers  # ../shared/bench: processes, timing, blackbox_exporter

    return run_peers


def _fleet(peers: ModuleType, bench: Path, folder: Path, args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    manifest = folder / "fleet.json"
    argv = [
        sys.executable, str(bench / "fleet.py"), "--n", str(args.n), "--k", "0",
        "--m", str(args.m), "--nodes", "10", "--manifest", str(manifest),
        "--timeout-hint", f"{TIMEOUT_S:g}", "--max-seconds", "1800",
    ]  # fmt: skip
    with (folder / "fleet.log").open("wb") as log:
        fleet = peers.start_bg("fleet", argv, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while not manifest.exists():
        if fleet.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the fleet did not start: {(folder / 'fleet.log').read_text()}")
        time.sleep(0.05)
    time.sleep(0.2)
    result: dict = json.loads(manifest.read_text())  # type: ignore[type-arg]
    return result


def _network(
    endpoints: list[dict],
    folder: Path,
    interval: str = "10s",  # type: ignore[type-arg]
) -> tuple[Path, Path, dict[str, str]]:
    by_host: dict[str, list[BenchService]] = defaultdict(list)
    expected: dict[str, str] = {}
    for ep in endpoints:
        by_host[ep["host"]].append(BenchService(ep["id"], ep["port"], ep["check"], ep["path"]))
        expected[ep["id"]] = ep["expected"]
    nodes = [BenchNode(f"n{i}", host, by_host[host]) for i, host in enumerate(sorted(by_host))]
    network = write_network(
        folder, nodes, interval=interval, timeout=f"{TIMEOUT_S:g}s", self_host="127.0.0.254"
    )
    bindir = folder / "bin"
    bindir.mkdir()
    stand_in = bindir / "tailscale"
    stand_in.write_text(STAND_IN.format(status=shlex.quote(str(network.status))))
    stand_in.chmod(0o755)
    return network.topology, stand_in, expected


def _check_verdicts(stdout: str, expected: dict[str, str]) -> int:
    """How many of check's verdicts match the fleet's truth (up, or down for a refusal)."""
    right = 0
    for node in json.loads(stdout)["nodes"]:
        for service in node["services"]:
            want = expected.get(service["name"])
            if want == "up" and service["state"] == "up":
                right += 1
            elif want == "refused" and service["state"] == "down":
                right += "refused" in (service.get("reason") or "")
    return right


def _headless_rss(
    agent: str,
    manifest: dict,
    folder: Path,
    env: dict[str, str],
    seconds: float,  # type: ignore[type-arg]
) -> list[float]:
    """VmRSS (MiB) of `run --headless` as on a server (no session bus, no display) over 12
    of the fleet's answering services, sampled every second after its first sweeps (its
    bytecode cached by a first run, as on an installed agent)."""
    small = [e for e in manifest["endpoints"] if e["expected"] == "up"][:12]
    topology, stand_in, _ = _network(small, folder / "headless", interval="2s")
    quiet = {k: v for k, v in env.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY")}
    runtime = folder / "headless" / "runtime"
    runtime.mkdir(mode=0o700)
    quiet.update(XDG_RUNTIME_DIR=str(runtime))
    argv = [agent, "run", "--headless", "--topology", str(topology), "--tailscale", str(stand_in)]
    # A first run, not measured, as the warm-ups above: PYTHONPYCACHEPREFIX is a fresh folder,
    # so every module this path imports beyond check's would otherwise be compiled inside the
    # measured process (its parser's garbage left in the heap: +5 MiB of RSS).
    with (folder / "headless" / "warm-up.log").open("wb") as err:
        warm_up = subprocess.Popen(
            argv, env=quiet, stdin=subprocess.DEVNULL, stdout=err, stderr=err
        )
    time.sleep(6)
    warm_up.terminate()
    warm_up.wait(15)
    with (folder / "headless" / "stderr.log").open("wb") as err:
        process = subprocess.Popen(
            argv, env=quiet, stdin=subprocess.DEVNULL, stdout=err, stderr=err
        )
    samples: list[float] = []
    try:
        time.sleep(6)  # start-up, the first sweeps and their re-check
        if process.poll() is not None:
            raise SystemExit(
                f"run --headless exited: {(folder / 'headless' / 'stderr.log').read_text()}"
            )
        for _ in range(int(seconds)):
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
            samples.append(int(rss.split()[1]) / 1024)
            time.sleep(1)
    finally:
        process.terminate()
        process.wait(15)
    return samples


def _spread(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=500, help="HTTP services that answer")
    parser.add_argument("--m", type=int, default=5, help="closed ports")
    parser.add_argument("--bench", type=Path, default=SHARED_BENCH, help="../shared/bench")
    parser.add_argument(
        "--agent",
        default=str(Path(sys.executable).parent / "tailnet-agent"),
        help="the tailnet-agent to time (default: this venv's; a server install has no test "
        "tools beside it)",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the headless and tray RSS")
    parser.add_argument(
        "--server-rss-only",
        action="store_true",
        help="only the idle RSS of `run --headless` on a server: no rounds, no desktop",
    )
    parser.add_argument("--rss-seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.server_rss_only and args.no_rss:
        parser.error("--server-rss-only and --no-rss exclude each other")
    peers = _peers_module(args.bench)
    folder = Path(tempfile.mkdtemp(prefix="tailnet-startup-"))
    agent = args.agent
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAILNET_AGENT_", "XDG_", "PYTHONDONTWRITEBYTECODE"))
    }
    env.update(
        HOME=str(folder / "home"),
        XDG_CONFIG_HOME=str(folder / "config"),
        XDG_STATE_HOME=str(folder / "state"),
        XDG_CACHE_HOME=str(folder / "cache"),
        PYTHONPYCACHEPREFIX=str(folder / "pycache"),  # as installed: bytecode cached
        NO_COLOR="1",
    )
    figures: dict[str, list[float]] = defaultdict(list)
    notes: list[str] = []
    try:
        manifest = _fleet(peers, args.bench, folder, args)
        if args.server_rss_only:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "agent")], env=env)
            server = _headless_rss(agent, manifest, folder, env, args.rss_seconds)
            load = os.getloadavg()
            print(
                f"`run --headless` idle RSS MiB, no session bus (a server), {len(server)} "
                f"samples: {_spread(server, 2)}; load average {load[0]:.1f}"
            )
            return 0
        topology, stand_in, expected = _network(manifest["endpoints"], folder)
        targets = folder / "targets.tsv"
        targets.write_text(
            "".join(
                "\t".join([e["id"], e["check"], e["host"], str(e["port"]), e["path"], e["url"]])
                + "\n"
                for e in manifest["endpoints"]
            )
        )
        exporter, address, _ = peers.start_blackbox(str(folder), TIMEOUT_S)
        blackbox = [
            sys.executable, str(args.bench / "peers" / "blackbox_client.py"), "--exporter",
            address, "--targets", str(targets), "--concurrency", "64", "--timeout",
            f"{TIMEOUT_S:g}",
        ]  # fmt: skip
        check = [
            agent,
            "check",
            "--json",
            "--topology",
            str(topology),
            "--tailscale",
            str(stand_in),
        ]
        # the floor: plain Python (the base interpreter, no venv) sweeping the same targets
        bare = [
            getattr(sys, "_base_executable", sys.executable), str(ROOT / "tests" / "bench" /
            "bare_sweep.py"), str(targets), "--timeout", f"{TIMEOUT_S:g}",
        ]  # fmt: skip
        commands = {
            "--version": [agent, "--version"],
            "--help": [agent, "--help"],
            "check --json": check,
        }
        # as installed: the agent's bytecode compiled beforehand (into PYTHONPYCACHEPREFIX)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "agent")], env=env)
        for argv in commands.values():  # warm-up, not counted
            peers.run_timed(argv, 60, env=env)
        total = len(expected)
        for _ in range(args.rounds):
            cpu0 = peers.proc_cpu_s(exporter.pid)
            run = peers.run_timed(blackbox, 60)
            exporter_cpu = (peers.proc_cpu_s(exporter.pid) or 0.0) - (cpu0 or 0.0)
            verdicts = dict(peers.cls_blackbox(line, None, TIMEOUT_S) for _, line in run["lines"])
            figures["blackbox wall"].append(run["wall_s"])
            figures["blackbox cpu"].append(run["cpu_s"] + exporter_cpu)
            figures["blackbox right"].append(
                sum(verdicts.get(i) == state for i, state in expected.items())
            )
            for name, argv in commands.items():
                run = peers.run_timed(argv, 60, env=env)
                figures[f"{name} wall"].append(run["wall_s"])
                figures[f"{name} cpu"].append(run["cpu_s"])
                figures[f"{name} rss"].append(run["maxrss_kb"] / 1024)
                if name == "check --json":
                    out = "\n".join(line for _, line in run["lines"])
                    figures["check right"].append(_check_verdicts(out, expected))
            figures["ratio"].append(figures["check --json wall"][-1] / figures["blackbox wall"][-1])
            run = peers.run_timed(bare, 60)
            figures["bare wall"].append(run["wall_s"])
            figures["bare cpu"].append(run["cpu_s"])
            bare_states = dict(line.split() for _, line in run["lines"] if line.strip())
            figures["bare right"].append(sum(bare_states.get(i) == s for i, s in expected.items()))
            figures["bare ratio"].append(run["wall_s"] / figures["blackbox wall"][-1])
        figures["blackbox idle rss"].append(peers.proc_status_kb(exporter.pid, "VmHWM") / 1024)
        if not args.no_rss:
            figures["server headless rss"] = _headless_rss(
                agent, manifest, folder, env, args.rss_seconds
            )
    finally:
        peers.stop_all()
    if not args.no_rss:
        import footprint  # Xvfb, a session bus and trayer: the tray as a person runs it

        for mode in ("headless", "tray"):  # on a desktop: a session bus, a tray host
            measured = footprint.measure(
                mode, argparse.Namespace(seconds=args.rss_seconds, trials=0, seed=1)
            )
            figures[f"{mode} rss"].append(float(measured["rss_mib_median"]))  # type: ignore[arg-type]
            if measured["outside_connections"]:
                notes.append(f"{mode}: outside connections {measured['outside_connections']}")

    load = os.getloadavg()
    print(
        f"\n{args.rounds} rounds, median (min-max); {total} endpoints ({args.n} up, {args.m} "
        f"refused) on 10 loopback nodes; load average at the end {load[0]:.1f}\n"
    )
    print("| figure | tailnet-agent | blackbox_exporter |")
    print("|---|---:|---:|")
    print(f"| `--version` wall s | {_spread(figures['--version wall'])} | |")
    print(f"| `--help` wall s | {_spread(figures['--help wall'])} | |")
    print(f"| `--version` CPU s | {_spread(figures['--version cpu'])} | |")
    print(
        f"| {total} endpoints, wall s | {_spread(figures['check --json wall'])} (check --json) "
        f"| {_spread(figures['blackbox wall'])} (client, exporter running) |"
    )
    print(f"| ratio check / blackbox (per round) | {_spread(figures['ratio'], 2)} | 1 |")
    print(
        f"| the floor: bare asyncio sweep (tests/bench/bare_sweep.py), wall s "
        f"| {_spread(figures['bare wall'])}, ratio {_spread(figures['bare ratio'], 2)}, "
        f"right {min(figures['bare right']):.0f}/{total} | |"
    )
    per_probe = [1000 * c / total for c in figures["check --json cpu"]]
    per_probe_bb = [1000 * c / total for c in figures["blackbox cpu"]]
    print(
        f"| CPU ms per probe (whole process) | {_spread(per_probe, 2)} "
        f"| {_spread(per_probe_bb, 2)} (client + exporter) |"
    )
    print(
        f"| peak RSS MiB | {_spread(figures['check --json rss'], 1)} (check) "
        f"| {_spread(figures['blackbox idle rss'], 1)} (exporter VmHWM) |"
    )
    print(
        f"| verdicts right (worst round) | {min(figures['check right']):.0f}/{total} "
        f"| {min(figures['blackbox right']):.0f}/{total} |"
    )
    if not args.no_rss:
        server = figures["server headless rss"]
        print(
            f"| `run --headless` idle RSS MiB, no session bus (a server) | {_spread(server, 1)} | |"
        )
        print(
            f"| `run --headless` idle RSS MiB, desktop session | {figures['headless rss'][0]:.1f} |"
            " |"
        )
        print(
            f"| tray (pystray gtk) idle RSS MiB, desktop session | {figures['tray rss'][0]:.1f} | |"
        )
    for note in notes:
        print(f"WARNING: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
