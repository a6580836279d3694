"""`tailnet-agent check --nagios` run as Nagios runs a plugin: the installed executable, its
one line on stdout, its exit code, and the perfdata parsed with the guidelines' grammar.

The network is the loopback copy of Sparklio from test_check_e2e (real HTTP, Redis and
PostgreSQL servers on 127.0.0.x, the stand-in tailscale printing their addresses).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import AgentSandbox, installed_agent
from tests.test_check_e2e import loopback_network, write_topology

# The plugin guidelines' output: "SERVICE STATUS: text | perfdata", here with the
# "TAILNET" prefix and " - "; perfdata is 'label'=value[UOM];[warn];[crit];[min];[max],
# space separated, value a C-locale number or U, UOM one of the guidelines' units.
LINE = re.compile(
    r"^TAILNET (?P<status>OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|\n]+?)"
    r"(?: \| (?P<perf>[^|\n]+))?$"
)
NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
PERF = re.compile(
    rf"(?P<label>'(?:[^'=]|'')+'|[^'= ]+)=(?P<value>{NUMBER}|U)(?P<uom>s|ms|us|%|B|KB|MB|TB|c)?"
    rf";(?P<warn>[@~:0-9.-]*);(?P<crit>[@~:0-9.-]*);(?P<min>{NUMBER})?;(?P<max>{NUMBER})?"
)
EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def run_plugin(sandbox: AgentSandbox, *args: str) -> tuple[int, str, dict[str, str]]:
    """Run as Nagios would (argv, no shell, no stdin); return (exit, text, {label: value})."""
    done = subprocess.run(
        [installed_agent(), "check", "--nagios", *args],
        env=sandbox.env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)
    match = LINE.match(lines[0])
    assert match, lines[0]
    assert EXIT[match["status"]] == done.returncode, lines[0]
    perf: dict[str, str] = {}
    for item in (match["perf"] or "").split(" ") if match["perf"] else []:
        parsed = PERF.fullmatch(item)
        assert parsed, f"perfdata item {item!r} does not follow the guidelines"
        assert parsed["label"] not in perf, f"label {parsed['label']} twice"
        perf[parsed["label"]] = parsed["value"] + (parsed["uom"] or "")
    return done.returncode, match["text"], perf


def test_backend_down_is_critical_with_the_reason_and_perfdata(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network(fastapi_up=False) as ports:
        topology = str(write_topology(sandbox, ports))
        code, text, perf = run_plugin(sandbox, "--topology", topology)
        node_code, node_text, node_perf = run_plugin(
            sandbox, "--topology", topology, "--target", "macmini"
        )
        one = run_plugin(sandbox, "--topology", topology, "--service", "FastAPI")
        other = run_plugin(sandbox, "--topology", topology, "--service", "Ollama")
    assert (code, text) == (2, "Mac mini: FastAPI down (refused)")
    assert perf["fastapi"] == "0" and perf["latency_fastapi"] == "U"
    assert perf["redis"] == "1" and perf["latency_redis"].endswith("ms")
    assert set(perf) == {
        f"{prefix}{name}"
        for name in ("ollama", "next_js", "fastapi", "postgresql", "redis")
        for prefix in ("", "latency_")
    }
    assert (node_code, node_text) == (2, "Mac mini: FastAPI down (refused)")
    assert set(node_perf) == {"fastapi", "latency_fastapi", "postgresql", "latency_postgresql",
                              "redis", "latency_redis"}  # fmt: skip
    assert one[:2] == (2, "Mac mini: FastAPI down (refused)")
    assert set(one[2]) == {"fastapi", "latency_fastapi"}
    assert other[:2] == (0, "Ollama on Desktop up")
    assert float(other[2]["latency_ollama"].removesuffix("ms")) >= 0
    assert sandbox.outside_connections() == []


def test_all_up_is_ok_and_a_relayed_link_a_warning(sandbox: AgentSandbox) -> None:
    with loopback_network() as ports:
        topology = str(write_topology(sandbox, ports))
        sandbox.use_fake_tailscale("loopback_all_direct.json")
        green = run_plugin(sandbox, "--topology", topology)
        sandbox.use_fake_tailscale("loopback_mac_relayed.json")
        amber = run_plugin(sandbox, "--topology", topology, "--target", "macmini")
        service_only = run_plugin(sandbox, "--topology", topology, "--service", "Redis")
    assert green[:2] == (0, "3 nodes, 5 of 5 services up")
    assert set(green[2].values()) >= {"1"}
    assert amber[0] == 1 and amber[1].startswith("Mac mini: relayed"), amber
    assert service_only[:2] == (0, "Redis on Mac mini up")  # the link is the node's business


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--target", "nas"], "--target nas: no such node"),
        (["--service", "Grafana"], "--service Grafana: no such service"),
        (["--target", "laptop", "--service", "Redis"], "no such service on node laptop"),
    ],
    ids=["unknown-node", "unknown-service", "service-not-on-node"],
)
def test_a_selection_that_names_nothing_is_unknown(
    sandbox: AgentSandbox, args: list[str], expected: str
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network() as ports:
        code, text, perf = run_plugin(
            sandbox, "--topology", str(write_topology(sandbox, ports)), *args
        )
    assert code == 3 and expected in text, text
    assert perf == {}
    assert not (sandbox.root / "fake-tailscale.log").exists()  # refused before any sweep


def test_an_unusable_topology_is_unknown(sandbox: AgentSandbox, tmp_path: Path) -> None:
    bad = tmp_path / "topology.toml"
    bad.write_text('version = 1\nname = "x"\n[[nodes]]\nid = "a"\nip = "not-an-ip"\n')
    code, text, perf = run_plugin(sandbox, "--topology", str(bad))
    assert perf == {}
    assert code == 3 and str(bad) in text, text
    code, text, _ = run_plugin(sandbox, "--topology", str(tmp_path / "missing.toml"))
    assert code == 3 and "missing.toml" in text


def test_tailscale_down_is_critical_and_a_peer_service_unknown(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale(mode="fail")
    with loopback_network() as ports:
        topology = str(write_topology(sandbox, ports))
        whole = run_plugin(sandbox, "--topology", topology, "--node", "desktop")
        peer = run_plugin(
            sandbox, "--topology", topology, "--node", "desktop", "--target", "macmini"
        )
        mine = run_plugin(
            sandbox, "--topology", topology, "--node", "desktop", "--target", "desktop"
        )
    assert whole[0] == 2 and "Tailscale" in whole[1]
    assert peer[0] == 3 and peer[1].startswith("not checked: `tailscale status` failed"), peer
    assert peer[2]["fastapi"] == "U"
    assert mine[0] == 3, mine  # its service listens on the Tailscale IP alone: not checkable either
    assert sandbox.outside_connections() == []


def test_the_options_go_together(sandbox: AgentSandbox) -> None:
    done = sandbox.run("check", "--target", "macmini")
    assert done.returncode == 3 and "--target and --service go with --nagios" in done.stderr
    done = sandbox.run("check", "--nagios", "--json")
    assert done.returncode == 3 and "TAILNET UNKNOWN - choose one output" in done.stdout
