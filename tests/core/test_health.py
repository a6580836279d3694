"""Health rules and the sweep planner, on plain data."""

from __future__ import annotations

import dataclasses

import pytest

from agent.core.health import judge, short_name, worst
from agent.core.hints import explain
from agent.core.model import (
    BackendState,
    Health,
    Link,
    Node,
    ProbeResult,
    ProbeState,
    Reason,
    TailnetView,
    TailscaleProblem,
    Topology,
)
from agent.core.plan import LOOPBACK_HOST, plan_sweep
from tests.core.sample_network import (
    ALL_DIRECT,
    DESKTOP,
    LAPTOP,
    MACMINI,
    REDIS,
    REFUSED,
    TIMEOUT,
    TOPOLOGY,
    UP,
    judged,
    node_of,
    peer,
    running,
)


def test_all_direct_and_up_is_green() -> None:
    snap = judged(ALL_DIRECT)
    assert snap.overall is Health.GREEN
    assert [n.link for n in snap.nodes] == [Link.SELF, Link.DIRECT, Link.DIRECT]
    assert snap.summary == "All good — 3 nodes, 4 of 4 services up"
    assert node_of(snap, "macmini").latency_ms == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("tailnet", "outcomes", "overall", "summary_part"),
    [
        pytest.param(ALL_DIRECT, {"FastAPI": REFUSED}, Health.RED,
                     "Mac mini: FastAPI down — connection refused", id="critical-down-red"),
        pytest.param(ALL_DIRECT, {"Redis": TIMEOUT}, Health.AMBER,
                     "Mac mini: Redis down — no answer", id="degraded-down-amber"),
        pytest.param(ALL_DIRECT, {"Next_js": REFUSED}, Health.GREEN, "All good",
                     id="info-down-no-colour"),
        pytest.param(running(peer(LAPTOP), peer(MACMINI, cur_addr="")), {}, Health.AMBER,
                     "relayed via DERP 'tok'", id="derp-relay-amber"),
        pytest.param(running(peer(LAPTOP), peer(MACMINI, active=False, cur_addr="")), {},
                     Health.GREEN, "All good", id="idle-is-not-relayed"),
        pytest.param(running(peer(LAPTOP), peer(MACMINI, online=False, active=False)),
                     {"FastAPI": TIMEOUT, "Redis": TIMEOUT}, Health.RED,
                     "offline in Tailscale (run `tailscale up` on woosuns-mac-mini)",
                     id="always-on-peer-offline-red"),
        pytest.param(running(peer(LAPTOP, online=False, active=False), peer(MACMINI)),
                     {"Next_js": TIMEOUT}, Health.GREEN, "All good", id="laptop-offline-no-alarm"),
        pytest.param(running(peer(LAPTOP)), {}, Health.AMBER, "not found in this tailnet",
                     id="node-not-in-tailnet-amber"),
        pytest.param(ALL_DIRECT, {"FastAPI": ProbeResult(ProbeState.UP, None, "", 250.0),
                                  "Redis": ProbeResult(ProbeState.UP, None, "", 240.0)},
                     Health.AMBER, "slow link: 240 ms", id="slow-link-amber"),
    ],
)  # fmt: skip
def test_colours_and_summary(
    tailnet: TailnetView, outcomes: dict[str, ProbeResult], overall: Health, summary_part: str
) -> None:
    snap = judged(tailnet, **outcomes)
    assert snap.overall is overall
    assert summary_part in snap.summary


def test_red_outranks_amber_in_summary() -> None:
    snap = judged(running(peer(LAPTOP), peer(MACMINI, cur_addr="")), FastAPI=REFUSED)
    assert snap.overall is Health.RED
    assert snap.summary == "Mac mini: FastAPI down, relayed"


def test_offline_peer_failures_are_explained_as_peer_offline() -> None:
    tailnet = running(peer(LAPTOP), peer(MACMINI, online=False, active=False))
    snap = judged(tailnet, FastAPI=TIMEOUT, Redis=REFUSED)
    mac = node_of(snap, "macmini")
    assert mac.link is Link.OFFLINE and mac.online is False
    assert [s.result.reason for s in mac.services] == [Reason.PEER_OFFLINE] * 2
    assert mac.services[0].result.detail == "peer offline in Tailscale; no answer within 3 s"
    assert "tailscale up" in explain(mac.services[0].result, MACMINI.hostname)


def test_offline_flag_lags_but_services_answer() -> None:
    snap = judged(running(peer(LAPTOP), peer(MACMINI, online=False, active=False)))
    mac = node_of(snap, "macmini")
    assert mac.health is Health.GREEN
    assert mac.services[0].result.reason is None
    assert "services answer" in mac.reasons[0]


def test_laptop_offline_services_do_not_colour() -> None:
    snap = judged(running(peer(LAPTOP, online=False, active=False), peer(MACMINI)),
                  Next_js=TIMEOUT)  # fmt: skip
    laptop = node_of(snap, "laptop")
    assert laptop.health is Health.GREY
    assert laptop.services[0].health is Health.GREY


@pytest.mark.parametrize(
    "tailnet",
    [
        pytest.param(TailnetView(problem=TailscaleProblem.NOT_INSTALLED,
                                 detail="Tailscale is not installed here"), id="not-installed"),
        pytest.param(TailnetView(backend_state=BackendState.STOPPED,
                                 problem=TailscaleProblem.NOT_RUNNING,
                                 detail="Tailscale is stopped here (run `tailscale up`)"),
                     id="stopped"),
    ],
)  # fmt: skip
def test_tailscale_not_running_is_red_and_probes_no_peer(tailnet: TailnetView) -> None:
    plan = plan_sweep(TOPOLOGY, "desktop", tailnet)
    assert plan.targets == ()
    assert {key[0] for key in plan.skipped} == {"desktop", "laptop", "macmini"}
    assert all(r.reason is Reason.TAILSCALE_DOWN for r in plan.skipped.values())
    snap = judge(TOPOLOGY, tailnet, "desktop", dict(plan.skipped), plan.addresses, now=0.0)
    assert snap.overall is Health.RED
    assert snap.summary == tailnet.detail
    assert node_of(snap, "macmini").health is Health.GREY


def test_plan_probes_own_localhost_services_on_loopback_even_without_tailscale() -> None:
    topology = Topology("t", (LAPTOP, MACMINI))
    tailnet = TailnetView(problem=TailscaleProblem.NOT_INSTALLED, detail="no tailscale")
    plan = plan_sweep(topology, "laptop", tailnet)
    assert [(t.node_id, t.host) for t in plan.targets] == [("laptop", LOOPBACK_HOST)]
    assert ("macmini", "FastAPI") in plan.skipped


def test_plan_probes_peers_on_their_tailscale_ip_with_topology_timeout() -> None:
    plan = plan_sweep(TOPOLOGY, "desktop", ALL_DIRECT)
    hosts = {(t.node_id, t.service.name): (t.host, t.timeout_s) for t in plan.targets}
    assert hosts[("macmini", "FastAPI")] == (MACMINI.ip, 3.0)
    assert hosts[("desktop", "Ollama")] == (DESKTOP.ip, 3.0)  # own, tailscale-only: own IP
    assert plan.addresses[("laptop", "Next.js")] == f"{LAPTOP.ip}:3000"


def test_plan_brackets_ipv6_addresses() -> None:
    node = Node("v6", "v6", "v6", "fd7a:115c:a1e0::1", services=(REDIS,))
    plan = plan_sweep(Topology("t", (node,)), None, running())
    assert plan.addresses[("v6", "Redis")] == "[fd7a:115c:a1e0::1]:6379"


def test_worst_and_short_name() -> None:
    assert worst([]) is Health.GREY
    assert worst([Health.GREY, Health.GREEN]) is Health.GREEN
    assert worst([Health.AMBER, Health.RED, Health.GREEN]) is Health.RED
    assert short_name(MACMINI) == "Mac mini"
    assert short_name(Node("x", "", "h", "1.2.3.4")) == "x"


def test_exit_codes_follow_nagios() -> None:
    assert [h.exit_code for h in (Health.GREEN, Health.AMBER, Health.RED, Health.GREY)] == [
        0, 1, 2, 3,
    ]  # fmt: skip


@pytest.mark.parametrize("outcome", [REFUSED, TIMEOUT], ids=["refused", "timeout"])
def test_an_offline_peer_gets_one_hint_the_runbook_q1(outcome: ProbeResult) -> None:
    """Offline in Tailscale is the situation: its hint, not the probe's as well."""
    tailnet = running(peer(LAPTOP), peer(MACMINI, online=False, active=False))
    mac = node_of(judged(tailnet, FastAPI=outcome, Redis=outcome), "macmini")
    for status in mac.services:
        text = explain(status.result, MACMINI.hostname)
        assert text.count("(") == 1, text  # one hint: what the probe met is a plain fact
        assert text.endswith("(run `tailscale up` on woosuns-mac-mini)"), text
        assert "service not running" not in text and "firewall" not in text, text


# ==== the summary says what, not "(+1 more)" ===================================


def test_two_services_down_on_one_node_are_named() -> None:
    snap = judged(ALL_DIRECT, FastAPI=REFUSED, Redis=TIMEOUT)
    assert snap.summary == "Mac mini: FastAPI and Redis down"


def test_problems_on_two_nodes_are_both_said_worst_first() -> None:
    snap = judged(running(peer(LAPTOP), peer(MACMINI, cur_addr="")), FastAPI=REFUSED)
    assert snap.summary == "Mac mini: FastAPI down, relayed"
    desk_down = judged(ALL_DIRECT, Ollama=TIMEOUT, FastAPI=REFUSED)
    assert desk_down.summary == "Mac mini: FastAPI down; Desktop: Ollama down"


@pytest.mark.parametrize(
    ("per_node", "summary"),
    [((19, 19), "Server 0: 19 services down; Server 1: 19 services down"),
     ((10, 10, 10, 8), "38 services down on 4 nodes"),
     ((2, 2, 0, 1), "5 services down on 3 nodes")],
    ids=["two-nodes-named", "many-counted", "three-nodes-counted"],
)  # fmt: skip
def test_many_services_down_are_counted(per_node: tuple[int, ...], summary: str) -> None:
    nodes = tuple(
        Node(f"n{i}", f"Server {i} — rack", f"host{i}", f"100.64.0.{i + 1}",
             services=tuple(dataclasses.replace(REDIS, name=f"svc{j}", port=7000 + j)
                            for j in range(max(down, 1))))
        for i, down in enumerate(per_node)
    )  # fmt: skip
    topology = Topology("big", nodes)
    tailnet = TailnetView(backend_state=BackendState.RUNNING, peers=tuple(peer(n) for n in nodes))
    results = {
        (n.id, s.name): REFUSED if j < down else UP
        for n, down in zip(nodes, per_node, strict=True)
        for j, s in enumerate(n.services)
    }
    snap = judge(topology, tailnet, None, results, {}, now=0.0)
    assert snap.summary == summary


def test_one_node_all_good_is_singular() -> None:
    topology = Topology("t", (DESKTOP,))
    snap = judge(topology, running(), "desktop", {("desktop", "Ollama"): UP}, {}, now=0.0)
    assert snap.summary == "All good — 1 node, 1 of 1 services up"
