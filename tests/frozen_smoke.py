"""Smoke test of a frozen build: the PyInstaller executables themselves, not the source.

    python tests/frozen_smoke.py dist/tailnet-agent [--desktop]
    python tests/frozen_smoke.py dist/tailnet-agent.app/Contents/MacOS

DIR holds the two executables of build.spec: tailnet-agent (the windowed tray) and
tailnet-agent-cli (console). Run by `.ci/run` on Linux and by the release workflow on
Windows and macOS, each step printing PASS or FAIL (exit 1 on the first failure):

  version      both print `tailnet-agent <version>` (the windowed Windows exe has no stdout)
  check-green  `check --json` over a loopback network (an HTTP and a TCP service of this
               machine; the stand-in `tailscale` prints recorded-format JSON): exit 0
  check-red    the HTTP service stops: exit 2, "refused"
  check-down   Tailscale not running here: exit 2, no probe sent
  validate     `topology validate` of a bad file: exit 3, naming the line and the key
  commands     `topology show` and `history --json`
  headless     `run --headless` reaches a green sweep and stops cleanly on SIGTERM
  demo         `demo --headless --speed 50`: the whole walk, on loopback, exit 0
  autostart    enable / status --json / disable in a private HOME, registering the tray
               executable of DIR (Linux and macOS; Windows writes the real HKCU Run value)
  tray         --desktop (Linux): the frozen tray docks green under Xvfb + trayer, turns red
               when its backend stops and a notification reaches the capture bus

Every address is loopback: the network's real 100.x machines are never probed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent import (  # noqa: E402
    CLI_EXECUTABLE,
    GUI_EXECUTABLE,
    __version__,
)

FAKE_TAILSCALE = REPO / "tests" / "helpers" / "fake_tailscale" / "tailscale"
STATUS_JSON = REPO / "tests" / "fixtures" / "tailscale" / "loopback_all_direct.json"
SELF_IP = "127.0.0.1"  # the fixture's Self; its peers (127.0.0.2/.3) get no probes
TIMEOUT_S = 60.0


class SmokeFailure(Exception):
    pass


# ==== a loopback network =======================================================


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def http_service() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer((SELF_IP, 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def tcp_service() -> Iterator[int]:
    listener = socket.create_server((SELF_IP, 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def topology_text(http_port: int, tcp_port: int) -> str:
    return f"""version = 1
name = "Smoke (loopback)"

[defaults]
interval = "2s"
timeout = "1s"
failure_threshold = 1

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "{SELF_IP}"

  [[nodes.services]]
  name = "FastAPI"
  port = {http_port}
  check = "http"
  path = "/health"
  expect_body = "ok"
  impact = "critical"

  [[nodes.services]]
  name = "Redis"
  port = {tcp_port}
  check = "tcp"

[[nodes]]
id = "laptop"
name = "Laptop"
hostname = "desktop-ecmkau8"
ip = "127.0.0.2"
always_on = false

[[nodes]]
id = "macmini"
name = "Mac mini"
hostname = "woosuns-mac-mini"
ip = "127.0.0.3"
"""


# ==== running the frozen executables ============================================


class Smoke:
    def __init__(self, folder: Path, root: Path) -> None:
        suffix = ".exe" if sys.platform == "win32" else ""
        self.folder = folder
        self.gui = folder / f"{GUI_EXECUTABLE}{suffix}"
        self.cli = folder / f"{CLI_EXECUTABLE}{suffix}"
        for exe in (self.gui, self.cli):
            if not exe.is_file():
                raise SmokeFailure(f"{exe} is missing: build with `pyinstaller build.spec`")
        self.root = root
        self.tailscale = self._stand_in_tailscale()
        self.env = self._private_env()

    def _stand_in_tailscale(self) -> Path:
        """A `tailscale` that runs the stand-in script with this Python (no shell strings)."""
        if sys.platform == "win32":
            wrapper = self.root / "tailscale.cmd"
            wrapper.write_text(f'@"{sys.executable}" "{FAKE_TAILSCALE}" %*\r\n', encoding="utf-8")
        else:
            wrapper = self.root / "tailscale"
            wrapper.write_text(
                f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_TAILSCALE}" "$@"\n', encoding="utf-8"
            )
            wrapper.chmod(0o755)
        return wrapper

    def _private_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAILNET_AGENT_", "FAKE_TAILSCALE_", "XDG_", "PYSTRAY_"))
        }
        home = self.root / "home"
        home.mkdir()
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_STATE_HOME=str(self.root / "state"),
            XDG_DATA_HOME=str(self.root / "data"),
            XDG_CACHE_HOME=str(self.root / "cache"),
            FAKE_TAILSCALE_JSON=str(STATUS_JSON),
            FAKE_TAILSCALE_LOG=str(self.root / "fake-tailscale.log"),
            NO_COLOR="1",
        )
        return env

    def run(
        self, exe: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(exe), *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def check_json(
        self, topology: Path, expect_exit: int, **env: str
    ) -> tuple[dict[str, object], subprocess.CompletedProcess[str]]:
        done = self.run(
            self.cli,
            "check",
            "--json",
            "--topology",
            str(topology),
            "--tailscale",
            str(self.tailscale),
            env={**self.env, **env},
        )
        expect(done.returncode == expect_exit, f"exit {done.returncode}, not {expect_exit}", done)
        try:
            return json.loads(done.stdout), done
        except json.JSONDecodeError as error:
            raise SmokeFailure(f"check --json printed no JSON ({error})\n{done.stdout}") from None


def expect(ok: bool, why: str, done: subprocess.CompletedProcess[str] | None = None) -> None:
    if ok:
        return
    if done is not None:
        why += f"\n  argv: {done.args}\n  stdout: {done.stdout[-2000:]}"
        why += f"\n  stderr: {done.stderr[-2000:]}"
    raise SmokeFailure(why)


def _services(report: dict[str, object]) -> dict[str, dict[str, object]]:
    nodes = report["nodes"]
    assert isinstance(nodes, list)
    return {s["name"]: s for n in nodes for s in n["services"]}


# ==== the steps ================================================================


def step_version(smoke: Smoke) -> str:
    want = f"tailnet-agent {__version__}"
    exes = [smoke.cli] if sys.platform == "win32" else [smoke.cli, smoke.gui]
    for exe in exes:
        done = smoke.run(exe, "--version")
        expect(done.returncode == 0 and done.stdout.strip() == want, f"{exe.name}: {want}?", done)
    return want


def step_checks(smoke: Smoke) -> str:
    with http_service() as web, tcp_service() as tcp_port:
        topology = smoke.root / "topology.toml"
        topology.write_text(topology_text(web.server_address[1], tcp_port), encoding="utf-8")
        report, done = smoke.check_json(topology, 0)
        expect(report["overall"] == "green", f"overall {report['overall']}, not green", done)
        services = _services(report)
        expect(all(s["state"] == "up" for s in services.values()), "a service is not up", done)
    # Both services are gone now: the critical FastAPI makes it red.
    report, done = smoke.check_json(topology, 2)
    expect(_services(report)["FastAPI"]["reason"] == "refused", "FastAPI not refused", done)
    report, done = smoke.check_json(topology, 2, FAKE_TAILSCALE_MODE="fail")
    tailscale = report["tailscale"]
    assert isinstance(tailscale, dict)
    expect(tailscale["running"] is False, "Tailscale down here was not noticed", done)
    expect(
        all(s["state"] == "skipped" for s in _services(report).values()),
        "a service was probed while Tailscale is down",
        done,
    )
    return "green: exit 0; FastAPI stopped: exit 2 (refused); Tailscale down: exit 2, no probes"


def step_validate(smoke: Smoke) -> str:
    bad = smoke.root / "bad.toml"
    bad.write_text(
        'version = 1\n[[nodes]]\nid = "a"\nhostname = "a"\nip = "999.1.1.1"\n', encoding="utf-8"
    )
    done = smoke.run(smoke.cli, "topology", "validate", str(bad))
    expect(done.returncode == 3, f"exit {done.returncode}, not 3", done)
    expect(f"{bad}:5" in done.stderr and "ip" in done.stderr, "no file:line and key", done)
    return "exit 3, " + done.stderr.strip().splitlines()[-1][:80]


def step_commands(smoke: Smoke) -> str:
    shown = smoke.run(smoke.cli, "topology", "show")
    expect(shown.returncode == 0 and "bundled default" in shown.stdout, "topology show", shown)
    history = smoke.run(smoke.cli, "history", "--json", "--since", "7d")
    expect(history.returncode == 0, "history --json failed", history)
    json.loads(history.stdout)
    return "topology show (the bundled default), history --json"


def step_headless(smoke: Smoke) -> str:
    """`run --headless` finishes a sweep green and stops cleanly on SIGTERM (POSIX)."""
    with http_service() as web, tcp_service() as tcp_port:
        topology = smoke.root / "headless-topology.toml"
        topology.write_text(topology_text(web.server_address[1], tcp_port), encoding="utf-8")
        argv = [str(smoke.cli), "run", "--headless", "--topology", str(topology)]
        argv += ["--tailscale", str(smoke.tailscale)]
        began = time.monotonic()
        proc = subprocess.Popen(
            argv,
            env=smoke.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        lines: list[str] = []
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line.rstrip())
                if "state green" in line or time.monotonic() - began > TIMEOUT_S:
                    break
            expect(any("state green" in line for line in lines), "\n".join(lines[-20:]))
            took = time.monotonic() - began
        finally:
            proc.terminate()
            code = proc.wait(TIMEOUT_S)
    if sys.platform != "win32":  # TerminateProcess on Windows is no signal to handle
        expect(code == 0, f"run --headless exited {code} on SIGTERM")
    return f"green after {took:.1f} s, stopped with exit {code}"


def step_demo(smoke: Smoke) -> str:
    """`demo --headless` at a high speed: the whole walk in the frozen app (its simulated
    Tailscale is served in-process: no interpreter needed), every notification, exit 0."""
    done = smoke.run(smoke.cli, "demo", "--headless", "--speed", "50")
    expect(done.returncode == 0, f"demo exited {done.returncode}", done)
    lines = done.stderr.splitlines()
    steps = [line for line in lines if "demo step " in line]
    notes = [line for line in lines if "notification" in line and "Backend Server" in line]
    expect(len(steps) == 7 and "the walk is over" in done.stderr, "the walk did not finish", done)
    expect(any("FastAPI down" in line for line in notes), "no FastAPI down notification", done)
    return f"{len(steps)} steps, {len(notes)} Mac mini notifications"


def step_autostart(smoke: Smoke) -> str:
    topology = smoke.root / "topology.toml"
    enable = smoke.run(smoke.cli, "autostart", "enable", "--topology", str(topology))
    expect(enable.returncode == 0, "autostart enable failed", enable)
    try:
        status = smoke.run(smoke.cli, "autostart", "status", "--json")
        expect(status.returncode == 0, "status after enable is not 0", status)
        state = json.loads(status.stdout)
        command = state["command"]
        expect(state["enabled"] is True, "not enabled", status)
        expect(Path(command[0]) == smoke.gui.resolve(), f"registers {command[0]}", status)
        expect(str(topology.resolve()) in command, "the --topology option is not kept", status)
        where = state["location"]
    finally:
        disable = smoke.run(smoke.cli, "autostart", "disable")
    expect(disable.returncode == 0, "autostart disable failed", disable)
    after = smoke.run(smoke.cli, "autostart", "status", "--json")
    expect(json.loads(after.stdout)["enabled"] is False, "still enabled after disable", after)
    return f"registered {Path(command[0]).name} at {where}, then removed"


def step_modes(smoke: Smoke) -> str:
    """No file of the bundle is writable by anyone but its owner (what runs at login)."""
    if sys.platform == "win32":  # ACLs, set by the installer under Program Files
        return "not on Windows (the installer's ACLs)"
    paths = [smoke.folder, *smoke.folder.rglob("*")]
    writable = [p for p in paths if not p.is_symlink() and p.stat().st_mode & 0o022]
    expect(not writable, f"group- or other-writable: {[str(p) for p in writable[:10]]}")
    return f"{len(paths)} files and folders, none writable by group or others"


def step_tray(smoke: Smoke) -> str:
    from agent.core.model import Health
    from tests.helpers.desktop import find_named_colour, start_desktop, wait_for

    def icon(health: Health) -> bool:
        count, _ = find_named_colour(desk.screenshot(), health.value, strip)
        return count >= 20

    with start_desktop() as desk, http_service() as web, tcp_service() as tcp_port:
        strip = desk.start_tray_host()
        notifications = desk.start_notification_server()
        topology = smoke.root / "tray-topology.toml"
        topology.write_text(topology_text(web.server_address[1], tcp_port), encoding="utf-8")
        env = {k: v for k, v in smoke.env.items() if k not in ("HOME", "XDG_CONFIG_HOME")}
        env.update({k: v for k, v in desk.env.items() if k != "PYTHONPATH"})
        env.update(PYSTRAY_BACKEND="gtk", FAKE_TAILSCALE_JSON=str(STATUS_JSON))
        started = time.monotonic()
        tray = subprocess.Popen(
            [str(smoke.gui), "--topology", str(topology), "--tailscale", str(smoke.tailscale)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(smoke.root / "tray.log").open("wb"),
            start_new_session=True,
        )
        try:
            wait_for(lambda: icon(Health.GREEN), 30, message="the frozen tray never docked green")
            docked = time.monotonic() - started
            web.shutdown()
            web.server_close()
            wait_for(lambda: icon(Health.RED), 30, message="the icon did not turn red")
            notice = notifications.wait_for(lambda r: "FastAPI" in r["summary"], 30)
        except (TimeoutError, Exception) as error:
            log = (smoke.root / "tray.log").read_text(encoding="utf-8", errors="replace")
            raise SmokeFailure(f"{error}\n  tray log: {log[-3000:]}") from None
        finally:
            tray.terminate()
            try:
                tray.wait(10)
            except subprocess.TimeoutExpired:
                tray.kill()
                tray.wait(10)
    bundled = smoke.gui.parent / "_internal" / "data" / "icons" / "tailnet-agent.png"
    expect(notice["app_icon"] == bundled.resolve().as_uri(), f"icon {notice['app_icon']!r}")
    return f"docked green in {docked:.1f} s; red; notified {notice['summary']!r} with its icon"


STEPS: list[tuple[str, Callable[[Smoke], str]]] = [
    ("version", step_version),
    ("modes", step_modes),
    ("check", step_checks),
    ("validate", step_validate),
    ("commands", step_commands),
    ("headless", step_headless),
    ("demo", step_demo),
    ("autostart", step_autostart),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder holding both executables")
    parser.add_argument("--desktop", action="store_true", help="also the tray (Linux, Xvfb)")
    args = parser.parse_args(argv)
    steps = STEPS + ([("tray", step_tray)] if args.desktop else [])
    root = Path(tempfile.mkdtemp(prefix="tailnet-smoke-"))
    try:
        smoke = Smoke(args.folder.resolve(), root)
        for name, step in steps:
            began = time.monotonic()
            try:
                detail = step(smoke)
            except (SmokeFailure, subprocess.TimeoutExpired, OSError) as failure:
                print(f"FAIL {name}: {failure}", flush=True)
                return 1
            print(f"PASS {name} ({time.monotonic() - began:.1f} s): {detail}", flush=True)
    except SmokeFailure as failure:
        print(f"FAIL setup: {failure}", flush=True)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"frozen smoke: {len(steps)} steps passed ({args.folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
