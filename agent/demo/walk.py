"""The demo's scripted walk: what happens to the network, step by step, and what the agent
should make of each step.

The steps are data (STEPS): the change, the event the agent should announce and the
colour it should show, and how long the step lasts at speed 1 (about two minutes in all).
`Walk` runs them in a thread of its own. For each step it logs the step, makes the change,
renames the topology (the tray's tooltip and menu title carry the topology's name, so they
say which step runs; written after the change, the file also follows a stand-in that had
to move to another port), then waits until the agent has shown it — the step's event among
the monitor's events, then the step's colour on the icon (core.menu.status_health: the
confirmed colour, not the latest reading's) — and until the step's time, divided by the
speed, has passed. The agent's own confirmation (consecutive readings, a re-check after
about a second) takes what it takes at any speed: the walk waits for it rather than
outrunning it, so every speed shows the same sequence. An expectation not met within
GIVE_UP_S is logged as a warning and the walk goes on: the demo never hangs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.core.events import Event, EventKind
from agent.core.menu import MonitorStatus, status_health
from agent.core.model import Health
from agent.demo.network import DERP_REGION, DemoNetwork

__all__ = [
    "BASE_INTERVAL_S",
    "FINISHED_NAME",
    "GIVE_UP_S",
    "MIN_INTERVAL_S",
    "STEPS",
    "Expected",
    "Step",
    "Walk",
    "sweep_interval",
    "topology_name",
]

log = logging.getLogger(__name__)

BASE_INTERVAL_S = 2.0  # the demo topology's sweep interval at speed 1 ...
MIN_INTERVAL_S = 0.25  # ... divided by the speed, down to this (the CPU is shared)
GIVE_UP_S = 60.0  # an expected change not shown by then is logged, and the walk goes on
_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class Expected:
    """An event the agent should announce: its kind, node and service (None: a node's)."""

    kind: EventKind
    node_id: str
    service: str | None = None

    def matches(self, event: Event) -> bool:
        return (event.kind, event.node_id, event.service) == (
            self.kind,
            self.node_id,
            self.service,
        )


@dataclass(frozen=True, slots=True)
class Step:
    says: str  # the log's line: what happens
    label: str  # the topology name's few words
    change: Callable[[DemoNetwork], None]
    health: Health  # the colour the agent should show
    event: Expected | None  # what it should announce (None: nothing)
    seconds: float  # how long the step lasts at speed 1


STEPS: tuple[Step, ...] = (
    Step(
        "all green: every machine online, every link direct, every service up",
        "all green",
        lambda network: None,
        Health.GREEN,
        None,
        15,
    ),
    Step(
        f"the desktop's direct path is lost: its link falls back to DERP '{DERP_REGION}'",
        "desktop relayed",
        lambda network: network.relay("desktop"),
        Health.AMBER,
        Expected(EventKind.LINK_RELAYED, "desktop"),
        20,
    ),
    Step(
        "the desktop's link is direct again",
        "direct again",
        lambda network: network.direct("desktop"),
        Health.GREEN,
        Expected(EventKind.LINK_DIRECT, "desktop"),
        15,
    ),
    Step(
        "FastAPI on the Mac mini stops (the backend is offline)",
        "FastAPI stops",
        lambda network: network.stop_service("macmini", "FastAPI"),
        Health.RED,
        Expected(EventKind.SERVICE_DOWN, "macmini", "FastAPI"),
        20,
    ),
    Step(
        "FastAPI is back",
        "FastAPI returns",
        lambda network: network.start_service("macmini", "FastAPI"),
        Health.GREEN,
        Expected(EventKind.SERVICE_UP, "macmini", "FastAPI"),
        15,
    ),
    Step(
        "the Mac mini goes offline in Tailscale (its services stop answering)",
        "Mac mini offline",
        lambda network: network.go_offline("macmini"),
        Health.RED,
        Expected(EventKind.PEER_OFFLINE, "macmini"),
        20,
    ),
    Step(
        "the Mac mini is back online",
        "Mac mini returns",
        lambda network: network.come_online("macmini"),
        Health.GREEN,
        Expected(EventKind.PEER_ONLINE, "macmini"),
        15,
    ),
)


def sweep_interval(speed: float) -> float:
    return max(BASE_INTERVAL_S / speed, MIN_INTERVAL_S)


def topology_name(index: int, steps: int, label: str) -> str:
    """ "Sparklio demo 4/7: FastAPI stops" — what the tooltip and the menu title show."""
    return f"Sparklio demo {index}/{steps}: {label}"


FINISHED_NAME = "Sparklio demo: the walk is over"


class Walk:
    """Runs the steps against `network`, watching the agent's statuses (`watch`)."""

    def __init__(
        self,
        network: DemoNetwork,
        topology_path: Path,
        *,
        speed: float,
        finished: Callable[[], None] | None = None,
        steps: tuple[Step, ...] = STEPS,
    ) -> None:
        self._network = network
        self._path = topology_path
        self._speed = speed
        self._interval_s = sweep_interval(speed)
        self._finished = finished or (lambda: None)
        self._steps = steps
        self._statuses: queue.Queue[MonitorStatus] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-walk", daemon=True)

    def prepare(self) -> None:
        """Write the first step's topology: the agent starts on it."""
        self._write(topology_name(1, len(self._steps), self._steps[0].label))

    def watch(self, status: MonitorStatus) -> None:
        """Take one of the monitor's statuses (called in the monitor's thread)."""
        self._statuses.put(status)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(10)

    def _write(self, name: str) -> None:
        self._network.write_topology(self._path, name, self._interval_s)

    def _run(self) -> None:
        try:
            count = len(self._steps)
            for index, step in enumerate(self._steps, start=1):
                if self._stopping.is_set():
                    return
                self._drain()
                log.info("demo step %d/%d: %s", index, count, step.says)
                step.change(self._network)
                # After the change: a stand-in that had to move to another port is found.
                self._write(topology_name(index, count, step.label))
                self._await(index, step)
            if self._stopping.is_set():
                return
            self._write(FINISHED_NAME)
            log.info("demo: the walk is over — all %d steps shown", count)
            self._finished()
        except Exception:  # a bug here must not leave the demo running for ever
            log.exception("the demo's walk failed")
            self._finished()

    def _drain(self) -> None:
        """Forget the statuses from before this step's change."""
        while True:
            try:
                self._statuses.get_nowait()
            except queue.Empty:
                return

    def _await(self, index: int, step: Step) -> None:
        """Until the agent announced the step's event and showed its colour, and the step's
        time is over (or GIVE_UP_S passed: said, and the walk goes on)."""
        began = time.monotonic()
        ends = began + step.seconds / self._speed
        give_up = began + max(GIVE_UP_S, step.seconds / self._speed)
        announced = step.event is None
        shown = False
        while not self._stopping.is_set():
            now = time.monotonic()
            if announced and shown and now >= ends:
                return
            if now >= give_up:
                missing = []
                if not announced and step.event is not None:
                    missing.append(f"no {step.event.kind.value} event")
                if not shown:
                    missing.append(f"not {step.health.value}")
                if missing:
                    log.warning("demo step %d: %s yet; going on", index, " and ".join(missing))
                return
            try:
                status = self._statuses.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if not announced and step.event is not None:
                announced = any(step.event.matches(event) for event in status.events)
            if announced and status.snapshot is not None:
                shown = shown or status_health(status) is step.health  # the icon's colour
