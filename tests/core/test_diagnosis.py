"""Path latency, key expiry and rich details in the core: parsing, judging, words, menu, report."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.core.details import detail_line, detail_source, details_dict
from agent.core.health import judge
from agent.core.keys import (
    DAY_S,
    KeyNotices,
    Stage,
    announce,
    carried_notices,
    key_warning,
    stage_of,
)
from agent.core.menu import MonitorStatus, TrayView, build_menu
from agent.core.model import (
    Health,
    Link,
    PathReading,
    ProbeResult,
    ProbeState,
    Service,
    Snapshot,
    TailnetView,
)
from agent.core.path import describe_path, parse_go_duration, parse_ping
from agent.core.plan import plan_sweep
from agent.core.report.check import render_table, snapshot_to_dict
from agent.core.tailnet import parse_status
from tests.core.sample_network import (
    ALL_DIRECT,
    LAPTOP,
    MACMINI,
    OLLAMA,
    REDIS,
    TOPOLOGY,
    UP,
    node_of,
    peer,
    running,
    sweep_of,
)

PING_FIXTURES = Path(__file__).parent.parent / "fixtures" / "tailscale" / "ping"
NOW = 1_800_000_000.0  # the fixed clock every expiry here is relative to


def ping_fixture(name: str) -> str:
    return (PING_FIXTURES / name).read_text()


# ==== tailscale ping output ====================================================


@pytest.mark.parametrize(
    ("fixture", "link", "via", "ms"),
    [
        ("direct.txt", Link.DIRECT, "192.168.219.100:64094", 1.0),
        ("derp.txt", Link.RELAY, "fra", 38.0),
        ("peer_relay.txt", Link.PEER_RELAY, "192.168.1.215:7777:vni:1", 28.0),
        ("direct_ipv6.txt", Link.DIRECT, "[2604:a880:2:d1::36:d001]:41641", 33.0),
    ],
)
def test_recorded_pongs_read_as_their_path(fixture: str, link: Link, via: str, ms: float) -> None:
    reading = parse_ping(ping_fixture(fixture), timeout_s=3, at=5.0)
    assert reading == PathReading(link, via, ms, "", 5.0)


def test_a_timed_out_ping_says_so_with_its_timeout() -> None:
    reading = parse_ping(ping_fixture("timeout.txt"), "no reply\n", timeout_s=3)
    assert (reading.link, reading.latency_ms, reading.error) == (
        Link.UNKNOWN,
        None,
        "no reply within 3 s",
    )
    assert describe_path(reading) == "no pong: no reply within 3 s"


def test_a_cli_error_is_kept_as_the_fact() -> None:
    reading = parse_ping("", "no matching peer\n", timeout_s=3)
    assert reading.error == "no matching peer"
    assert parse_ping("", "", timeout_s=3).error == "tailscale ping printed no pong"


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1ms", 1.0), ("38ms", 38.0), ("0s", 0.0), ("1.204s", 1204.0), ("1m2.5s", 62500.0),
     ("850µs", 0.85), ("soon", None), ("", None), ("12", None)],
)  # fmt: skip
def test_go_durations(text: str, ms: float | None) -> None:
    assert parse_go_duration(text) == ms


def test_link_words_follow_the_issue() -> None:
    assert describe_path(parse_ping(ping_fixture("direct.txt"), timeout_s=3)) == (
        "direct 192.168.219.100:64094 · 1 ms"
    )
    assert (
        describe_path(parse_ping(ping_fixture("derp.txt"), timeout_s=3)) == "via DERP fra · 38 ms"
    )
    assert describe_path(PathReading(Link.DIRECT, "1.2.3.4:5", 0.2)) == "direct 1.2.3.4:5 · <1 ms"


# ==== judged with a path =======================================================

DERP_PING = PathReading(Link.RELAY, "fra", 138.0)
DIRECT_PING = PathReading(Link.DIRECT, "192.168.219.100:64094", 1.0)


def judged_with(
    paths: dict[str, PathReading],
    tailnet: TailnetView = ALL_DIRECT,
    now: float = NOW,
    **outcomes: ProbeResult,
) -> Snapshot:
    plan = plan_sweep(TOPOLOGY, "desktop", tailnet)
    results = sweep_of(tailnet, **outcomes)
    results.update(plan.skipped)
    return judge(TOPOLOGY, tailnet, "desktop", results, plan.addresses, now=now, paths=paths)


def test_the_ping_latency_is_the_node_latency_and_latency_warn_applies() -> None:
    snapshot = judged_with({"macmini": DERP_PING, "laptop": DIRECT_PING})
    mac = node_of(snapshot, "macmini")
    assert (mac.latency_ms, mac.path, mac.health) == (138.0, DERP_PING, Health.AMBER)
    assert "slow link: 138 ms (warn above 100 ms)" in mac.reasons
    laptop = node_of(snapshot, "laptop")
    assert (laptop.latency_ms, laptop.health) == (1.0, Health.GREEN)


def test_a_ping_of_an_offline_peer_is_not_shown() -> None:
    tailnet = running(peer(LAPTOP, online=False, active=False), peer(MACMINI))
    snapshot = judged_with({"laptop": DIRECT_PING}, tailnet=tailnet)
    assert node_of(snapshot, "laptop").path is None


def test_without_a_pong_the_service_latency_stays() -> None:
    snapshot = judged_with({"macmini": PathReading(Link.UNKNOWN, error="no reply within 3 s")})
    assert node_of(snapshot, "macmini").latency_ms == UP.latency_ms


def test_menu_and_report_show_the_path() -> None:
    snapshot = judged_with({"macmini": DERP_PING, "laptop": DIRECT_PING})
    view = TrayView(MonitorStatus(snapshot, now=NOW))
    menu = build_menu(view, local_time=lambda t: "12:00")
    mac = next(e for e in menu if e.text.startswith("! Mac mini"))
    assert mac.children[0].text == "Link: via DERP fra · 138 ms (slow: warn above 100 ms)"
    laptop = next(e for e in menu if "Laptop" in e.text)
    assert laptop.children[0].text == "Link: direct 192.168.219.100:64094 · 1 ms"
    assert not any(c.text.startswith("Latency:") for c in laptop.children)
    data = snapshot_to_dict(snapshot)
    node = next(n for n in data["nodes"] if n["id"] == "macmini")
    assert node["path"] == {
        "link": "relay", "via": "fra", "latency_ms": 138.0, "error": None,
        "text": "via DERP fra · 138 ms",
    }  # fmt: skip
    assert node["latency_ms"] == 138.0
    assert (
        "macmini  Mac mini — Backend Server (woosuns-mac-mini, 100.123.51.5)  via DERP fra · 138 ms"
        in (render_table(snapshot))
    )
    json.dumps(data)


# ==== key expiry ===============================================================


def test_stages() -> None:
    assert stage_of(8 * DAY_S) is None
    assert stage_of(3 * DAY_S) is Stage.WEEK
    assert stage_of(5 * 3600) is Stage.DAY
    assert stage_of(-60) is None  # expired: Tailscale itself says so


def status_with_expiry(mac_left_s: float, self_left_s: float | None = None) -> dict[str, object]:
    """A recorded-format status (tests/fixtures/tailscale/running_all_direct.json) with the
    Mac mini's KeyExpiry `mac_left_s` after NOW, Self's `self_left_s` (None: as recorded)."""
    fixture = Path(__file__).parent.parent / "fixtures" / "tailscale" / "running_all_direct.json"
    data: dict[str, Any] = json.loads(fixture.read_text())

    def rfc3339(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")

    for p in data["Peer"].values():
        if p["HostName"] == "Woosuns-Mac-mini":
            p["KeyExpiry"] = rfc3339(NOW + mac_left_s)
    if self_left_s is not None:
        data["Self"]["KeyExpiry"] = rfc3339(NOW + self_left_s)
    return data


def snapshot_at(status: dict[str, object], now: float) -> Snapshot:
    return judged_with({}, tailnet=parse_status(status), now=now)


def test_the_key_warning_names_the_node_and_the_fix() -> None:
    snapshot = snapshot_at(status_with_expiry(3 * DAY_S + 600, self_left_s=20 * 3600), NOW)
    mac = node_of(snapshot, "macmini")
    assert mac.key_expires_at == pytest.approx(NOW + 3 * DAY_S + 600, abs=1)
    assert key_warning(mac, NOW) == (
        "Mac mini's node key expires in 3 days — `tailscale up --force-reauth` there, "
        "or disable expiry in the admin console"
    )
    me = node_of(snapshot, "desktop")
    assert key_warning(me, NOW) == (
        "This machine's node key expires in 20 h — `tailscale up --force-reauth` here, "
        "or disable expiry in the admin console"
    )
    assert key_warning(node_of(snapshot, "laptop"), NOW) is None  # recorded: long expired
    assert mac.health is Health.GREEN  # a warning, not a colour
    table = render_table(snapshot)
    assert (
        "    ! Mac mini's node key expires in 3 days — `tailscale up --force-reauth` there" in table
    )
    data = snapshot_to_dict(snapshot)
    key = next(n for n in data["nodes"] if n["id"] == "macmini")["key_expiry"]
    assert key["seconds_left"] == pytest.approx(3 * DAY_S + 600, abs=1)
    assert key["warning"].startswith("Mac mini's node key expires in 3 days")
    menu = build_menu(TrayView(MonitorStatus(snapshot, now=NOW)), local_time=lambda t: "")
    mac_menu = next(e for e in menu if "Mac mini" in e.text)
    texts = [c.text for c in mac_menu.children]
    at = texts.index("! Mac mini's node key expires in 3 days")
    assert texts[at + 1] == (
        "↳ `tailscale up --force-reauth` there, or disable expiry in the admin console"
    )


def test_announced_once_under_a_week_and_again_under_a_day() -> None:
    status = status_with_expiry(7 * DAY_S + 3600)
    notices: KeyNotices = frozenset()
    told: list[str] = []
    for hours in range(0, 8 * 24, 6):  # a sweep every 6 hours for 8 days
        now = NOW + hours * 3600
        notices, events = announce(notices, snapshot_at(status, now), now)
        told += [e.title for e in events]
    assert told == ["Mac mini: node key expires in 6 days", "Mac mini: node key expires in 19 h"]


def test_a_renewed_key_starts_over_and_a_restart_does_not_repeat() -> None:
    snapshot = snapshot_at(status_with_expiry(2 * DAY_S), NOW)
    notices, events = announce(frozenset(), snapshot, NOW)
    (event,) = events
    assert (event.kind.value, event.node_id, event.announce, event.critical) == (
        "key_expiring", "macmini", True, False,
    )  # fmt: skip
    carried = carried_notices([(event.node_id, event.at, event.duration_s)])
    assert (
        announce(carried, snapshot_at(status_with_expiry(2 * DAY_S), NOW + 60), NOW + 60)[1] == ()
    )
    renewed = snapshot_at(status_with_expiry(2 * DAY_S + 90 * DAY_S), NOW)
    later = NOW + 88 * DAY_S
    assert [e.title for e in announce(notices, renewed, later)[1]] == [
        "Mac mini: node key expires in 4 days"
    ]


def test_tailscale_health_warnings_show_in_menu_and_table() -> None:
    warning = "Tailscale could not connect to the 'Tokyo' relay server."
    tailnet = replace(ALL_DIRECT, health_warnings=(warning,))
    snapshot = judged_with({}, tailnet=tailnet)
    menu = build_menu(TrayView(MonitorStatus(snapshot, now=NOW)), local_time=lambda t: "")
    assert menu[1].text == f"! Tailscale: {warning}"
    assert f"Tailscale warns: {warning}" in render_table(snapshot)


# ==== rich details =============================================================

COMFYUI = Service("ComfyUI", 8188, OLLAMA.check, "/")
MINIO = Service("MinIO API", 9000, OLLAMA.check, "/minio/health/live")


def up_with(*details: tuple[str, object]) -> ProbeResult:
    return ProbeResult(ProbeState.UP, None, "HTTP 200", 1.0, details=details)  # type: ignore[arg-type]


def test_which_services_offer_details() -> None:
    assert [detail_source(s) for s in (OLLAMA, COMFYUI, MINIO, REDIS)] == [
        "ollama", "comfyui", "minio", "redis",
    ]  # fmt: skip
    assert detail_source(Service("FastAPI", 8000, OLLAMA.check, "/health")) is None


def test_detail_lines() -> None:
    models = ("llama3.1:8b", "whisper:large", "qwen2.5:7b", "nomic-embed-text")
    ollama = up_with(("models", models), ("models_loaded", ("llama3.1:8b",)))
    assert detail_line(OLLAMA, ollama) == (
        "4 models: llama3.1:8b, whisper:large, qwen2.5:7b +1 more · loaded: llama3.1:8b"
    )
    assert details_dict(ollama) == {"models": list(models), "models_loaded": ["llama3.1:8b"]}
    gib = 1024**3
    comfy = up_with(("queue_running", 1), ("queue_pending", 2),
                    ("vram_used_bytes", 5 * gib), ("vram_total_bytes", 24 * gib))  # fmt: skip
    assert detail_line(COMFYUI, comfy) == "queue: 1 running, 2 pending · VRAM 5.0 of 24.0 GiB used"
    assert detail_line(MINIO, up_with(("live", "yes"), ("ready", "no"))) == "MinIO live, not ready"
    assert (
        detail_line(REDIS, up_with(("version", "7.2.4"), ("role", "master")))
        == "Redis 7.2.4, master"
    )
    assert detail_line(OLLAMA, UP) == ""


def test_details_show_under_their_service_in_the_menu() -> None:
    ollama = up_with(("models", ("llama3.1:8b",)), ("models_loaded", ()))
    snapshot = judged_with({}, Ollama=ollama)
    menu = build_menu(TrayView(MonitorStatus(snapshot, now=NOW)), local_time=lambda t: "")
    desktop = next(e for e in menu if "Desktop" in e.text)
    texts = [c.text for c in desktop.children]
    at = next(i for i, t in enumerate(texts) if t.startswith("✓ Ollama :11434"))
    assert texts[at + 1] == "↳ 1 model: llama3.1:8b · none loaded"
    table = render_table(snapshot)
    assert "1 model: llama3.1:8b · none loaded" in table
