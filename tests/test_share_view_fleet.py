"""Who sees whom: three installed agents, each its own node on its own loopback address,
share their views (`run --headless --share-view PORT`) and place a failure.

desktop 127.0.0.2, laptop 127.0.0.3, macmini 127.0.0.4: each agent has its own stand-in
`tailscale` status whose Self IP is its own address, and the services listen on their
node's address (FastAPI and MinIO on the Mac mini, Ollama on the desktop). Three more
nodes answer badly: one serves a malformed view, one a stale view, one nothing at all.

1. FastAPI stops: every node fails to reach it -> "FastAPI down on the Mac mini (seen from
   3 nodes)" on every agent.
2. FastAPI is back, then the desktop alone is cut off from 127.0.0.4 (the netguard refuses
   its connections, as a firewall here would): the desktop says "Your link to the Mac mini
   is broken (others reach it)", not critical; the others say nothing.

With the default interval (10 s) and threshold (2), a down is confirmed about a second after
its first failure, while the peers' views are still from before it: the first notification
waits for their next views (agent.core.placing) and carries the place all the same.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import TAILSCALE_FIXTURES, AgentSandbox, installed_agent
from tests.helpers.desktop import wait_for
from tests.helpers.servers import free_port, http_server

AGENTS = {"desktop": "127.0.0.2", "laptop": "127.0.0.3", "macmini": "127.0.0.4"}
BAD_VIEWS = {"nas1": "127.0.0.5", "nas2": "127.0.0.6", "nas3": "127.0.0.7"}
SHOWN_DOWN = "notification (log only, critical): FastAPI down on the Mac mini (seen from 3 nodes)"
HOSTNAMES = {"desktop": "sweetlife", "laptop": "desktop-ecmkau8", "macmini": "woosuns-mac-mini"}


def topology(ports: dict[str, int], *, interval: str = "1s", failure_threshold: int = 3) -> str:
    def node(node_id: str, ip: str, name: str, services: str = "") -> str:
        host = HOSTNAMES.get(node_id, node_id)
        return (
            f'[[nodes]]\nid = "{node_id}"\nname = "{name}"\nhostname = "{host}"\nip = "{ip}"\n'
            + services
        )

    def http(name: str, port: int, impact: str) -> str:
        return (
            f'  [[nodes.services]]\n  name = "{name}"\n  port = {port}\n  check = "http"\n'
            f'  path = "/health"\n  impact = "{impact}"\n'
        )

    return "\n".join(
        [
            'version = 1\nname = "Sparklio (three agents)"\n',
            f'[defaults]\ninterval = "{interval}"\ntimeout = "1s"\n'
            f"failure_threshold = {failure_threshold}\n",
            node("desktop", AGENTS["desktop"], "Desktop — GPU Worker",
                 http("Ollama", ports["ollama"], "degraded")),
            node("laptop", AGENTS["laptop"], "Laptop — Frontend Dev"),
            node("macmini", AGENTS["macmini"], "Mac mini — Backend Server",
                 http("FastAPI", ports["fastapi"], "critical")
                 + http("MinIO", ports["minio"], "degraded")),
            *(node(n, ip, n.upper()) for n, ip in BAD_VIEWS.items()),
        ]
    )  # fmt: skip


def status_json(me: str) -> dict:  # type: ignore[type-arg]
    """The recorded format (loopback_all_direct.json), Self and peers moved to 127.0.0.x."""
    base = json.loads((TAILSCALE_FIXTURES / "loopback_all_direct.json").read_text())
    template = next(iter(base["Peer"].values()))
    everyone = {**AGENTS, **BAD_VIEWS}
    base["TailscaleIPs"] = [everyone[me]]
    base["Self"].update(HostName=HOSTNAMES.get(me, me), TailscaleIPs=[everyone[me]])
    base["Peer"] = {
        f"nodekey:{i:064x}": {
            **template,
            "ID": f"n{i}",
            "PublicKey": f"nodekey:{i:064x}",
            "HostName": HOSTNAMES.get(other, other),
            "DNSName": f"{HOSTNAMES.get(other, other)}.tail4c2e9a.ts.net.",
            "TailscaleIPs": [ip],
            "Online": True,
            "Active": True,
            "CurAddr": f"{ip}:41641",
        }
        for i, (other, ip) in enumerate(everyone.items(), start=1)
        if other != me
    }
    return base


class Agent:
    def __init__(self, node_id: str, sandbox: AgentSandbox, topology_path: Path, port: int) -> None:
        root = sandbox.root / node_id
        root.mkdir()
        status = root / "status.json"
        status.write_text(json.dumps(status_json(node_id)))
        self.cut_off = root / "unreachable"
        self.stderr = root / "stderr.log"
        env = dict(sandbox.env)
        env.update(
            HOME=str(root / "home"),
            XDG_CONFIG_HOME=str(root / "config"),
            XDG_STATE_HOME=str(root / "state"),
            XDG_DATA_HOME=str(root / "data"),
            XDG_CACHE_HOME=str(root / "cache"),
            XDG_RUNTIME_DIR=str(root),
            FAKE_TAILSCALE_JSON=str(status),
            NETGUARD_UNREACHABLE_FILE=str(self.cut_off),
        )
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
            env.pop(name, None)  # notifications go to the log
        argv = [installed_agent(), "run", "--headless", "--topology", str(topology_path)]
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [*argv, "--share-view", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def notifications_of(agent: Agent, words: str) -> list[str]:
    """The notification lines (shown or held back) of the downs that say `words`."""
    return [
        line.split("notification ", 1)[1]
        for line in agent.log().splitlines()
        if "notification " in line and words in line
    ]


def events_of(agent: Agent, kind: str) -> list[str]:
    return [
        line.split(f"event {kind}: ", 1)[1]
        for line in agent.log().splitlines()
        if f"event {kind}: " in line
    ]


def test_three_agents_tell_a_service_down_from_a_broken_link(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    sandbox.use_fake_tailscale()
    share_port = free_port(AGENTS["desktop"])

    with contextlib.ExitStack() as stack:
        ports = {
            "ollama": stack.enter_context(http_server({"/health": "ok"}, AGENTS["desktop"]))[1],
            "minio": stack.enter_context(http_server({"/health": "ok"}, AGENTS["macmini"]))[1],
        }
        fastapi_port = free_port(AGENTS["macmini"])
        ports["fastapi"] = fastapi_port
        stale = json.dumps(
            {"kind": "tailnet-agent/view", "version": 1, "node": "nas2", "at": time.time() - 3600,
             "services": []}
        ).encode()  # fmt: skip
        for name, body in (("nas1", b"{not json"), ("nas2", stale)):
            bad = FixedServer(BAD_VIEWS[name], share_port, {"/v1/view": body})
            stack.callback(bad.close)
        # nas3 (127.0.0.7): nothing listens there
        path = tmp_path / "topology.toml"
        path.write_text(topology(ports), encoding="utf-8")

        fastapi = FixedServer(AGENTS["macmini"], fastapi_port, {"/health": b"ok"})
        stack.callback(lambda: fastapi.close())
        agents = {n: Agent(n, sandbox, path, share_port) for n in AGENTS}
        stack.callback(lambda: [a.stop() for a in agents.values()])
        for agent in agents.values():
            wait_for(
                lambda a=agent: (
                    "state green" in a.log()
                    and sum(f"view of {n}: fresh" in a.log() for n in AGENTS) == 2
                ),
                timeout=40,
                message=f"{agent.stderr.parent.name} green with fresh peer views",
            )
        for agent in agents.values():
            text = agent.log()
            assert "view of nas1: malformed: not JSON" in text
            assert "view of nas2: stale: " in text
            assert "view of nas3: unreachable" in text

        # 1. FastAPI stops: every node sees it down.
        fastapi.close()
        for agent in agents.values():
            wait_for(lambda a=agent: events_of(a, "service_down"), timeout=40, message="a down")
        downs = {n: events_of(a, "service_down") for n, a in agents.items()}
        for node_id, lines in downs.items():
            assert lines[0].startswith(
                "FastAPI down on the Mac mini (seen from 3 nodes) — FastAPI on woosuns-mac-mini "
                "refused the connection"
            ), (node_id, lines)
            wait_for(lambda a=agents[node_id]: SHOWN_DOWN in a.log(), timeout=20, message="told")

        # 2. FastAPI back; then only the desktop loses its path to the Mac mini.
        fastapi = FixedServer(AGENTS["macmini"], fastapi_port, {"/health": b"ok"})
        for agent in agents.values():
            wait_for(lambda a=agent: events_of(a, "service_up"), timeout=40, message="FastAPI up")
        agents["desktop"].cut_off.write_text(AGENTS["macmini"] + "\n")
        wait_for(
            lambda: len(events_of(agents["desktop"], "service_down")) >= 3,
            timeout=40,
            message="the desktop link down",
        )
        link = events_of(agents["desktop"], "service_down")[1:]
        assert all(
            line.startswith("Your link to the Mac mini is broken (others reach it) — ")
            for line in link
        ), link
        assert "but laptop reaches it" in link[0] and "tailscale ping woosuns-mac-mini" in link[0]
        log = agents["desktop"].log()
        assert "WARNING" not in next(
            line for line in log.splitlines() if "Your link to the Mac mini" in line
        )  # not critical: logged at INFO
        assert "state amber: Mac mini" in log.split("event service_up")[-1]
        # Shown, or held back by the repeat limit: FastAPI's down was shown a moment ago (1.),
        # and when FastAPI and MinIO are confirmed in one sweep they make one notification.
        told = re.compile(
            r"notification (\(log only\)|held back \(.*\)): Your link to the Mac mini is broken "
            r"\(others reach it\)"
        )
        wait_for(lambda: told.search(agents["desktop"].log()), timeout=20, message="told")
        time.sleep(3)  # the others keep reaching it: nothing new there
        for node_id in ("laptop", "macmini"):
            assert len(events_of(agents[node_id], "service_down")) == 1
    assert sandbox.outside_connections() == []


def test_at_the_default_interval_the_first_notification_carries_the_place(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    sandbox.use_fake_tailscale()
    share_port = free_port(AGENTS["desktop"])
    with contextlib.ExitStack() as stack:
        ports = {
            "ollama": stack.enter_context(http_server({"/health": "ok"}, AGENTS["desktop"]))[1],
            "minio": stack.enter_context(http_server({"/health": "ok"}, AGENTS["macmini"]))[1],
            "fastapi": free_port(AGENTS["macmini"]),
        }
        path = tmp_path / "topology.toml"
        path.write_text(topology(ports, interval="10s", failure_threshold=2), encoding="utf-8")
        fastapi = FixedServer(AGENTS["macmini"], ports["fastapi"], {"/health": b"ok"})
        stack.callback(lambda: fastapi.close())
        agents = {n: Agent(n, sandbox, path, share_port) for n in AGENTS}
        stack.callback(lambda: [a.stop() for a in agents.values()])
        for agent in agents.values():
            wait_for(
                lambda a=agent: sum(f"view of {n}: fresh" in a.log() for n in AGENTS) == 2,
                timeout=60,
                message=f"{agent.stderr.parent.name} with fresh peer views",
            )

        # 1. FastAPI stops. Each agent confirms it a second after its first failure, before
        # its peers' next views; the down waits for them, then is told once, placed.
        fastapi.close()
        for agent in agents.values():
            wait_for(
                lambda a=agent: notifications_of(a, "FastAPI down"), timeout=60, message="told"
            )
        for node_id, agent in agents.items():
            assert events_of(agent, "service_down")[0].startswith(
                "FastAPI down on the Mac mini (seen from 3 nodes) — "
            ), (node_id, agent.log())
            assert notifications_of(agent, "FastAPI down")[0].startswith(
                "(log only, critical): FastAPI down on the Mac mini (seen from 3 nodes): "
            ), (node_id, agent.log())
        # Which agents had to wait depends on where the peers' sweeps fell: said, not asserted
        held = [n for n, a in agents.items() if "holding Mac mini — Backend Server: FastAPI down"
                " until the views of " in a.log()]  # fmt: skip
        print(f"1. FastAPI down: held for the peers' views on {held or 'no agent'}")

        # 2. FastAPI back; then only the desktop loses its path to the Mac mini, whose agent
        # and the laptop's sweep every 10 s: the desktop waits for their next views.
        fastapi = FixedServer(AGENTS["macmini"], ports["fastapi"], {"/health": b"ok"})
        for agent in agents.values():
            wait_for(lambda a=agent: events_of(a, "service_up"), timeout=60, message="FastAPI up")
        desktop = agents["desktop"]
        desktop.cut_off.write_text(AGENTS["macmini"] + "\n")
        wait_for(lambda: len(events_of(desktop, "service_down")) >= 2, timeout=60, message="cut")
        link = events_of(desktop, "service_down")[1:]
        assert link and all(
            line.startswith("Your link to the Mac mini is broken (others reach it) — ")
            for line in link
        ), desktop.log()
        link_held = (
            "holding Mac mini — Backend Server: " in desktop.log().split("event service_up")[-1]
        )
        print(f"2. the desktop's link: held for the peers' views: {link_held}")
        # The peers sweep every 10 s and the desktop confirms in about one: at least one of
        # the two cases met views older than the failure, or this test proved nothing.
        assert held or link_held, "no down had to wait: the case this test is about did not arise"
        wait_for(lambda: notifications_of(desktop, "Your link to the Mac mini"), 20, message="told")
        after_up = desktop.log().split("event service_up")[-1]
        assert "notification (log only, critical): Mac mini" not in after_up  # never plain
    assert sandbox.outside_connections() == []


class FixedServer:
    """An HTTP server on a given host and port (the share-view port is fixed), answering
    each path of `routes` with 200 and its body; `close` stops it (a service going down)."""

    def __init__(self, host: str, port: int, routes: dict[str, bytes]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.start()
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
