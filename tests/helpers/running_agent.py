"""The real agent, `tailnet-agent run --headless`, as a process a test watches through its log.

`running_agent(sandbox, topology, ...)` starts the installed agent in the sandbox (inside
its isolated network when it has one) with no desktop session — no display, no session
bus — so its notifications are log lines, what a server's user reads. Its console log
(INFO and up for the headless monitor) goes to a file; the context yields a `RunningAgent`:
what it has said (`said`, `lines`, from a `mark` on), a wait for a line or a count of them
that, on timeout or exit, fails with what did come, and its memory. On exit it is stopped
with SIGTERM and must exit 0. `prefix` runs it under another program (tests/helpers/
namespaces, for a namespace of its own).

`loopback_network(sandbox, tmp_path)` is the world a fault test breaks: a two-node topology
over loopback — this machine ("desktop", 127.0.0.1, its Ollama) and the Mac mini (127.0.0.3,
its critical FastAPI), each a real HTTP server — with the stand-in `tailscale` on PATH
printing a live copy of a recorded status document and reading its fault mode from a file.
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
from typing import TypeVar

from tests.conftest import TAILSCALE_FIXTURES, AgentSandbox, installed_agent
from tests.helpers.servers import free_port, http_server_process

__all__ = [
    "DESKTOP",
    "FASTAPI_PROBE",
    "HANG_GUARD_S",
    "MACMINI",
    "LoopbackNetwork",
    "RunningAgent",
    "fastapi_topology",
    "loopback_network",
    "running_agent",
    "topology_text",
]

T = TypeVar("T")

HANG_GUARD_S = 60.0  # generous: a shared 2-core machine; every wait ends when its line comes
DESKTOP, MACMINI = "127.0.0.1", "127.0.0.3"  # the two nodes' IPs in loopback_all_direct.json
FASTAPI_PROBE = "probe macmini/FastAPI http"  # how `-v` logs each probe of fastapi_topology's
NO_DESKTOP = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")


class RunningAgent:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, start: int) -> None:
        self.process = process
        self.log = log
        self._start = start  # the log may hold an earlier run's lines (a restart): not ours

    def said(self, since: int = 0) -> str:
        """What it has said so far (from the mark `since` on)."""
        with self.log.open("rb") as f:
            f.seek(self._start)
            text = f.read().decode("utf-8", errors="replace")
        return text[since:]

    def mark(self) -> int:
        """Where its log ends now: `lines(..., since=mark)` reads only what follows."""
        return len(self.said())

    def lines(self, *words: str, since: int = 0) -> list[str]:
        """Its lines (from the mark `since` on) that contain every one of `words`."""
        return [line for line in self.said(since).splitlines() if all(w in line for w in words)]

    def wait_line(
        self, *words: str, count: int = 1, since: int = 0, timeout: float = HANG_GUARD_S
    ) -> str:
        """Wait until `count` lines from the mark `since` on contain all `words`; the last."""

        def found() -> str | None:
            hits = self.lines(*words, since=since)
            return hits[count - 1] if len(hits) >= count else None

        line = self.wait(found, f"no line with {words!r} (x{count}) after {since}", timeout)
        assert line is not None
        return line

    def wait(self, predicate: Callable[[], T], what: str, timeout: float = HANG_GUARD_S) -> T:
        """Wait until `predicate` is truthy (a hang guard, not a timing) and return it; on
        timeout, or when the agent exits meanwhile, fail with what the agent said."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            code = self.process.poll()
            if code is not None or time.monotonic() > deadline:
                state = f"the agent exited ({code})" if code is not None else "timed out"
                raise AssertionError(f"{what} ({state}); it said:\n{self.said()[-6000:]}")
            time.sleep(0.05)

    def rss_kib(self, pid: int | None = None) -> int:
        """The agent's resident memory (VmRSS, KiB): of `pid` when it runs under a prefix."""
        status = Path(f"/proc/{pid or self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1])


@contextlib.contextmanager
def running_agent(
    sandbox: AgentSandbox,
    topology: Path | str | None,  # a file, a URL, or None: the agent finds its own
    *args: str,
    node: str | None = "desktop",  # None: the agent tells which node it is from Tailscale
    prefix: Sequence[str] = (),
) -> Iterator[RunningAgent]:
    """`tailnet-agent run --headless [--topology T] [--node N] ARGS`; see the module."""
    log = sandbox.root / "agent-stderr.log"  # appended to: a restart's mark stays valid
    argv = [*prefix, installed_agent(), "run", "--headless"]
    if topology is not None:
        argv += ["--topology", str(topology)]
    if node is not None:
        argv += ["--node", node]
    env = {k: v for k, v in sandbox.env.items() if k not in NO_DESKTOP}
    with log.open("ab") as out:
        start = out.tell()
        process = subprocess.Popen(
            sandbox.command([*argv, *args]),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    agent = RunningAgent(process, log, start)
    try:
        yield agent
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            said = agent.said()[-4000:]
            raise AssertionError(f"the agent did not stop on SIGTERM:\n{said}") from None
    assert code == 0, f"the agent exited {code}:\n{agent.said()[-4000:]}"


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


def fastapi_topology(path: Path, port: int) -> Path:
    """Write a topology whose one service is the Mac mini's critical FastAPI at `port` (its
    /health must say "ok"); confirmed after two failed readings."""
    path.write_text(
        f"""
version = 1
name = "faults"

[defaults]
interval = "1s"
timeout = "1s"
failure_threshold = 2

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "{DESKTOP}"

[[nodes]]
id = "macmini"
name = "Mac mini"
hostname = "woosuns-mac-mini"
ip = "{MACMINI}"
always_on = true

  [[nodes.services]]
  name = "FastAPI"
  port = {port}
  check = "http"
  path = "/health"
  expect_body = "ok"
  impact = "critical"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class LoopbackNetwork:
    topology: Path  # the topology file the agent is given (--topology)
    status: Path  # what the stand-in `tailscale status --json` prints, read on every call
    fault: Path  # FAKE_TAILSCALE_FAULT_FILE: its first word is the CLI's fault mode
    calls: Path  # FAKE_TAILSCALE_LOG: the stand-in's argv, a line per call
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
        return self.calls.read_text().count('["status", "--json"]') if self.calls.exists() else 0

    def wait_status_calls(self, agent: RunningAgent, more: int) -> None:
        """Let the agent run `tailscale status` `more` more times (sweeps during a fault)."""
        target = self.status_calls() + more
        agent.wait(lambda: self.status_calls() >= target, f"fewer than {more} more sweeps")


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
            calls=tmp_path / "fake-tailscale.log",
            text=topology_text(ollama_port, fastapi_port),
            fastapi=servers[1],
        )
        net.topology.write_text(net.text, encoding="utf-8")
        net.set_status("loopback_all_direct.json")
        sandbox.use_fake_tailscale(net.status)
        sandbox.env["FAKE_TAILSCALE_LOG"] = str(net.calls)
        sandbox.env["FAKE_TAILSCALE_FAULT_FILE"] = str(net.fault)
        sandbox.env["FAKE_TAILSCALE_PIDS"] = str(tmp_path / "tailscale-pids")
        yield net
    finally:
        for server in servers:
            server.kill()
            server.wait(5)
