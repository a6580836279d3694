"""Issue 10, items 1-3 in the pure core: the topology's access and consumers, drift, the
exposure audit, the ACL policy, the findings in health, the menu, and the monitor's memory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from agent.core import findings
from agent.core.acl import acl_policy, render_hujson
from agent.core.drift import detect_drift
from agent.core.events import EventKind
from agent.core.exposure import (
    Listener,
    ListenerScan,
    Verdict,
    audit_exposure,
    exposure_findings,
)
from agent.core.health import judge
from agent.core.menu import MonitorStatus, TrayView, build_menu
from agent.core.model import (
    Access,
    BackendState,
    FindingKind,
    Health,
    PeerView,
    ProbeResult,
    ProbeState,
    TailnetView,
)
from agent.core.plan import plan_sweep
from agent.core.starter import starter_nodes
from agent.core.tailnet import parse_status_json
from agent.core.topology import dump_topology, parse_topology
from agent.errors import TopologyError

BUNDLED = Path(__file__).resolve().parents[2] / "agent" / "data" / "topology.toml"
SPARKLIO = parse_topology(BUNDLED.read_text(encoding="utf-8"), "bundled default")
MAC_IP, DESKTOP_IP, LAPTOP_IP = "100.123.51.5", "100.120.180.42", "100.101.68.23"
UP = ProbeResult(ProbeState.UP, latency_ms=1.0)


def tailnet(
    *peers: PeerView, self_host: str = "woosuns-mac-mini", self_ip: str = MAC_IP
) -> TailnetView:
    return TailnetView(
        backend_state=BackendState.RUNNING, self_hostname=self_host, self_ips=(self_ip,),
        peers=peers,
    )  # fmt: skip


DESKTOP_PEER = PeerView("sweetlife", ips=(DESKTOP_IP,), online=True, active=True, cur_addr="x")
LAPTOP_PEER = PeerView("desktop-ecmkau8", ips=(LAPTOP_IP,), online=True, active=True, cur_addr="x")


# ==== the topology schema: access in [defaults], consumers per service =======


def topo(defaults: str = "", service_extra: str = "") -> str:
    return f"""version = 1
[defaults]
{defaults}
[[nodes]]
id = "macmini"
hostname = "mac"
ip = "100.123.51.5"
  [[nodes.services]]
  name = "PostgreSQL"
  port = 5432
  check = "postgres"
  {service_extra}
[[nodes]]
id = "laptop"
hostname = "lap"
ip = "100.101.68.23"
"""


def test_access_in_defaults_applies_and_bad_values_are_refused() -> None:
    parsed = parse_topology(topo('access = "localhost+tailscale"'), "t.toml")
    assert parsed.defaults.access is Access.LOCALHOST_AND_TAILSCALE
    with pytest.raises(TopologyError) as refused:
        parse_topology(topo('access = "tailnet"'), "t.toml")
    assert str(refused.value) == (
        't.toml:3: defaults.access: unknown access "tailnet"; expected one of tailscale, '
        "localhost+tailscale; did you mean 'tailscale'?"
    )


@pytest.mark.parametrize(
    ("consumers", "why"),
    [
        ('["laptp"]', "no node has id \"laptp\"; did you mean 'laptop'? (the node ids are "
                      "macmini, laptop)"),
        ('["macmini"]', '"macmini" is the service\'s own node: list the other nodes that use it'),
        ('["laptop", "laptop"]', '"laptop" is listed twice'),
        ('"laptop"', "must be an array of node ids"),
    ],
)  # fmt: skip
def test_consumers_must_name_other_known_nodes(consumers: str, why: str) -> None:
    with pytest.raises(TopologyError) as refused:
        parse_topology(topo(service_extra=f"consumers = {consumers}"), "t.toml")
    assert "t.toml:12: PostgreSQL on macmini: consumers" in str(refused.value)
    assert why in str(refused.value)


def test_access_and_consumers_survive_a_dump() -> None:
    parsed = parse_topology(
        topo('access = "tailscale"', 'consumers = ["laptop"]\n  access = "localhost+tailscale"'),
        "t.toml",
    )
    again = parse_topology(dump_topology(parsed), "t.toml")
    assert again == parsed
    assert again.nodes[0].services[0].consumers == ("laptop",)


def test_a_non_consumer_does_not_probe_the_service() -> None:
    view = tailnet(LAPTOP_PEER, DESKTOP_PEER, self_host="sweetlife", self_ip=DESKTOP_IP)
    plan = plan_sweep(SPARKLIO, "desktop", view)
    probed = {(t.node_id, t.service.name) for t in plan.targets}
    assert ("macmini", "FastAPI") in probed and ("macmini", "PostgreSQL") not in probed
    skipped = plan.skipped[("macmini", "PostgreSQL")]
    assert skipped.state is ProbeState.SKIPPED
    assert skipped.detail == "not probed: this node (desktop) is not among its consumers"
    laptop_plan = plan_sweep(SPARKLIO, "laptop", view)
    assert ("macmini", "PostgreSQL") in {(t.node_id, t.service.name) for t in laptop_plan.targets}


# ==== drift ====================================================================


def test_no_drift_when_the_tailnet_matches() -> None:
    assert detect_drift(SPARKLIO, tailnet(DESKTOP_PEER, LAPTOP_PEER), "macmini") == ()


def test_nothing_is_known_while_tailscale_is_down() -> None:
    assert detect_drift(SPARKLIO, TailnetView(backend_state=BackendState.STOPPED), None) == ()


def test_each_kind_of_drift_comes_with_its_edit() -> None:
    moved = dataclasses.replace(DESKTOP_PEER, ips=("100.120.180.99",))
    renamed = dataclasses.replace(LAPTOP_PEER, hostname="frontend-laptop")
    phone = PeerView("pixel-7", ips=("fd7a::7", "100.64.0.7"), online=True)
    found = detect_drift(
        SPARKLIO, tailnet(moved, renamed, phone, self_ip="100.123.51.6"), "macmini"
    )
    assert [(f.key, f.fix) for f in found] == [
        (
            "drift:ip:desktop:100.120.180.99",
            'in the [[nodes]] table with id = "desktop", change ip = "100.120.180.42" to '
            'ip = "100.120.180.99"',
        ),
        (
            "drift:hostname:laptop:frontend-laptop",
            'in the [[nodes]] table with id = "laptop", change hostname = "desktop-ecmkau8" to '
            'hostname = "frontend-laptop"',
        ),
        (
            "drift:ip:macmini:100.123.51.6",  # this machine too, found by its hostname
            'in the [[nodes]] table with id = "macmini", change ip = "100.123.51.5" to '
            'ip = "100.123.51.6"',
        ),
        (
            "drift:stray:100.64.0.7",
            'add [[nodes]] with id = "pixel-7", hostname = "pixel-7", ip = "100.64.0.7" '
            "(always_on = false for a laptop or phone)",
        ),
    ]
    assert all(f.kind is FindingKind.DRIFT for f in found)
    assert [f.colours for f in found] == [True, True, True, False]  # a stray peer: no colour
    assert found[3].node_id is None


def test_a_node_with_no_machine_is_missing() -> None:
    (missing,) = detect_drift(SPARKLIO, tailnet(DESKTOP_PEER), "macmini")
    assert missing.key == "drift:missing:laptop"
    assert missing.text == (
        "Laptop is not in this tailnet "
        '(no machine with IP 100.101.68.23 or hostname "desktop-ecmkau8")'
    )
    assert 'delete the [[nodes]] table with id = "laptop"' in missing.fix


def test_drift_colours_check_amber_with_the_edit_in_place_of_not_in_tailnet() -> None:
    view = tailnet(DESKTOP_PEER)
    found = detect_drift(SPARKLIO, view, "macmini")
    results = {(n.id, s.name): UP for n in SPARKLIO.nodes for s in n.services}
    snapshot = judge(SPARKLIO, view, "macmini", results, {}, now=0.0, findings=found)
    laptop = next(n for n in snapshot.nodes if n.node.id == "laptop")
    assert laptop.reasons == (f"topology drift: {found[0].text} — {found[0].fix}",)
    assert laptop.health is Health.AMBER and snapshot.overall is Health.AMBER
    assert snapshot.summary.startswith("Laptop: topology drift: Laptop is not in this tailnet")


def test_a_stray_peer_is_said_without_colour() -> None:
    phone = PeerView("pixel-7", ips=("100.64.0.7",), online=True)
    view = tailnet(DESKTOP_PEER, LAPTOP_PEER, phone)
    found = detect_drift(SPARKLIO, view, "macmini")
    results = {(n.id, s.name): UP for n in SPARKLIO.nodes for s in n.services}
    snapshot = judge(SPARKLIO, view, "macmini", results, {}, now=0.0, findings=found)
    assert all(n.health is Health.GREEN for n in snapshot.nodes)
    assert snapshot.overall is Health.GREEN
    assert snapshot.summary.endswith("; 1 tailnet peer not in the topology")


def test_a_sharees_machine_is_no_stray_and_tagged_or_exit_peers_say_what_they_are() -> None:
    """A recorded-format status (seen from sweetlife): the Sparklio nodes, a machine of
    someone this tailnet shared a node with (ShareeNode), a tagged NAS, a tagged exit node."""
    fixture = Path(__file__).parents[1] / "fixtures/tailscale/running_sharee_tagged_exit.json"
    view = parse_status_json(fixture.read_text(encoding="utf-8"))
    found = detect_drift(SPARKLIO, view, "desktop")
    assert [f.text for f in found] == [
        'tailnet peer "nas-backup" (100.77.20.9), tagged tag:server, tag:backup, '
        "is not in the topology",
        'tailnet peer "office-router" (100.70.3.1), an exit node tagged tag:exit, '
        "is not in the topology",
    ]  # no word of minji-macbook-air: Tailscale's own `tailscale status` hides it too
    assert found[0].fix.endswith("(always_on = false for a laptop or phone)")
    assert found[1].fix.startswith("nothing if it only routes traffic; to watch it, add [[nodes]]")
    assert not any(f.colours for f in found)


def test_mullvad_exit_nodes_are_no_strays_and_another_exit_node_is_one() -> None:
    real = Path(__file__).parents[1] / "fixtures/tailscale/real/v1_50_mullvad_exit_nodes.json"
    view = parse_status_json(real.read_text(encoding="utf-8"))
    strays = [f.text for f in detect_drift(SPARKLIO, view, None) if f.node_id is None]
    assert strays == [
        'tailnet peer "raspberrypi" (100.64.4.4), an exit node, is not in the topology'
    ]


def test_init_leaves_a_sharees_machine_out() -> None:
    fixture = Path(__file__).parents[1] / "fixtures/tailscale/running_sharee_tagged_exit.json"
    nodes, skipped = starter_nodes(parse_status_json(fixture.read_text(encoding="utf-8")))
    assert "minji-macbook-air" not in {n.hostname for n in nodes}
    assert {"nas-backup", "office-router"} <= {n.hostname for n in nodes}
    assert skipped == ("1 machine(s) of people you shared a machine with: not of this network",)


# ==== the exposure audit =======================================================


def scan(*listeners: tuple[str, int]) -> ListenerScan:
    return ListenerScan(tuple(Listener(a, p) for a, p in listeners))


def test_postgres_on_every_interface_is_exposed_with_its_fix() -> None:
    audit = audit_exposure(
        SPARKLIO, "macmini", (MAC_IP, "fd7a:115c:a1e0::8b01:3305"),
        scan(("0.0.0.0", 5432), ("::", 5432), (MAC_IP, 8000), ("127.0.0.1", 6379),
             ("::ffff:100.123.51.5", 9000)),
    )  # fmt: skip
    verdicts = {s.service.name: (s.verdict, s.offending) for s in audit.services}
    assert verdicts == {
        "FastAPI": (Verdict.OK, ()),
        "PostgreSQL": (Verdict.EXPOSED, ("0.0.0.0", "::")),
        "Redis": (Verdict.LOOPBACK, ("127.0.0.1",)),  # access = "tailscale" in [defaults]
        "MinIO API": (Verdict.OK, ()),  # an IPv4-mapped address is that IPv4 address
        "MinIO Console": (Verdict.NOT_LISTENING, ()),
    }
    postgres = next(s for s in audit.services if s.service.name == "PostgreSQL")
    assert (
        postgres.fix
        == "listen_addresses = '100.123.51.5' in postgresql.conf, then restart PostgreSQL"
    )
    assert postgres.why == "listens on 0.0.0.0:5432, [::]:5432: reachable beyond Tailscale"
    assert postgres.colours
    assert audit.exit_code == 1
    (finding,) = exposure_findings(audit)  # the loopback one is no exposure
    assert finding.key == "exposure:macmini:PostgreSQL:0.0.0.0,::"


@pytest.mark.parametrize(
    ("node", "service", "fix"),
    [
        ("macmini", "FastAPI", "start uvicorn with --host 100.123.51.5 --port 8000"),
        ("macmini", "Redis", "bind 100.123.51.5 in redis.conf, then restart Redis"),
        ("macmini", "MinIO API", "start MinIO with --address 100.123.51.5:9000"),
        ("macmini", "MinIO Console", "start MinIO with --console-address 100.123.51.5:9001"),
        ("desktop", "Ollama",
         "set OLLAMA_HOST=100.120.180.42:11434 for the Ollama service, then restart Ollama"),
        ("desktop", "ComfyUI", "start ComfyUI with --listen 100.120.180.42 --port 8188"),
        ("laptop", "Next.js",
         "start Next.js with -H 100.101.68.23 (next dev -H 100.101.68.23 -p 3000)"),
    ],
)  # fmt: skip
def test_each_server_gets_its_own_setting(node: str, service: str, fix: str) -> None:
    port = next(s.port for n in SPARKLIO.nodes for s in n.services if s.name == service)
    audit = audit_exposure(SPARKLIO, node, (), scan(("192.168.219.100", port)))
    assert next(s.fix for s in audit.services if s.service.name == service) == fix


def test_loopback_is_allowed_by_localhost_and_tailscale_and_kept_in_the_fix() -> None:
    audit = audit_exposure(SPARKLIO, "laptop", (LAPTOP_IP,), scan(("127.0.0.1", 3000)))
    assert audit.services[0].verdict is Verdict.OK
    local = parse_topology(topo('access = "localhost+tailscale"'), "t.toml")
    audit = audit_exposure(local, "macmini", (MAC_IP,), scan(("0.0.0.0", 5432)))
    assert audit.services[0].fix.startswith("listen_addresses = 'localhost,100.123.51.5'")


def test_undeclared_access_warns_without_colour() -> None:
    bare = parse_topology(topo(), "t.toml")
    audit = audit_exposure(bare, "macmini", (MAC_IP,), scan(("0.0.0.0", 5432), ("127.0.0.1", 5432)))
    (service,) = audit.services
    assert (service.verdict, service.colours, service.offending) == (
        Verdict.EXPOSED,
        False,
        ("0.0.0.0",),
    )
    snapshot = judge(
        bare, tailnet(LAPTOP_PEER.__class__("lap", ips=(LAPTOP_IP,), online=True)), "macmini",
        {("macmini", "PostgreSQL"): UP}, {}, now=0.0, findings=exposure_findings(audit),
    )  # fmt: skip
    assert snapshot.overall is Health.GREEN
    assert snapshot.nodes[0].reasons[0].startswith("exposure: PostgreSQL listens on 0.0.0.0:5432")


def test_no_audit_without_a_node_or_sockets() -> None:
    assert audit_exposure(SPARKLIO, None, (), scan()).exit_code == 3
    unreadable = audit_exposure(SPARKLIO, "macmini", (), ListenerScan(problem="denied"))
    assert (unreadable.exit_code, unreadable.problem) == (3, "denied")


def test_the_menu_says_how_many_services_are_exposed() -> None:
    audit = audit_exposure(SPARKLIO, "macmini", (MAC_IP,), scan(("0.0.0.0", 5432)))
    snapshot = judge(
        SPARKLIO, tailnet(DESKTOP_PEER, LAPTOP_PEER), "macmini",
        {(n.id, s.name): UP for n in SPARKLIO.nodes for s in n.services}, {}, now=0.0,
        findings=exposure_findings(audit),
    )  # fmt: skip
    menu = build_menu(TrayView(MonitorStatus(snapshot, now=0.0)), local_time=str)
    entry = next(e for e in menu if "service exposed" in e.text)
    assert entry.text == "! 1 service exposed beyond Tailscale"
    texts = [c.text for c in entry.children]
    assert "PostgreSQL listens on 0.0.0.0:5432: reachable beyond Tailscale" in texts
    assert any("listen_addresses = '100.123.51.5'" in t for t in texts)
    mac = next(e for e in menu if e.text.startswith("! Mac mini"))
    assert "exposed beyond Tailscale" in mac.text


# ==== the ACL ==================================================================

DOCUMENTED_SECTIONS = {
    "grants", "acls", "ssh", "autoApprovers", "nodeAttrs", "postures", "tagOwners", "groups",
    "hosts", "ipsets", "tests", "sshTests",
}  # fmt: skip


def hujson_to_json(text: str) -> object:
    """Strict JSON plus whole-line comments: drop the comment lines."""
    return json.loads("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//")))


def test_the_policy_has_the_documented_structure() -> None:
    acl = acl_policy(SPARKLIO)
    policy = hujson_to_json(render_hujson(acl, SPARKLIO))
    assert policy == acl.policy
    assert isinstance(policy, dict) and set(policy) <= DOCUMENTED_SECTIONS
    hosts = policy["hosts"]
    assert hosts == {"desktop": DESKTOP_IP, "laptop": LAPTOP_IP, "macmini": MAC_IP}
    for grant in policy["grants"]:
        assert set(grant) == {"src", "dst", "ip"}
        assert all(alias in hosts for alias in (*grant["src"], *grant["dst"]))
        assert all(p.startswith("tcp:") and p[4:].isdigit() for p in grant["ip"])
    for test in policy["tests"]:
        assert set(test) <= {"src", "accept", "deny"} and test["src"] in hosts
        for target in (*test.get("accept", ()), *test.get("deny", ())):
            alias, port = target.rsplit(":", 1)
            assert alias in hosts and port.isdigit()


def reachable(policy: dict[str, object], src: str, dst: str, port: int) -> bool:
    grants = policy["grants"]
    assert isinstance(grants, list)
    return any(src in g["src"] and dst in g["dst"] and f"tcp:{port}" in g["ip"] for g in grants)


def test_grants_follow_consumers_and_the_tests_agree_with_the_grants() -> None:
    policy = acl_policy(SPARKLIO).policy
    assert reachable(policy, "laptop", "macmini", 5432)
    assert not reachable(policy, "desktop", "macmini", 5432)  # consumers = ["laptop"]
    assert reachable(policy, "desktop", "macmini", 8000)  # default: every other node
    tests = {t["src"]: t for t in policy["tests"]}
    assert "macmini:5432" in tests["desktop"]["deny"]
    assert "macmini:5432" in tests["laptop"]["accept"]
    for test in policy["tests"]:
        for target in test.get("accept", ()):
            alias, port = target.rsplit(":", 1)
            assert reachable(policy, test["src"], alias, int(port))
        for target in test.get("deny", ()):
            alias, port = target.rsplit(":", 1)
            assert not reachable(policy, test["src"], alias, int(port))


# ==== the monitor's memory: confirmed, told once per change ====================


def drift_snapshot(ip: str | None, *, assessed: bool = True):  # type: ignore[no-untyped-def]
    peers = [LAPTOP_PEER] + (
        [dataclasses.replace(DESKTOP_PEER, ips=(ip,))] if ip else [DESKTOP_PEER]
    )
    view = tailnet(*peers)
    found = detect_drift(SPARKLIO, view, "macmini")
    kinds = frozenset({FindingKind.DRIFT}) if assessed else frozenset()
    return judge(SPARKLIO, view, "macmini", {}, {}, now=0.0, findings=found, assessed=kinds)


def test_a_finding_is_confirmed_then_told_once_and_its_end_told_once() -> None:
    state = findings.FindingsState()
    told: list[tuple[EventKind, str, bool]] = []
    sweeps = ["100.120.180.99", None, "100.120.180.99", "100.120.180.99", "100.120.180.99"]
    sweeps += ["100.120.180.77", "100.120.180.77", None]
    counting_seen = []
    for at, ip in enumerate(sweeps):
        state, events, counting = findings.watch(state, drift_snapshot(ip), float(at), learn=True)
        counting_seen.append(counting)
        told += [(e.kind, e.service or "", e.announce) for e in events]
    assert told == [
        (EventKind.DRIFT_FOUND, "drift:ip:desktop:100.120.180.99", True),  # after 2 in a row
        (EventKind.DRIFT_FIXED, "drift:ip:desktop:100.120.180.99", True),  # the IP moved on
        (EventKind.DRIFT_FOUND, "drift:ip:desktop:100.120.180.77", True),
        (EventKind.DRIFT_FIXED, "drift:ip:desktop:100.120.180.77", True),
    ]
    assert counting_seen[0] is True  # a streak is counted: the monitor re-sweeps soon


def test_grace_and_unassessed_sweeps_teach_nothing() -> None:
    state = findings.FindingsState()
    for at in range(3):
        state, events, _ = findings.watch(state, drift_snapshot("100.120.180.99"), at, learn=False)
        assert events == ()
    state, events, _ = findings.watch(state, drift_snapshot("100.120.180.99"), 3.0, learn=True)
    state, events, _ = findings.watch(state, drift_snapshot("100.120.180.99"), 4.0, learn=True)
    assert [e.kind for e in events] == [EventKind.DRIFT_FOUND]
    for at in range(5, 8):  # Tailscale unreadable: drift not assessed, nothing is "fixed"
        state, events, _ = findings.watch(
            state, drift_snapshot(None, assessed=False), at, learn=True
        )
        assert events == ()
    assert findings.announced_subjects(state) == {
        ("drift", "desktop", "drift:ip:desktop:100.120.180.99")
    }


def test_a_warning_without_colour_is_neither_recorded_nor_announced() -> None:
    phone = PeerView("pixel-7", ips=("100.64.0.7",), online=True)
    view = tailnet(DESKTOP_PEER, LAPTOP_PEER, phone)
    found = detect_drift(SPARKLIO, view, "macmini")
    snapshot = judge(
        SPARKLIO, view, "macmini", {}, {}, now=0.0, findings=found,
        assessed=frozenset({FindingKind.DRIFT}),
    )  # fmt: skip
    state = findings.FindingsState()
    for at in range(4):
        state, events, counting = findings.watch(state, snapshot, float(at), learn=True)
        assert (events, counting) == ((), False)
