#!/usr/bin/env python3
"""Soak: `tailnet-agent run --headless` for minutes over a flapping loopback network (figures).

Not a test (tests/bench is not collected): it runs for --minutes (default 10) and prints what
it measured. The network is --services HTTP services (default 50) spread over --nodes peers on
127.0.0.2.. (this machine is 127.0.0.1), every one critical on an always-on peer, so every
confirmed change is announced on its own. They flap on a schedule drawn from --seed:

- outages: the listener is closed for 6-20 s (several sweeps), then serves again;
- blips: the listener is closed for 0.2-0.8 s, shorter than the monitor's confirmation (a
  failed reading is re-checked about 1 s later and must fail again to count).

The agent runs as users run it headless (no session bus, so notifications go to the log) with
the stand-in tailscale (tests/helpers/fake_tailscale), the loopback guard
(tests/helpers/netguard) and `--metrics` on 127.0.0.1 (where the sweep times are read). Every
10 s the agent's RSS and open file descriptors are read from /proc; the log's notifications
are matched against the schedule:

- every outage announced exactly once as down (after its start) and once as up (after its end);
- no announcement at all for a blip;
- nothing else announced, nothing held back.

    .venv/bin/python tests/bench/soak.py                 # 10 minutes, 50 services, seed 1
    .venv/bin/python tests/bench/soak.py --minutes 2 --seed 7
    .venv/bin/python tests/bench/soak.py --minutes 10 --seed 2 --trace-memory   # where it goes

Exit status 0 when every check held, 1 otherwise. Figures: docs/RELIABILITY.md ("Soak").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback_net import BenchNode, BenchService, write_network  # noqa: E402

__all__ = ["main"]

FAKE_TAILSCALE = ROOT / "tests" / "helpers" / "fake_tailscale"
NETGUARD = ROOT / "tests" / "helpers" / "netguard"
MEMORY_TRACE = Path(__file__).resolve().parent / "memory_trace.py"
BASE_PORT = 23000  # below the kernel's ephemeral range (32768 up)
INTERVAL_S = 2.0
SETTLE_S = 15.0  # no flap in the first and last seconds: start-up and the last recovery
OUTAGE_S = (6.0, 20.0)
BLIP_S = (0.2, 0.8)
UP_GAP_S = (8.0, 40.0)
BLIP_SHARE = 0.6
DOWN_SLACK_S = 1.5  # a down is announced after its outage began, before it ended + this
UP_WITHIN_S = 8.0  # an up is announced within this of the outage's end
SAMPLE_S = 10.0

HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
NAME = re.compile(r"\bsvc-\d{2}\b")
PROBED_DOWN = re.compile(r"probe \S+/(svc-\d{2}) \S+ \S+: down")
LEVEL = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@dataclass(frozen=True)
class Flap:
    service: str
    start: float  # seconds since the agent started
    end: float

    @property
    def blip(self) -> bool:
        return self.end - self.start < 1.0


@dataclass
class Announcement:
    at: float
    service: str
    kind: str  # down | up
    line: str


@dataclass
class Sample:
    at: float
    rss_kib: int
    fds: int
    cpu_s: float


@dataclass
class Log:
    lines: list[tuple[float, str]] = field(default_factory=list)


def schedule(services: list[str], seconds: float, rng: random.Random) -> list[Flap]:
    flaps: list[Flap] = []
    last = seconds - SETTLE_S
    for name in services:
        t = SETTLE_S + rng.uniform(0, 20)
        while True:
            if rng.random() < BLIP_SHARE:
                length = rng.uniform(*BLIP_S)
                gap = rng.uniform(4.0, 12.0)
            else:
                length = rng.uniform(*OUTAGE_S)
                gap = rng.uniform(*UP_GAP_S)
            if t + length > last:
                break
            flaps.append(Flap(name, t, t + length))
            t += length + gap
    return sorted(flaps, key=lambda f: f.start)


class Service:
    """One HTTP service on loopback that can be taken down (listener closed) and back."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None

    async def up(self) -> None:
        self.server = await asyncio.start_server(
            self._answer, self.host, self.port, reuse_address=True
        )

    async def down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(HTTP_OK)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()


def _proc_sample(pid: int, at: float) -> Sample | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return Sample(at, rss, fds, cpu)


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
        text = answer.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("tailnet_sweeps_total ", "tailnet_sweep_duration_seconds ")):
            key, value = line.split()
            values[key] = float(value)
    return values


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_announcements(log: Log) -> tuple[list[Announcement], list[str]]:
    """The notifications in the log (one per service named in them) and lines that say a
    notification was held back."""
    found: list[Announcement] = []
    held: list[str] = []
    records: list[tuple[float, str]] = []
    for at, line in log.lines:  # a coalesced notification's message goes on over lines
        if records and not LEVEL.match(line):
            records[-1] = (records[-1][0], f"{records[-1][1]}; {line}")
        else:
            records.append((at, line))
    for at, line in records:
        if "notification held back" in line:
            held.append(line)
        if "notification (log only" not in line:
            continue
        text = line.split("):", 1)[1]
        kind = "down" if " down" in text else "up" if (" up" in text or "back" in text) else "?"
        for name in dict.fromkeys(NAME.findall(text)):
            found.append(Announcement(at, name, kind, line))
    return found, held


def blips_probed(flaps: list[Flap], log: Log) -> int:
    """How many blips a probe met (logged at -v as it failed): those a sweep really saw."""
    downs = [(at, m.group(1)) for at, line in log.lines if (m := PROBED_DOWN.search(line))]
    return sum(
        any(name == f.service and f.start <= at <= f.end + 1.0 for at, name in downs)
        for f in flaps
        if f.blip
    )


def match(flaps: list[Flap], said: list[Announcement]) -> dict[str, object]:
    """Each outage against the announcements of its service: one down, one up, in time."""
    left = list(said)
    missing: list[str] = []
    down_delays: list[float] = []
    up_delays: list[float] = []
    for flap in (f for f in flaps if not f.blip):
        for kind, lo, hi, delays in (
            ("down", flap.start, flap.end + DOWN_SLACK_S, down_delays),
            ("up", flap.end, flap.end + UP_WITHIN_S, up_delays),
        ):
            hit = next(
                (
                    a
                    for a in left
                    if a.service == flap.service and a.kind == kind and lo <= a.at <= hi
                ),
                None,
            )
            if hit is None:
                missing.append(
                    f"{flap.service} {kind} for the outage {flap.start:.1f}-{flap.end:.1f} s"
                )
                continue
            left.remove(hit)
            delays.append(hit.at - (flap.start if kind == "down" else flap.end))
    blip_alarms = [
        a
        for a in left
        for f in flaps
        if f.blip and a.service == f.service and f.start <= a.at <= f.end + UP_WITHIN_S
    ]
    return {
        "missing": missing,
        "extra": left,
        "blip_alarms": blip_alarms,
        "down_delays": down_delays,
        "up_delays": up_delays,
    }


async def _play(
    services: dict[str, Service], flaps: list[Flap], started: float, stop_at: float
) -> None:
    moves = sorted(
        [(f.start, "down", f.service) for f in flaps] + [(f.end, "up", f.service) for f in flaps]
    )
    for at, move, name in moves:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        if move == "down":
            await services[name].down()
        else:
            await services[name].up()
    await asyncio.sleep(max(0.0, stop_at - time.monotonic()))


def _reader(stream: object, log: Log, started: float) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        log.lines.append((time.monotonic() - started, raw.decode("utf-8", "replace").rstrip()))


def _sampler(
    pid: int,
    port: int,
    started: float,
    done: threading.Event,
    samples: list[Sample],
    sweeps: list[tuple[float, float]],
) -> None:
    next_sample = 0.0
    last_total = -1.0
    while not done.is_set():
        now = time.monotonic() - started
        if now >= next_sample:
            sample = _proc_sample(pid, now)
            if sample is not None:
                samples.append(sample)
            next_sample += SAMPLE_S
        try:
            values = _scrape(port)
        except OSError:
            values = {}
        total = values.get("tailnet_sweeps_total", -1.0)
        if total != last_total and "tailnet_sweep_duration_seconds" in values:
            sweeps.append((now, values["tailnet_sweep_duration_seconds"]))
            last_total = total
        done.wait(0.5)


def _rest_fds(samples: list[Sample]) -> int:
    """The descriptors open between sweeps: the fewest of these samples (one taken while a
    sweep's 50 connections are open counts them too)."""
    return min(s.fds for s in samples)


def row(label: str, value: str) -> None:
    print(f"| {label} | {value} |")


def _figures(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {statistics.median(ordered):.3f}, p95 {p95:.3f}, max {ordered[-1]:.3f} "
        f"(n={len(ordered)})"
    )


async def soak(args: argparse.Namespace, folder: Path) -> int:
    seconds = args.minutes * 60
    rng = random.Random(args.seed)
    names = [f"svc-{i:02d}" for i in range(args.services)]
    hosts = [f"127.0.0.{2 + i}" for i in range(args.nodes)]
    nodes: list[BenchNode] = []
    servers: dict[str, Service] = {}
    for index, name in enumerate(names):
        host = hosts[index % len(hosts)]
        servers[name] = Service(host, BASE_PORT + index)
    for number, host in enumerate(hosts):
        mine = [BenchService(n, servers[n].port) for n in names if servers[n].host == host]
        nodes.append(BenchNode(f"n{number + 1}", host, mine))
    network = write_network(folder, nodes, interval=f"{INTERVAL_S:g}s", timeout="1s")
    flaps = schedule(names, seconds, rng)
    for service in servers.values():
        await service.up()

    metrics_port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAILNET_AGENT_", "FAKE_TAILSCALE_", "XDG_", "DBUS_"))
        and k not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    runtime = folder / "runtime"
    runtime.mkdir(mode=0o700)
    env.update(
        PATH=f"{FAKE_TAILSCALE}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        + env.get("PATH", ""),
        FAKE_TAILSCALE_JSON=str(network.status),
        HOME=str(folder / "home"),
        XDG_CONFIG_HOME=str(folder / "config"),
        XDG_STATE_HOME=str(folder / "state"),
        XDG_DATA_HOME=str(folder / "data"),
        XDG_CACHE_HOME=str(folder / "cache"),
        XDG_RUNTIME_DIR=str(runtime),
        PYTHONPATH=str(NETGUARD),
        NETGUARD_LOG=str(folder / "netguard.log"),
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    agent_exe = str(Path(sys.executable).parent / "tailnet-agent")
    argv = [
        agent_exe, "run", "--headless", "-v", "--topology", str(network.topology),
        "--metrics", f"127.0.0.1:{metrics_port}",
    ]  # fmt: skip
    if args.trace_memory or args.memory_series:  # the same agent, in this interpreter
        mode = "trace" if args.trace_memory else "light"
        argv[:1] = [sys.executable, str(MEMORY_TRACE), str(folder / "memory"), "60", mode]
    log = Log()
    samples: list[Sample] = []
    sweeps: list[tuple[float, float]] = []
    started = time.monotonic()
    agent = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    reader = threading.Thread(target=_reader, args=(agent.stderr, log, started), daemon=True)
    reader.start()
    done = threading.Event()
    sampler = threading.Thread(
        target=_sampler, args=(agent.pid, metrics_port, started, done, samples, sweeps),
        daemon=True,
    )  # fmt: skip
    sampler.start()
    print(
        f"soak: {args.minutes:g} min, {args.services} services on {args.nodes} peers, "
        f"interval {INTERVAL_S:g} s, seed {args.seed}: {sum(not f.blip for f in flaps)} outages, "
        f"{sum(f.blip for f in flaps)} blips; agent pid {agent.pid}",
        flush=True,
    )
    try:
        await _play(servers, flaps, started, started + seconds)
    finally:
        done.set()
        sampler.join(5)
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGTERM)
        try:
            code = agent.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            code = agent.wait(5)
        reader.join(5)
        for service in servers.values():
            await service.down()
    return report(args, flaps, log, samples, sweeps, code, folder)


def report(
    args: argparse.Namespace,
    flaps: list[Flap],
    log: Log,
    samples: list[Sample],
    sweeps: list[tuple[float, float]],
    code: int,
    folder: Path,
) -> int:
    said, held = parse_announcements(log)
    result = match(flaps, said)
    outages = [f for f in flaps if not f.blip]
    blips = [f for f in flaps if f.blip]
    missing = result["missing"]
    extra = result["extra"]
    blip_alarms = result["blip_alarms"]
    assert isinstance(missing, list) and isinstance(extra, list)
    assert isinstance(blip_alarms, list)
    errors = [line for _, line in log.lines if line.startswith(("ERROR", "CRITICAL", "Traceback"))]
    guard = folder / "netguard.log"
    outside = guard.read_text().splitlines() if guard.exists() else []
    minute = [s for s in samples if s.at <= 60.0 + SAMPLE_S]
    first, last = (minute[-1] if minute else samples[0]), samples[-1]
    durations_first = [d for t, d in sweeps if t < 120]
    durations_last = [d for t, d in sweeps if t > args.minutes * 60 - 120]
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| flaps scheduled | {len(outages)} outages (6-20 s), {len(blips)} blips (0.2-0.8 s) |")
    print(
        f"| announcements | {sum(a.kind == 'down' for a in said)} down, "
        f"{sum(a.kind == 'up' for a in said)} up, {sum(a.kind == '?' for a in said)} other |"
    )
    row(
        "outages announced exactly once (down and up)",
        f"{len(outages) - len(missing)} of {len(outages)}",
    )
    print(f"| missing announcements | {len(missing)} |")
    row(
        "blips a probe met (its re-check found it up)",
        f"{blips_probed(flaps, log)} of {len(blips)}",
    )
    row("announcements matching no outage", f"{len(extra)} (during blips: {len(blip_alarms)})")
    print(f"| notifications held back | {len(held)} |")
    print(f"| down announced after the outage began, s | {_figures(result['down_delays'])} |")  # type: ignore[arg-type]
    print(f"| up announced after the outage ended, s | {_figures(result['up_delays'])} |")  # type: ignore[arg-type]
    if samples:
        print(
            f"| RSS MiB: at 1 min → end (min-max over the run) | {first.rss_kib / 1024:.1f} → "
            f"{last.rss_kib / 1024:.1f} ({min(s.rss_kib for s in samples) / 1024:.1f}-"
            f"{max(s.rss_kib for s in samples) / 1024:.1f}) |"
        )
        print(
            f"| open fds at rest (fewest in the 2nd and the last minute; max: a sweep in flight) "
            f"| {_rest_fds(samples[1:7])} → {_rest_fds(samples[-6:])} "
            f"(max {max(s.fds for s in samples)}) |"
        )
        cpu, spell = last.cpu_s - first.cpu_s, max(1.0, last.at - first.at)
        row(
            "CPU after the first minute",
            f"{cpu:.1f} s over {spell:.0f} s ({100 * cpu / spell:.1f} %)",
        )
    print(f"| sweeps (metrics) | {len(sweeps)} seen |")
    print(f"| sweep s, first 2 min | {_figures(durations_first)} |")
    print(f"| sweep s, last 2 min | {_figures(durations_last)} |")
    print(f"| errors in the log | {len(errors)} |")
    print(f"| connections outside loopback | {len(outside)} |")
    print(f"| agent exit code (SIGTERM) | {code} |")
    print()
    print(
        "RSS MiB / fds every ~10 s: "
        + ", ".join(f"{s.rss_kib / 1024:.1f}/{s.fds}" for s in samples)
    )
    for line in missing[:20]:
        print(f"missing: {line}")
    for a in extra[:20]:
        print(f"extra at {a.at:.1f} s: {a.line}")
    for line in (*held[:10], *errors[:10]):
        print(f"log: {line}")
    rss_growth = (last.rss_kib - first.rss_kib) / 1024 if samples else 0.0
    ok = (
        not missing and not extra and not held and not errors and not outside and code == 0
        and samples and _rest_fds(samples[-6:]) <= _rest_fds(samples[1:7]) and rss_growth < 3.0
    )  # fmt: skip
    if args.trace_memory or args.memory_series:
        from memory_trace import summarise

        print("\nmemory (traced: tracemalloc's own bookkeeping is in RSS):")
        print("\n".join(summarise(folder / "memory", skip=2)))
    print("soak:", "OK" if ok else "FAILED")
    if args.keep:
        print(f"kept: {folder}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the folder (log, history)")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="run the agent under tracemalloc (tests/bench/memory_trace.py): every minute its "
        "RSS, Python's and SQLite's heap; at the end the code whose memory grew",
    )
    parser.add_argument(
        "--memory-series",
        action="store_true",
        help="every minute the agent's RSS and SQLite's heap, nothing traced (the RSS is the "
        "agent's own)",
    )
    args = parser.parse_args()
    if not 1 <= args.nodes <= 200 or args.services < 1:
        parser.error("--nodes 1..200, --services at least 1")
    folder = Path(tempfile.mkdtemp(prefix="tailnet-soak-"))
    return asyncio.run(soak(args, folder))


if __name__ == "__main__":
    raise SystemExit(main())
