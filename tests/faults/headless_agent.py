"""The real agent, `tailnet-agent run --headless`, running while a test breaks its world.

`HeadlessAgent` starts the installed agent in an AgentSandbox with no session bus (so its
notifications are log lines: what a server's user reads), collects its stderr, and waits
for lines after a mark, so each step of a fault asserts on what the agent said since it
began. `loopback_network` gives a two-node topology over loopback: this machine ("desktop",
127.0.0.1, its Ollama) and the Mac mini (127.0.0.3, its critical FastAPI), each a real HTTP
server, and a live copy of the recorded status document the stand-in `tailscale` prints.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import TAILSCALE_FIXTURES, AgentSandbox, installed_agent
from tests.helpers.servers import free_port, http_server_process

__all__ = [
    "HeadlessAgent",
    "LoopbackNetwork",
    "headless_agent",
    "loopback_network",
    "topology_text",
]

DESKTOP, MACMINI = "127.0.0.1", "127.0.0.3"


def topology_text(ollama_port: int, fastapi_port: int, *, name: str = "faults") -> str:
    return f"""
version = 1
name = "{name}"

[defaults]
interval = "1s"
timeout = "1s"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "{DESKTOP}"

  [[nodes.services]]
  name = "Ollama"
  port = {ollama_port}
  check = "http"

[[nodes]]
id = "macmini"
name = "Mac mini"
hostname = "woosuns-mac-mini"
ip = "{MACMINI}"

  [[nodes.services]]
  name = "FastAPI"
  port = {fastapi_port}
  check = "http"
  impact = "critical"
"""


@dataclass
class LoopbackNetwork:
    topology: Path  # the topology file the agent is given (--topology)
    status: Path  # what the stand-in `tailscale status --json` prints, read on every call
    fault: Path  # FAKE_TAILSCALE_FAULT_FILE: its first word is the CLI's fault mode
    text: str  # the topology's good text
    fastapi: subprocess.Popen[bytes]  # the Mac mini's backend: a test may kill it

    def set_status(self, fixture: str) -> None:
        """Make the next `tailscale status --json` print a recorded document."""
        shutil.copyfile(TAILSCALE_FIXTURES / fixture, self.status)

    def set_fault(self, mode: str) -> None:
        """ok | fail | hang | garbage | half (tests/helpers/fake_tailscale)."""
        self.fault.write_text(mode + "\n", encoding="utf-8")

    def status_calls(self) -> int:
        """How many times the agent ran `tailscale status --json` so far."""
        log = self.status.with_name("fake-tailscale.log")
        return log.read_text().count('["status", "--json"]') if log.exists() else 0


@contextlib.contextmanager
def loopback_network(sandbox: AgentSandbox, tmp_path: Path) -> Iterator[LoopbackNetwork]:
    """The two services as processes of their own, the stand-in tailscale on PATH."""
    root = tmp_path / "www"
    root.mkdir()
    ollama_port, fastapi_port = free_port(DESKTOP), free_port(MACMINI)
    servers = [
        http_server_process(DESKTOP, ollama_port, root),
        http_server_process(MACMINI, fastapi_port, root),
    ]
    try:
        net = LoopbackNetwork(
            topology=tmp_path / "topology.toml",
            status=tmp_path / "status.json",
            fault=tmp_path / "tailscale-fault",
            text=topology_text(ollama_port, fastapi_port),
            fastapi=servers[1],
        )
        net.topology.write_text(net.text, encoding="utf-8")
        net.set_status("loopback_all_direct.json")
        sandbox.use_fake_tailscale(net.status)
        sandbox.env["FAKE_TAILSCALE_LOG"] = str(tmp_path / "fake-tailscale.log")
        sandbox.env["FAKE_TAILSCALE_FAULT_FILE"] = str(net.fault)
        sandbox.env["FAKE_TAILSCALE_PIDS"] = str(tmp_path / "tailscale-pids")
        yield net
    finally:
        for server in servers:
            server.kill()
            server.wait(5)


class HeadlessAgent:
    """`tailnet-agent run --headless ARGS` in `sandbox`; its stderr is what the user reads."""

    def __init__(self, sandbox: AgentSandbox, args: Sequence[str], log: Path) -> None:
        env = dict(sandbox.env)
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
            env.pop(name, None)  # no desktop: notifications go to the log
        self._log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [installed_agent(), "run", "--headless", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def text(self) -> str:
        return self._log.read_text(encoding="utf-8", errors="replace")

    def mark(self) -> int:
        """Where the log ends now: `wait_for(..., after=mark)` reads only what follows."""
        return len(self.text())

    def lines(self, after: int = 0) -> list[str]:
        return self.text()[after:].splitlines()

    def wait_for(
        self, wanted: str | Callable[[str], bool], *, after: int = 0, timeout: float = 30
    ) -> str:
        """The first line after `after` that contains `wanted` (or satisfies it)."""
        match = wanted if callable(wanted) else (lambda line: wanted in line)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines(after):
                if match(line):
                    return line
            if self.proc.poll() is not None:
                raise AssertionError(f"the agent exited ({self.proc.returncode}):\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {wanted!r} after {after}:\n{self.text()}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise


@contextlib.contextmanager
def headless_agent(
    sandbox: AgentSandbox, args: Sequence[str], log: Path
) -> Iterator[HeadlessAgent]:
    agent = HeadlessAgent(sandbox, args, log)
    try:
        yield agent
    finally:
        code = agent.stop()
        assert code == 0, agent.text()
