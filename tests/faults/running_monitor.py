"""An in-process Monitor over real edges, for faults a separate agent process cannot reach.

The notifier and the clocks are the monitor's parameters: a test hands it a notifier that
raises or hangs, or a wall clock it moves, while everything else is real — the stand-in
`tailscale` CLI (a process per sweep), the real probes, and the backend, a `python -m
http.server` process on 127.0.0.1 that the test kills and restarts at the same port.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.edges.topology_source import load_topology
from agent.monitor import Monitor
from agent.sweep import sweep
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES
from tests.helpers.servers import free_port, http_server_process
from tests.test_monitor import Recorder

__all__ = ["Backend", "monitor_over_loopback"]

TOPOLOGY = """
version = 1
name = "faults"

[defaults]
interval = "1s"
timeout = "1s"

[[nodes]]
id = "desktop"
hostname = "sweetlife"
ip = "127.0.0.1"

  [[nodes.services]]
  name = "Ollama"
  port = {port}
  check = "http"
  impact = "critical"
"""


@dataclass
class Backend:
    """This machine's Ollama stand-in: a process of its own, stopped and started again."""

    port: int
    root: Path
    proc: Any = None

    def start(self) -> None:
        self.proc = http_server_process("127.0.0.1", self.port, self.root)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@contextlib.contextmanager
def monitor_over_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **monitor_args: Any
) -> Iterator[tuple[Monitor, Recorder, Backend]]:
    """A started Monitor sweeping the backend for real; `monitor_args` go to Monitor (a
    `notifier`, the clocks); without a notifier the Recorder is it."""
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(TAILSCALE_FIXTURES / "loopback_all_direct.json"))
    for name in ("FAKE_TAILSCALE_MODE", "FAKE_TAILSCALE_FAULT_FILE"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "www"
    root.mkdir()
    backend = Backend(free_port(), root)
    topo = tmp_path / "topology.toml"
    topo.write_text(TOPOLOGY.format(port=backend.port), encoding="utf-8")
    rec = Recorder()
    monitor_args.setdefault("notifier", rec)
    clock = monitor_args.get("wall")
    sweep_args: dict[str, Any] = {"clock": clock} if clock is not None else {}
    monitor = Monitor(
        load_topology=lambda: load_topology(str(topo), {}),
        locate_topology=lambda: topo,
        sweep_once=functools.partial(
            sweep, tailscale_cli=str(FAKE_TAILSCALE_DIR / "tailscale"), **sweep_args
        ),
        on_update=rec.on_update,
        **monitor_args,
    )
    backend.start()
    try:
        monitor.start()
        yield monitor, rec, backend
    finally:
        monitor.stop()
        backend.stop()
    assert not monitor.alive
