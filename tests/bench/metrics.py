#!/usr/bin/env python3
"""Benchmark: the Prometheus endpoint of a running agent over a 500-service loopback network.

Beside blackbox_exporter serving the same probes, in one run of ../shared/bench:

    python3 ../shared/bench/run_peers.py --preset scale --repeat 1 --peers blackbox \
        --agent-name tailnet-agent-metrics \
        --agent-cmd '.venv/bin/python tests/bench/metrics.py {manifest}'

For the fleet's manifest this writes a topology (one node per loopback host, the
manifest's http and tcp checks) and a stand-in `tailscale status --json` that shows every
host online and direct, then runs the real agent twice, `run --headless` (the log and
history in a temporary folder):

1. with `--metrics 127.0.0.1:PORT`: waits for the first sweep through the endpoint, prints
   every service's verdict from the scrape (`tailnet_service_up` and the reason of
   `tailnet_service_failure_reason`: the harness scores them), then times SCRAPES scrapes
   (a new connection each, as the endpoint closes it; the time to the whole body, and apart
   from it the client's parse with prometheus_client) and reads the agent's RSS (VmRSS, VmHWM);
2. without it: the same sweep, the same RSS readings once its first state is logged.

The figures go to stderr and, with $BENCH_METRICS_JSON, to that file. The harness's wall
column for this peer covers both runs and the scrapes: read the figures below instead.
Loopback only: a manifest endpoint outside 127.0.0.0/8 is refused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
AGENT = Path(sys.executable).parent / "tailnet-agent"
FAKE_TAILSCALE = ROOT / "tests" / "helpers" / "fake_tailscale"
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "50"))
SWEEP_WAIT_S = 120.0  # a hang guard


def write_network(manifest: dict, folder: Path) -> tuple[Path, Path]:  # type: ignore[type-arg]
    hosts: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for ep in manifest["endpoints"]:
        if not ipaddress.ip_address(ep["host"]).is_loopback:
            raise SystemExit(f"refusing a non-loopback endpoint: {ep['host']}")
        hosts.setdefault(ep["host"], []).append(ep)
    timeout = float(manifest.get("timeout_hint_s", 2.0))
    lines = ['version = 1', 'name = "bench"', "[defaults]", 'interval = "600s"',
             f'timeout = "{timeout}s"', "failure_threshold = 1"]  # fmt: skip
    peers = {}
    for index, (host, eps) in enumerate(sorted(hosts.items())):
        node = f"node{index}"
        lines += ["[[nodes]]", f'id = "{node}"', f'name = "{node}"', f'hostname = "{node}"',
                  f'ip = "{host}"']  # fmt: skip
        for ep in eps:
            check = "http" if ep["check"] == "http" else "tcp"
            lines += ["[[nodes.services]]", f'name = "{ep["id"]}"', f"port = {ep['port']}",
                      f'check = "{check}"']  # fmt: skip
            if check == "http":
                lines.append(f'path = "{ep.get("path") or "/"}"')
        peers[f"nodekey:{index:064x}"] = {
            "HostName": node, "DNSName": f"{node}.bench.ts.net.", "OS": "linux",
            "TailscaleIPs": [host], "Online": True, "Active": True,
            "CurAddr": f"{host}:41641", "Relay": "tok", "PeerRelay": "",
        }  # fmt: skip
    topology = folder / "topology.toml"
    topology.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status = {
        "Version": "1.80.0", "BackendState": "Running", "TailscaleIPs": ["127.0.0.254"],
        "Self": {"HostName": "bench-self", "DNSName": "bench-self.bench.ts.net.",
                 "OS": "linux", "TailscaleIPs": ["127.0.0.254"], "Online": True},
        "Health": [], "Peer": peers,
    }  # fmt: skip
    status_path = folder / "status.json"
    status_path.write_text(json.dumps(status), encoding="utf-8")
    return topology, status_path


def agent_env(folder: Path, status: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILNET_AGENT_", "XDG_"))}
    env.update(
        PATH=f"{FAKE_TAILSCALE}{os.pathsep}{env.get('PATH', '')}",
        FAKE_TAILSCALE_JSON=str(status),
        XDG_CONFIG_HOME=str(folder / "config"),
        XDG_STATE_HOME=str(folder / "state"),
        HOME=str(folder),
        PYTHONUNBUFFERED="1",
    )
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        env.pop(name, None)
    return env


def rss_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return fields


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def verdict(up: float, reason: str | None) -> str:
    if up == 1:
        return "up"
    return {"refused": "refused", "timeout": "timeout", "no_answer": "timeout"}.get(
        reason or "", reason or "down"
    )


def with_metrics(topology: Path, env: dict[str, str], log: Path) -> dict[str, object]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    argv = [str(AGENT), "run", "--headless", "--topology", str(topology),
            "--metrics", f"127.0.0.1:{port}"]  # fmt: skip
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    try:
        deadline = time.monotonic() + SWEEP_WAIT_S
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the agent never swept:\n{log.read_text()}")
            try:
                text = httpx.get(url, timeout=10).text
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            families = {f.name: f for f in text_string_to_metric_families(text)}
            if "tailnet_service_up" in families:
                break
            time.sleep(0.05)
        reasons = {
            s.labels["service"]: s.labels["reason"]
            for s in families["tailnet_service_failure_reason"].samples
        }
        for sample in families["tailnet_service_up"].samples:
            name = sample.labels["service"]
            print(json.dumps({"id": name, "state": verdict(sample.value, reasons.get(name))}))
        sys.stdout.flush()
        series = sum(len(f.samples) for f in families.values())
        times, parse_times, sizes = [], [], []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            body = httpx.get(url, timeout=10).text
            got = time.perf_counter()
            list(text_string_to_metric_families(body))  # checked as a scraper reads it
            times.append((got - started) * 1000)
            parse_times.append((time.perf_counter() - got) * 1000)
            sizes.append(len(body.encode()))
        started = time.perf_counter()
        gzipped = httpx.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10)
        gzip_ms = (time.perf_counter() - started) * 1000
        memory = rss_kb(proc.pid)
        sweep_s = families["tailnet_sweep_duration_seconds"].samples[0].value
        return {
            "scrapes": SCRAPES,
            "scrape_ms_median": round(statistics.median(times), 2),
            "scrape_ms_p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 2),
            "scrape_ms_max": round(max(times), 2),
            "client_parse_ms_median": round(statistics.median(parse_times), 2),
            "scrape_gzip_ms": round(gzip_ms, 2),
            "body_bytes": sizes[-1],
            "body_gzip_bytes": int(gzipped.headers.get("content-length", 0)),
            "series": series,
            "first_sweep_s": round(sweep_s, 3),
            "rss_kb": memory.get("VmRSS"),
            "hwm_kb": memory.get("VmHWM"),
        }
    finally:
        stop(proc)


def without_metrics(topology: Path, env: dict[str, str], log: Path) -> dict[str, object]:
    argv = [str(AGENT), "run", "--headless", "--topology", str(topology)]
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    try:
        deadline = time.monotonic() + SWEEP_WAIT_S
        while "INFO agent.app: state " not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the agent never swept:\n{log.read_text()}")
            time.sleep(0.05)
        time.sleep(1.0)  # as long as the scrapes above leave the other run alive, about
        memory = rss_kb(proc.pid)
        return {"rss_kb": memory.get("VmRSS"), "hwm_kb": memory.get("VmHWM")}
    finally:
        stop(proc)


def main(manifest_path: str) -> None:
    manifest = json.loads(Path(manifest_path).read_text())
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        folder = Path(tmp)
        topology, status = write_network(manifest, folder)
        env = agent_env(folder, status)
        on = with_metrics(topology, env, folder / "on.log")
        off = without_metrics(topology, env, folder / "off.log")
    figures = {
        "services": len(manifest["endpoints"]),
        "metrics_on": on,
        "metrics_off": off,
        "extra_rss_kb": (on["rss_kb"] or 0) - (off["rss_kb"] or 0),  # type: ignore[operator]
        "extra_hwm_kb": (on["hwm_kb"] or 0) - (off["hwm_kb"] or 0),  # type: ignore[operator]
    }
    print(json.dumps(figures, indent=2), file=sys.stderr)
    out = os.environ.get("BENCH_METRICS_JSON")
    if out:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
