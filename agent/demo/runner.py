"""`tailnet-agent demo`: the simulated network, the walk and the real agent, put together.

The agent is the one `tailnet-agent` and `run --headless` start (agent.app): the same
monitor, tray or log, notifier and history. It is handed a topology file the demo writes,
Tailscale's view from the simulated network, and a folder of its own: `demo/` in the
agent's state folder (`demo_folder`) holds that topology, the history (begun afresh on each
run, so a walk never inherits the last one's problems), the log and the locks. So the demo
runs beside a real agent and neither disturbs the other; a second demo is refused while
one runs (walk.lock, held for the whole run: the history reset and the stand-ins are this
run's own).

Headless (--headless, or where no tray can run: a server install without the desktop
libraries, no display) the log on the console is the show: each step and each notification
as it happens, and the demo ends with the walk. The tray stays after the walk until Quit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from agent.app import AgentOptions, Surroundings, run_headless, run_tray, tray_unavailable
from agent.demo.network import DemoError, DemoNetwork
from agent.demo.walk import Walk
from agent.edges import paths
from agent.edges.single_instance import AlreadyRunning, InstanceLock
from agent.edges.topology_source import load_topology

__all__ = ["demo_files", "demo_folder", "run_demo"]

log = logging.getLogger(__name__)

_HISTORY_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def demo_folder() -> Path:
    """Where everything the demo writes lives: `demo/` in the agent's state folder."""
    return paths.state_dir() / "demo"


def demo_files() -> paths.AgentFiles:
    """The demo agent's lock, history and log, all in the demo's folder."""
    return paths.AgentFiles.under(demo_folder())


def _start_afresh(history: Path) -> None:
    for suffix in _HISTORY_SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            history.with_name(history.name + suffix).unlink()


def _describe(network: DemoNetwork) -> str:
    return ", ".join(
        f"{node}/{service} {address}" for (node, service), address in network.addresses().items()
    )


def run_demo(*, headless: bool, speed: float, env: Mapping[str, str] = os.environ) -> int:
    """The demo until its walk ends (headless) or Quit; returns the exit code."""
    files = demo_files()
    guard = InstanceLock(demo_folder() / "walk.lock")
    try:
        guard.acquire()
    except AlreadyRunning:
        raise DemoError("a demo is already running here: stop it first") from None
    try:
        if not headless:
            why = tray_unavailable()
            if why is not None:
                log.warning("no tray here, so the demo runs headless, in this terminal (%s)", why)
                headless = True
        _start_afresh(files.history)
        bundled = load_topology(str(paths.bundled_topology_path()), {})
        network = DemoNetwork.start(bundled)
        try:
            log.info("demo: the Sparklio network on loopback: %s", _describe(network))
            done = threading.Event()
            topology = demo_folder() / "topology.toml"
            walk = Walk(network, topology, speed=speed, finished=done.set if headless else None)
            walk.prepare()
            options = AgentOptions(topology=str(topology))
            around = Surroundings(
                files=files,
                read_tailnet=network.read_tailnet,
                watch=walk.watch,
                stop=done if headless else None,
                no_autostart="not for the demo",
            )
            walk.start()
            try:
                if headless:
                    return run_headless(options, env, around)
                return run_tray(options, env, around)
            finally:
                walk.stop()
        finally:
            network.close()
    finally:
        guard.release()
