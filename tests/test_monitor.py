"""The monitor edge: its worker thread, topology watching, Check now, pause, grace, resilience.

Real parts: the stand-in `tailscale` executable (a process boundary), real HTTP
servers on loopback, real files. The notifier is a recorder: the backends are
tested on a real D-Bus elsewhere; here we test what the monitor asks them to show.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from agent.core.model import Health
from agent.history import History
from agent.monitor import Monitor, MonitorUpdate
from agent.topology_source import load_topology
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES
from tests.helpers.servers import http_server

FAKE_TAILSCALE = str(FAKE_TAILSCALE_DIR / "tailscale")


def topology_text(port: int, *, interval: str = "60s", name: str = "Ollama") -> str:
    return f"""
version = 1
name = "monitor test"

[defaults]
interval = "{interval}"
timeout = "1s"

[[nodes]]
id = "desktop"
hostname = "sweetlife"
ip = "127.0.0.1"

  [[nodes.services]]
  name = "{name}"
  port = {port}
  check = "http"
  impact = "critical"
"""


class Recorder:
    """Collects what the monitor publishes and what it asks the notifier to show."""

    name = "recorder"

    def __init__(self, fail: bool = False) -> None:
        self.updates: list[MonitorUpdate] = []
        self.shown: list[tuple[str, str, bool]] = []
        self.fail = fail
        self.lock = threading.RLock()

    def notify(
        self,
        title: str,
        message: str,
        *,
        critical: bool = False,
        key: str | None = None,
        replaces: Sequence[str] = (),
    ) -> bool:
        with self.lock:
            self.shown.append((title, message, critical))
        if self.fail:
            raise RuntimeError("the desktop said no")
        return True

    def on_update(self, update: MonitorUpdate) -> None:
        with self.lock:
            self.updates.append(update)

    def wait(self, pred: Callable[[MonitorUpdate], bool], timeout: float = 15.0) -> MonitorUpdate:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for update in reversed(self.updates):
                    if pred(update):
                        return update
            time.sleep(0.05)
        raise AssertionError(f"no matching update; last: {self.updates[-1:]}")

    def sweeps(self) -> int:
        with self.lock:
            return sum(1 for u in self.updates if u.snapshot is not None)


@pytest.fixture(autouse=True)
def fake_tailscale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(TAILSCALE_FIXTURES / "loopback_all_direct.json"))
    monkeypatch.delenv("FAKE_TAILSCALE_MODE", raising=False)


@pytest.fixture
def start_monitor(tmp_path: Path) -> Iterator[Callable[..., tuple[Monitor, Recorder]]]:
    monitors: list[Monitor] = []

    def start(
        topo: Path, *, recorder: Recorder | None = None, **kw: object
    ) -> tuple[Monitor, Recorder]:
        rec = recorder or Recorder()
        monitor = Monitor(
            load_topology=lambda: load_topology(str(topo), {}),
            topology_path=topo,
            tailscale_cli=FAKE_TAILSCALE,
            notifier=rec,
            on_update=rec.on_update,
            **kw,  # type: ignore[arg-type]
        )
        monitor.start()
        monitors.append(monitor)
        return monitor, rec

    yield start
    for monitor in monitors:
        monitor.stop()
        assert not monitor.alive


def test_sweeps_publish_and_stop_cleanly(start_monitor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port))
        monitor, rec = start_monitor(topo)
        update = rec.wait(lambda u: u.snapshot is not None)
        assert update.snapshot is not None and update.snapshot.overall is Health.GREEN
        assert update.snapshot.self_node_id == "desktop"
        monitor.stop()
        assert not monitor.alive
    assert rec.shown == []  # a healthy start is silent


def test_check_now_sweeps_at_once(start_monitor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1h"))
        monitor, rec = start_monitor(topo)
        rec.wait(lambda u: u.snapshot is not None)
        before = rec.sweeps()
        monitor.check_now()
        rec.wait(lambda u: u.snapshot is not None and rec.sweeps() > before, timeout=5)


def test_a_bad_edit_keeps_the_last_good_topology_and_a_fix_is_picked_up(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1h"))
        _, rec = start_monitor(topo)
        rec.wait(lambda u: u.snapshot is not None)

        topo.write_text(topology_text(port, interval="1h").replace('check = "http"', 'chek = "x"'))
        os.utime(topo, (time.time() + 5, time.time() + 5))  # a new mtime even on coarse clocks
        bad = rec.wait(lambda u: u.topology_error is not None)
        assert "chek" in (bad.topology_error or "")
        assert bad.snapshot is not None  # the last good topology is still swept
        assert bad.snapshot.topology.nodes[0].services[0].name == "Ollama"
        assert any(title == "Topology file refused" for title, _, _ in rec.shown)

        topo.write_text(topology_text(port, interval="1h", name="Renamed"))
        os.utime(topo, (time.time() + 10, time.time() + 10))
        good = rec.wait(
            lambda u: (
                u.topology_error is None
                and u.snapshot is not None
                and u.snapshot.topology.nodes[0].services[0].name == "Renamed"
            )
        )
        assert good.snapshot is not None
        assert any(title == "Topology file accepted" for title, _, _ in rec.shown)


def test_pause_and_resume_are_published(start_monitor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1h"))
        monitor, rec = start_monitor(topo)
        rec.wait(lambda u: u.snapshot is not None)
        until = time.time() + 3600
        monitor.pause_notifications(until)
        assert rec.wait(lambda u: u.paused_until is not None).paused_until == until
        monitor.resume_notifications()
        rec.wait(lambda u: u.paused_until is None and rec.updates[-1] is u)


def test_outage_is_notified_and_a_failing_notifier_does_not_stop_the_monitor(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1s"))
        monitor, rec = start_monitor(topo, recorder=Recorder(fail=True))
        rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
    # The server is gone: refused from now on.
    rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events), timeout=15)
    assert rec.shown[0][0] == "desktop: Ollama down" and rec.shown[0][2] is True
    sweeps = rec.sweeps()
    rec.wait(lambda u: rec.sweeps() > sweeps + 1, timeout=10)  # still sweeping
    assert monitor.alive


def test_a_clock_jump_starts_a_grace_period(start_monitor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    jump = [0.0]
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1s"))
        _, rec = start_monitor(topo, wall=lambda: time.time() + jump[0])
        rec.wait(lambda u: u.snapshot is not None)
        assert not rec.updates[-1].in_grace
        jump[0] = 3600.0  # the wall clock leaps an hour ahead of the monotonic one
        rec.wait(lambda u: u.in_grace, timeout=10)


def test_history_is_written_and_uptime_published(start_monitor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "history.sqlite3"
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1s"))
        monitor, rec = start_monitor(topo, open_history=lambda: History(db))
        rec.wait(lambda u: rec.sweeps() >= 2)
        update = rec.wait(lambda u: ("desktop", "Ollama") in u.uptime)
        assert update.uptime[("desktop", "Ollama")] == pytest.approx(1.0)
        monitor.stop()
    with History(db) as store:
        assert store.uptime(time.time() - 3600, time.time())[("desktop", "Ollama")] == 1.0
