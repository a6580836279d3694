"""The reports: `check`'s JSON contract and text table, `history`'s colours."""

from __future__ import annotations

import json

import pytest

from agent.core.events import EventKind, EventRecord
from agent.core.model import Health
from agent.core.report.check import render_table, snapshot_to_dict
from agent.core.report.history import render_history
from tests.core.sample_network import ALL_DIRECT, LAPTOP, MACMINI, REFUSED, judged, peer, running


def test_json_has_the_contract_keys() -> None:
    data = snapshot_to_dict(judged(ALL_DIRECT, FastAPI=REFUSED))
    json.dumps(data)  # serialisable as is
    assert data["overall"] == "red" and data["exit_code"] == 2
    assert {"overall", "nodes", "summary", "tailscale", "self_node"} <= data.keys()
    for node in data["nodes"]:
        assert {"id", "health", "online", "link", "relay", "latency_ms", "services"} <= node.keys()
        for service in node["services"]:
            assert {"name", "port", "state", "reason", "latency_ms"} <= service.keys()
    mac = next(n for n in data["nodes"] if n["id"] == "macmini")
    fastapi = mac["services"][0]
    assert (fastapi["name"], fastapi["port"], fastapi["state"], fastapi["reason"]) == (
        "FastAPI", 8000, "down", "refused",
    )  # fmt: skip
    assert mac["link"] == "direct" and mac["relay"] is None and mac["online"] is True


def test_json_relay_names_the_region() -> None:
    data = snapshot_to_dict(judged(running(peer(LAPTOP), peer(MACMINI, cur_addr="", relay="sea"))))
    mac = next(n for n in data["nodes"] if n["id"] == "macmini")
    assert (mac["link"], mac["relay"], mac["health"]) == ("relay", "sea", "amber")


def test_table_groups_by_node_and_explains_failures() -> None:
    text = render_table(judged(ALL_DIRECT, FastAPI=REFUSED))
    lines = text.splitlines()
    assert lines[0].startswith("Sparklio: RED — Mac mini: FastAPI down")
    mac_at = next(i for i, line in enumerate(lines) if "woosuns-mac-mini" in line)
    assert "[red]" in lines[mac_at] and "direct" in lines[mac_at]
    assert "FastAPI" in lines[mac_at + 1] and "connection refused" in lines[mac_at + 1]
    assert "\x1b[" not in text


def test_table_colour_only_when_asked() -> None:
    snapshot = judged(ALL_DIRECT)
    assert snapshot.overall is Health.GREEN
    coloured = render_table(snapshot, color=True)
    assert "\x1b[32mSparklio: GREEN\x1b[0m" in coloured


def _record(kind: EventKind, *, critical: bool = False, announce: bool = True) -> EventRecord:
    return EventRecord(
        id=1, kind=kind.value, at=0.0, node_id="macmini", service="FastAPI", title="t",
        message="", critical=critical, announce=announce,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("record", "painted"),
    [
        pytest.param(_record(EventKind.SERVICE_DOWN, critical=True), "\x1b[31m✗\x1b[0m", id="red"),
        pytest.param(_record(EventKind.LINK_RELAYED), "\x1b[33m!\x1b[0m", id="amber"),
        pytest.param(_record(EventKind.SERVICE_UP), "\x1b[32m✓\x1b[0m", id="green"),
        pytest.param(_record(EventKind.AGENT_STARTED), "\x1b[90m·\x1b[0m", id="note-grey"),
        pytest.param(
            _record(EventKind.SERVICE_UP, announce=False),
            "\x1b[32m✓\x1b[0m t\x1b[90m (not notified)\x1b[0m",
            id="quiet-grey",
        ),
    ],
)
def test_history_marks_use_checks_colours(record: EventRecord, painted: str) -> None:
    """check and history colour from one table: the same health, the same escape."""
    assert painted in render_history([record], color=True)
    assert "\x1b[" not in render_history([record], color=False)
