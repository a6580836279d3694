"""contrib/: the scrape config, alert rules and Grafana dashboard, checked by the real tools.

promtool (Debian's prometheus package, installed by tests/run) checks the config and the
rules and runs the rules' unit tests (contrib/prometheus/tailnet-alerts.test.yml: each alert
fires after its `for`, and the laptop, not always on, never alarms). Every metric the rules
and the dashboard query must be one the agent really serves: the names come from a scrape
of a real endpoint (agent.exporter on loopback). Last, a real Prometheus scrapes a running
agent on loopback, loads the rules and answers a query through its HTTP API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.core.menu import MonitorStatus
from agent.core.metrics import MetricsAddress
from agent.core.model import Link, Snapshot, Topology
from agent.exporter import Exporter
from tests.conftest import AgentSandbox, installed_agent
from tests.core.snapshots import result, sweep
from tests.helpers.desktop import wait_for
from tests.helpers.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "contrib" / "prometheus"
DASHBOARD = ROOT / "contrib" / "grafana" / "tailnet-agent-dashboard.json"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install prometheus (tests/run does)"
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "tailnet-alerts.yml"),
        ("check", "config", "prometheus.yml"),
        ("test", "rules", "tailnet-alerts.test.yml"),
    ],
    ids=["rules", "config", "alert-unit-tests"],
)
def test_promtool_accepts_the_contrib_files(args: tuple[str, ...]) -> None:
    done = promtool(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_scrape_config_names_the_three_nodes_on_their_tailscale_ips() -> None:
    text = (PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8")
    for target in ("100.120.180.42:9233", "100.101.68.23:9233", "100.123.51.5:9233"):
        assert f'"{target}"' in text


# ==== the metrics the files query exist =========================================

_KEYWORDS = {"by", "on", "and", "or", "unless", "without", "ignoring", "group_left",
             "group_right", "bool", "offset"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)  # label matchers, ranges
    text = re.sub(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if match.group() in _KEYWORDS or rest.startswith("("):
            continue
        names.add(match.group())
    return names


def served_names() -> set[str]:
    """Every sample name a real endpoint serves for a sweep with something of each kind."""
    snapshot = sweep(
        links={"laptop": Link.OFFLINE, "macmini": Link.RELAY},
        services={"FastAPI": result("timeout")},
        at=1_700_000_000.0,
    )
    nodes = tuple(
        replace(n, latency_ms=None if n.is_self else 4.5, key_expires_at=1_701_000_000.0)
        for n in snapshot.nodes
    )
    snapshot = replace(snapshot, nodes=nodes)
    exporter = Exporter(MetricsAddress("127.0.0.1", free_port()))

    async def sweep_once(_: Topology) -> Snapshot:
        return snapshot

    timed, publish = exporter.observe(sweep_once, lambda _: None)
    asyncio.run(timed(snapshot.topology))
    publish(MonitorStatus(snapshot=snapshot, now=snapshot.at))
    exporter.start()
    try:
        text = httpx.get(exporter.address.url, timeout=5).text
    finally:
        exporter.stop()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def alert_exprs() -> list[str]:
    text = (PROMETHEUS_DIR / "tailnet-alerts.yml").read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"^\s+expr: (.+)$", text, re.MULTILINE)]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["panels"], "no panels"
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= len(dashboard["panels"])
    variables = [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs + [re.sub(r"label_values\((\w+),.*", r"\1", v) for v in variables]


def test_the_metric_name_reader_reads_promql() -> None:
    expr = 'max by (node) (rate(tailnet_sweeps_total{a="b"}[5m])) and on (x) up == 0'
    assert metric_names(expr) == {"tailnet_sweeps_total", "up"}


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_the_rules_and_the_dashboard_query_only_metrics_the_agent_serves(source: str) -> None:
    exprs = alert_exprs() if source == "alerts" else dashboard_exprs()
    assert exprs
    served = served_names() | {"up"}  # `up` is Prometheus's own, per target
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= served, (expr, names - served)


# ==== a real Prometheus =========================================================

TOPOLOGY = """
version = 1
name = "prometheus (loopback)"

[defaults]
interval = "1s"
timeout = "1s"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"

  [[nodes.services]]
  name = "Ollama"
  port = {port}
  check = "tcp"
"""


@contextlib.contextmanager
def running(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_a_real_prometheus_scrapes_the_agent_and_answers_a_query(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    metrics_port, prometheus_port = free_port(), free_port()
    with socket.create_server(("127.0.0.1", 0)) as ollama:
        topology = tmp_path / "topology.toml"
        topology.write_text(TOPOLOGY.replace("{port}", str(ollama.getsockname()[1])), "utf-8")
        shutil.copy(PROMETHEUS_DIR / "tailnet-alerts.yml", tmp_path / "tailnet-alerts.yml")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [tailnet-alerts.yml]\n"
            "scrape_configs:\n"
            "  - job_name: tailnet-agent\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n",
            "utf-8",
        )
        api = f"http://127.0.0.1:{prometheus_port}/api/v1"
        agent = [installed_agent(), "run", "--headless", "--topology", str(topology),
                 "--metrics", f"127.0.0.1:{metrics_port}"]  # fmt: skip
        prometheus = [tool("prometheus"), f"--config.file={config}",
                      f"--storage.tsdb.path={tmp_path / 'data'}",
                      f"--web.listen-address=127.0.0.1:{prometheus_port}"]  # fmt: skip
        with (
            running(agent, tmp_path / "agent.log", sandbox.env),
            running(prometheus, tmp_path / "prometheus.log"),
        ):

            def query(expr: str) -> list[dict[str, object]]:
                try:
                    answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=5)
                except httpx.TransportError:
                    return []
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert body["status"] == "success", body
                return list(body["data"]["result"])

            def logs() -> str:
                return "\n".join(
                    (tmp_path / name).read_text(errors="replace")
                    for name in ("agent.log", "prometheus.log")
                )

            def ready() -> bool:
                # Prometheus answers 503 "Service Unavailable" until its TSDB has opened
                try:
                    url = f"http://127.0.0.1:{prometheus_port}/-/ready"
                    return httpx.get(url, timeout=5).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 90, interval=0.5, message=logs())
            found = wait_for(
                lambda: query('tailnet_service_up{node="desktop", service="Ollama"} == 1'),
                90,
                interval=0.5,
                message=logs(),
            )
            assert found[0]["metric"]["job"] == "tailnet-agent"  # type: ignore[index]
            assert found[0]["value"][1] == "1"  # type: ignore[index]
            assert query("tailnet_tailscale_running")[0]["value"][1] == "1"  # type: ignore[index]

            def rules() -> list[dict[str, str]]:
                groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
                return list(groups[0]["rules"])

            expiry = query("tailnet_node_key_expiry_timestamp_seconds")
            # the topology's one node, this machine: the fixture's Self KeyExpiry
            assert [r["metric"]["node"] for r in expiry] == ["desktop"]  # type: ignore[index]
            assert len(rules()) == 8
            # evaluated against the agent's series, without an error
            wait_for(
                lambda: all(r["health"] == "ok" for r in rules()), 30, interval=0.5, message=logs()
            )
    assert sandbox.outside_connections() == []
