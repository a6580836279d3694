"""core.metrics: the families a scrape shows, the address syntax and which addresses may serve."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.core.menu import MonitorStatus
from agent.core.metrics import (
    MetricFamily,
    MetricKind,
    MetricsAddress,
    SweepStats,
    metric_families,
    parse_metrics_address,
    refusal,
)
from agent.core.model import Health, Link, ProbeResult, ProbeState, Reason, Snapshot
from agent.core.shown import shown_health
from agent.errors import UsageError
from tests.core.sample_network import ALL_DIRECT, REFUSED, judged
from tests.core.snapshots import Driver, sweep

VERSION = {"version": "1.2.3", "python_version": "3.11.7"}


def by_name(families: tuple[MetricFamily, ...]) -> dict[str, MetricFamily]:
    names = [f.name for f in families]
    assert len(names) == len(set(names)), names
    return {f.name: f for f in families}


def samples(family: MetricFamily) -> dict[tuple[str, ...], float]:
    return dict(family.samples)


def test_before_any_status_only_the_agents_own_metrics_and_grey() -> None:
    families = by_name(metric_families(None, SweepStats(), **VERSION))
    assert set(families) == {"tailnet_agent_build_info", "tailnet_sweeps_total", "tailnet_health"}
    assert samples(families["tailnet_agent_build_info"]) == {("1.2.3", "3.11.7"): 1.0}
    assert families["tailnet_sweeps_total"].kind is MetricKind.COUNTER
    assert samples(families["tailnet_sweeps_total"]) == {(): 0.0}
    assert samples(families["tailnet_health"]) == {(): 3.0}


def test_a_sweep_with_a_service_down_a_relayed_and_an_offline_peer() -> None:
    timed_out = ProbeResult(ProbeState.DOWN, Reason.TIMEOUT, "no answer within 3 s", 3000.0)
    snapshot = sweep(
        links={"laptop": Link.OFFLINE, "macmini": Link.RELAY},
        services={"FastAPI": timed_out, "Ollama": ProbeResult(ProbeState.UP, None, "ok", 12.5)},
        at=1_700_000_000.0,
    )
    status = MonitorStatus(snapshot=snapshot, now=snapshot.at)
    families = by_name(metric_families(status, SweepStats(7, 0.25), **VERSION))

    assert samples(families["tailnet_sweeps_total"]) == {(): 7.0}
    assert samples(families["tailnet_sweep_duration_seconds"]) == {(): 0.25}
    assert samples(families["tailnet_last_sweep_timestamp_seconds"]) == {(): 1_700_000_000.0}
    assert samples(families["tailnet_health"]) == {(): float(snapshot.overall.exit_code)}
    assert samples(families["tailnet_tailscale_running"]) == {(): 1.0}
    assert samples(families["tailnet_topology_last_reload_successful"]) == {(): 1.0}

    up = samples(families["tailnet_service_up"])
    assert families["tailnet_service_up"].labels == ("node", "service", "port", "check")
    assert up[("macmini", "FastAPI", "8000", "http")] == 0.0
    assert up[("desktop", "Ollama", "11434", "http")] == 1.0
    assert up[("macmini", "Redis", "6379", "redis")] == 1.0
    assert len(up) == 6  # every service of the topology, once
    durations = samples(families["tailnet_probe_duration_seconds"])
    assert durations[("macmini", "FastAPI", "8000", "http")] == 3.0
    assert durations[("desktop", "Ollama", "11434", "http")] == 0.0125

    reasons = samples(families["tailnet_service_failure_reason"])
    assert reasons[("macmini", "FastAPI", "8000", "http", "timeout")] == 1.0
    assert reasons[("laptop", "Next.js", "3000", "http", "peer_offline")] == 1.0
    assert all(key[1] not in ("Ollama", "Redis", "PostgreSQL") for key in reasons)  # up: absent

    assert samples(families["tailnet_peer_online"]) == {("laptop",): 0.0, ("macmini",): 1.0}
    assert samples(families["tailnet_peer_always_on"]) == {("laptop",): 0.0, ("macmini",): 1.0}
    paths = samples(families["tailnet_peer_path"])
    assert paths == {
        ("laptop", "direct"): 0.0,
        ("laptop", "relay"): 0.0,
        ("laptop", "peer-relay"): 0.0,
        ("laptop", "idle"): 0.0,
        ("macmini", "direct"): 0.0,
        ("macmini", "relay"): 1.0,
        ("macmini", "peer-relay"): 0.0,
        ("macmini", "idle"): 0.0,
    }  # this machine (desktop) is no peer
    health = samples(families["tailnet_node_health"])
    assert set(health) == {("desktop",), ("laptop",), ("macmini",)}


def test_each_nodes_key_expiry_and_none_for_a_key_that_never_expires() -> None:
    snapshot = sweep(at=1_700_000_000.0)
    expiries = {"desktop": 1_700_600_000.0, "macmini": 1_701_000_000.0}  # the laptop: never
    nodes = tuple(replace(n, key_expires_at=expiries.get(n.node.id)) for n in snapshot.nodes)
    status = MonitorStatus(snapshot=replace(snapshot, nodes=nodes), now=snapshot.at)
    families = by_name(metric_families(status, SweepStats(1, 0.1), **VERSION))
    expiry = families["tailnet_node_key_expiry_timestamp_seconds"]
    assert expiry.kind is MetricKind.GAUGE and expiry.labels == ("node",)
    assert samples(expiry) == {("desktop",): 1_700_600_000.0, ("macmini",): 1_701_000_000.0}


def test_a_refused_topology_reload_reads_0() -> None:
    status = MonitorStatus(snapshot=sweep(), now=0.0, topology_error="topology.toml:3: bad")
    families = by_name(metric_families(status, SweepStats(), **VERSION))
    assert samples(families["tailnet_topology_last_reload_successful"]) == {(): 0.0}


def test_tailscale_down_here_every_service_0_with_its_reason() -> None:
    snapshot = sweep(running=False)
    families = by_name(metric_families(MonitorStatus(snapshot, 0.0), SweepStats(1, 0.1), **VERSION))
    assert samples(families["tailnet_tailscale_running"]) == {(): 0.0}
    up = samples(families["tailnet_service_up"])
    assert set(up.values()) <= {0.0, 1.0}
    reasons = {key[-1] for key in samples(families["tailnet_service_failure_reason"])}
    assert reasons <= {r.value for r in Reason}


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:9233", "127.0.0.1", 9233),
        ("localhost:9233", "127.0.0.1", 9233),
        ("[::1]:9233", "::1", 9233),
        ("100.123.51.5:9233", "100.123.51.5", 9233),
        (" 127.0.0.2:1 ", "127.0.0.2", 1),
    ],
)
def test_parse_metrics_address(text: str, host: str, port: int) -> None:
    assert parse_metrics_address(text) == MetricsAddress(host, port)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("9233", "HOST:PORT"),
        (":9233", "HOST:PORT"),
        ("::1:9233", "brackets"),
        ("example.com:9233", "not an IP address"),
        ("127.0.0.1:0", "1 to 65535"),
        ("127.0.0.1:65536", "1 to 65535"),
        ("127.0.0.1:http", "1 to 65535"),
    ],
)
def test_parse_metrics_address_refuses(text: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_metrics_address(text, where="$TAILNET_AGENT_METRICS")
    assert words in caught.value.message
    assert caught.value.message.startswith("$TAILNET_AGENT_METRICS")


SELF_IPS = ("100.120.180.42", "fd7a:115c:a1e0::1")


@pytest.mark.parametrize(
    ("host", "self_ips", "words"),
    [
        ("127.0.0.1", (), ""),
        ("127.0.0.9", (), ""),
        ("::1", (), ""),
        ("100.120.180.42", SELF_IPS, ""),
        ("fd7a:115c:a1e0:0::1", SELF_IPS, ""),
        ("100.101.68.23", SELF_IPS, "neither loopback nor one of this node's Tailscale IPs"),
        ("192.168.1.20", SELF_IPS, "neither loopback"),
        ("0.0.0.0", SELF_IPS, "every network"),
        ("::", SELF_IPS, "every network"),
        ("100.120.180.42", (), "Tailscale names no IP of this node"),  # running, without one
    ],
)
def test_only_loopback_or_this_nodes_tailscale_ips_may_serve(
    host: str, self_ips: tuple[str, ...], words: str
) -> None:
    why = refusal(MetricsAddress(host, 9233), self_ips)
    assert (why == "") if not words else (words in why), why


def test_address_url_brackets_ipv6() -> None:
    assert MetricsAddress("::1", 9233).url == "http://[::1]:9233/metrics"
    assert MetricsAddress("127.0.0.1", 9233).url == "http://127.0.0.1:9233/metrics"


def test_tailnet_health_is_the_icons_confirmed_colour_not_a_single_failed_reading() -> None:
    def published(driver: Driver, snapshot: Snapshot) -> MonitorStatus:
        driver.step(snapshot, after=1.0)  # as the monitor does: step, then publish
        return MonitorStatus(snapshot, now=snapshot.at, health=shown_health(snapshot, driver.state))

    def health(status: MonitorStatus) -> float:
        return samples(
            by_name(metric_families(status, SweepStats(1, 0.1), **VERSION))["tailnet_health"]
        )[()]

    driver = Driver()
    assert health(published(driver, judged(ALL_DIRECT))) == 0.0
    failed_once = published(driver, judged(ALL_DIRECT, FastAPI=REFUSED))
    assert failed_once.snapshot is not None and failed_once.snapshot.overall is Health.RED
    assert health(failed_once) == 0.0  # a blip: re-checked before anything pages
    families = by_name(metric_families(failed_once, SweepStats(1, 0.1), **VERSION))
    up = {labels[1]: v for labels, v in samples(families["tailnet_service_up"]).items()}
    assert up["FastAPI"] == 0.0  # the per-service gauge stays the reading, like probe_success
    assert health(published(driver, judged(ALL_DIRECT, FastAPI=REFUSED))) == 2.0  # confirmed
