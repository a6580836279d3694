"""agent.desktop.tray.Tray in its own process, fed TrayViews as JSON (the real-desktop tray tests).

    PYSTRAY_BACKEND=gtk python -m tests.helpers.tray_app --view v.json --actions a.log

--view FILE    the first view (JSON, see view_from_json), published before run()
--actions FILE each menu click appends its action id as a line; "copy:<text>" is also
               carried out with desktop.actions.copy_text and followed by "copied <True|False>"
stdin, one command a line:
    {...}      a view as JSON: published from this (non-UI) thread, as the monitor does
    stats      prints the Tray's counters as JSON: {"applied": n, "icon_changes": n, ...}
    quit       tray.stop() (so does the end of input)
stdout: "ready <backend>" once the icon was asked to show, "published" after each view,
the stats lines, "bye" after run() returned. A "quit" menu click stops the tray too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from pathlib import Path
from typing import Any

from agent.core.menu import ActionKind, MenuAction, MonitorStatus, TrayView
from agent.core.model import (
    BackendState,
    CheckKind,
    Defaults,
    Health,
    Impact,
    Link,
    Node,
    NodeStatus,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    ServiceStatus,
    TailnetView,
    TailscaleProblem,
    Topology,
)
from tests.core.snapshots import node_status, service_status
from tests.core.snapshots import snapshot as build_snapshot

__all__ = ["main", "view_from_json"]

_say_lock = threading.Lock()


def _say(line: str) -> None:
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _service(data: dict[str, Any], node_id: str) -> tuple[ServiceStatus, Any, Any]:
    service = Service(
        data["name"],
        int(data["port"]),
        CheckKind(data.get("check", "http")),
        data.get("path", "/"),
        impact=Impact(data.get("impact", "degraded")),
        open=bool(data.get("open", False)),
    )
    reason = data.get("reason")
    result = ProbeResult(
        ProbeState(data.get("state", "up")),
        None if reason is None else Reason(reason),
        data.get("detail", ""),
        data.get("latency_ms"),
    )
    host = data["address"].rpartition(":")[0]
    status = service_status(service, result, host, health=Health(data.get("health", "green")))
    return status, data.get("uptime"), data.get("since")


def view_from_json(data: dict[str, Any]) -> TrayView:
    """A TrayView from plain JSON. Keys: now, paused_until, autostart, topology_error, version,
    in_grace, and snapshot (null, or: overall, summary, at, tailscale_running, nodes[] with id,
    name, hostname, ip, always_on, self, link, relay, latency_ms, health, services[] with
    name, port, check, path, impact, open, address, state, reason, detail, health, uptime,
    since)."""
    uptime: dict[tuple[str, str], float | None] = {}
    since: dict[tuple[str, str], float] = {}
    snapshot = None
    snap = data.get("snapshot")
    if snap is not None:
        statuses: list[NodeStatus] = []
        for n in snap["nodes"]:
            services = []
            for s in n.get("services", []):
                status, up, began = _service(s, n["id"])
                services.append(status)
                uptime[(n["id"], s["name"])] = up
                if began is not None:
                    since[(n["id"], s["name"])] = float(began)
            node = Node(
                n["id"],
                n["name"],
                n.get("hostname", n["id"]),
                n["ip"],
                always_on=bool(n.get("always_on", True)),
                services=tuple(s.service for s in services),
            )
            statuses.append(
                node_status(
                    node,
                    *services,
                    is_self=bool(n.get("self", False)),
                    link=Link(n.get("link", "direct")),
                    relay=n.get("relay", ""),
                    latency=n.get("latency_ms"),
                    health=Health(n.get("health", "green")),
                )
            )
        if snap.get("tailscale_running", True):
            tailnet = TailnetView(backend_state=BackendState.RUNNING)
        else:
            tailnet = TailnetView(
                backend_state=BackendState.STOPPED, problem=TailscaleProblem.NOT_RUNNING
            )
        topology = Topology("test", tuple(s.node for s in statuses), Defaults())
        self_id = next((s.node.id for s in statuses if s.is_self), None)
        snapshot = build_snapshot(
            *statuses,
            topology=topology,
            tailnet=tailnet,
            self_id=self_id,
            overall=Health(snap.get("overall", "green")),
            summary=snap.get("summary", ""),
            at=float(snap.get("at", data["now"])),
        )
    status = MonitorStatus(
        snapshot=snapshot,
        now=float(data["now"]),
        paused_until=data.get("paused_until"),
        topology_error=data.get("topology_error"),
        uptime=uptime,
        since=since,
        in_grace=bool(data.get("in_grace", False)),
    )
    return TrayView(status, autostart=data.get("autostart"), version=data.get("version", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--view", type=Path, required=True)
    parser.add_argument("--actions", type=Path, required=True)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)

    from agent.desktop.actions import copy_text
    from agent.desktop.tray import Tray  # pystray itself is imported by Tray.run

    actions_lock = threading.Lock()

    def record(line: str) -> None:
        with actions_lock, args.actions.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def on_action(action: MenuAction) -> None:
        record(str(action))
        if action.kind is ActionKind.COPY_ADDRESS:
            record(f"copied {copy_text(action.payload).ok}")
        elif action.kind is ActionKind.QUIT:
            tray.stop()

    tray = Tray(on_action, title="tailnet-agent", icon_size=args.size)
    tray.publish(view_from_json(json.loads(args.view.read_text(encoding="utf-8"))))

    def feed() -> None:
        for raw in sys.stdin:
            line = raw.strip()
            if line == "quit":
                break
            if line == "stats":
                _say(json.dumps(dataclasses.asdict(tray.counters)))
            elif line.startswith("{"):
                tray.publish(view_from_json(json.loads(line)))
                _say("published")
            elif line:
                _say(f"unknown {line}")
        tray.stop()

    def setup() -> None:
        _say(f"ready {tray.backend}")
        threading.Thread(target=feed, name="feed", daemon=True).start()

    tray.run(setup)
    _say("bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
