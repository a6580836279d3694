"""The monitor edge: its worker thread, topology watching, Check now, pause, grace, resilience.

Real parts: the stand-in `tailscale` executable (a process boundary), real HTTP
servers on loopback, real files. The notifier is a recorder: the backends are
tested on a real D-Bus elsewhere; here we test what the monitor asks them to show.
Tests whose point is the schedule, pause or notifications drive the monitor with
ScriptedSweeps (the real health rules over probe results the test sets); the others
sweep for real.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from agent import app
from agent.core.events import EventKind
from agent.core.health import judge
from agent.core.menu import MonitorStatus, build_menu, overall_health, tooltip
from agent.core.model import (
    BackendState,
    Health,
    ProbeResult,
    ProbeState,
    Reason,
    Snapshot,
    TailnetView,
    Topology,
)
from agent.core.plan import plan_sweep
from agent.core.snooze import SnoozeKind
from agent.edges import paths
from agent.edges.event_loop import UVLOOP_MIN_PROBES, loop_factory
from agent.edges.history import History
from agent.edges.snooze_file import load_snoozes
from agent.edges.topology_source import load_topology
from agent.monitor import Monitor
from agent.sweep import sweep
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES
from tests.helpers.desktop import wait_for
from tests.helpers.servers import closed_port, http_server

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
        self.updates: list[MonitorStatus] = []
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

    def on_update(self, update: MonitorStatus) -> None:
        with self.lock:
            self.updates.append(update)

    def wait(self, pred: Callable[[MonitorStatus], bool], timeout: float = 15.0) -> MonitorStatus:
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


class ScriptedSweeps:
    """A sweep_once without the tailscale CLI or servers: every probe of the plan answers
    `result` (the test changes it), judged by the real rules (agent.core.health). This
    machine is node "desktop" of a running tailnet."""

    def __init__(self) -> None:
        self.result = UP
        self.count = 0
        # When set to a clear Event: once a sweep has answered a bad result, the next sweeps
        # wait (on the monitor's loop, which keeps serving calls) until the test sets it.
        self.gate: threading.Event | None = None
        self._bad_answered = False

    async def __call__(self, topology: Topology) -> Snapshot:
        if self.gate is not None and self._bad_answered:
            while not self.gate.is_set():
                await asyncio.sleep(0.01)
        self._bad_answered = self.result.state is not ProbeState.UP
        self.count += 1
        now = time.time()
        tailnet = TailnetView(
            backend_state=BackendState.RUNNING, self_hostname="sweetlife", self_ips=("127.0.0.1",)
        )
        plan = plan_sweep(topology, "desktop", tailnet, now=now)
        results = dict(plan.skipped)
        results.update({(t.node_id, t.service.name): self.result for t in plan.targets})
        return judge(topology, tailnet, "desktop", results, plan.addresses, now=now)


UP = ProbeResult(ProbeState.UP, None, "HTTP 200", 1.0)
REFUSED = ProbeResult(ProbeState.DOWN, Reason.REFUSED, "connection refused")
NO_SERVER = 8000  # the port in a topology only ScriptedSweeps sweeps: nothing connects to it


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
        kw.setdefault("on_update", rec.on_update)
        # The real sweep: the stand-in tailscale CLI, real probes, on the monitor's clock.
        clock = kw.get("wall", time.time)
        kw.setdefault(
            "sweep_once", functools.partial(sweep, tailscale_cli=FAKE_TAILSCALE, clock=clock)
        )
        monitor = Monitor(
            load_topology=lambda: load_topology(str(topo), {}),
            locate_topology=lambda: topo,
            notifier=rec,
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
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(NO_SERVER, interval="1h"))
    sweeps = ScriptedSweeps()
    monitor, rec = start_monitor(topo, sweep_once=sweeps)
    rec.wait(lambda u: u.snapshot is not None)
    assert sweeps.count == 1  # the next one is an hour away
    monitor.check_now()
    rec.wait(lambda u: rec.sweeps() == 2, timeout=5)
    assert sweeps.count == 2


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
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(NO_SERVER, interval="1h"))
    monitor, rec = start_monitor(topo, sweep_once=ScriptedSweeps())
    rec.wait(lambda u: u.snapshot is not None)
    until = time.time() + 3600
    monitor.pause_notifications(until)
    assert rec.wait(lambda u: u.paused_until is not None).paused_until == until
    monitor.resume_notifications()
    rec.wait(lambda u: u.paused_until is None and rec.updates[-1] is u)


def test_outage_is_notified_and_a_failing_notifier_does_not_stop_the_monitor(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(NO_SERVER, interval="1s"))
    sweeps = ScriptedSweeps()
    monitor, rec = start_monitor(topo, recorder=Recorder(fail=True), sweep_once=sweeps)
    rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
    sweeps.result = REFUSED  # from now on
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


# ==== the topology in use: re-resolved while running ===========================


@pytest.fixture
def bundled_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No --topology, no $TAILNET_AGENT_TOPOLOGY, no user file: the bundled default in use.

    The bundled default is a loopback topology here (the shipped one names real machines
    that no test may probe); config and state folders are temporary.
    """
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("TAILNET_AGENT_TOPOLOGY", raising=False)
    bundled = tmp_path / "bundled" / "topology.toml"
    bundled.parent.mkdir()
    monkeypatch.setattr(paths, "bundled_topology_path", lambda: bundled)
    return bundled


@pytest.mark.parametrize("how", ["open topology file", "by hand"])
def test_the_user_file_is_watched_once_it_exists(
    bundled_default: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with http_server({"/": "ok"}) as (_, port):
        bundled_default.write_text(topology_text(port, interval="1h"))
        rec = Recorder()
        options = app.AgentOptions(tailscale=FAKE_TAILSCALE)
        monitor = app._build_monitor(options, {}, rec, rec.on_update)
        monitor.start()
        try:
            first = rec.wait(lambda u: u.snapshot is not None)
            assert first.snapshot is not None
            assert str(bundled_default) in first.snapshot.topology.source
            user_file = paths.user_topology_path()
            if how == "open topology file":
                opened: list[Path] = []

                class Opener:  # the desktop's opener is a process boundary: record the call
                    def open_path(self, path: Path, what: str) -> None:
                        opened.append(path)

                app._open_topology_file(options, {}, monitor, Opener())  # type: ignore[arg-type]
                assert opened == [user_file]
                assert user_file.read_text() == bundled_default.read_text()
                rec.wait(
                    lambda u: (
                        u.snapshot is not None and u.snapshot.topology.source == str(user_file)
                    ),
                    timeout=1.5,  # at once: sooner than the 2 s file poll
                )
            else:
                user_file.parent.mkdir(parents=True)
            user_file.write_text(topology_text(port, interval="1h", name="Edited"))
            edited = rec.wait(
                lambda u: (
                    u.snapshot is not None
                    and u.snapshot.topology.nodes[0].services[0].name == "Edited"
                ),
                timeout=10,
            )
            assert edited.snapshot is not None
            assert edited.snapshot.topology.source == str(user_file)
            assert edited.topology_error is None
        finally:
            monitor.stop()


def test_after_a_deletion_a_restarted_agent_reports_it_and_open_topology_file_opens_its_folder(
    bundled_default: Path,
) -> None:
    """A user file an earlier agent used, deleted: the next agent starts on no topology and
    says so (never the bundled example), and "Open topology file" does not recreate the file
    from the example: it opens the folder the file was in."""
    with http_server({"/": "ok"}) as (_, port):
        bundled_default.write_text(topology_text(port, interval="1h"))
        user_file = paths.user_topology_path()
        user_file.parent.mkdir(parents=True)
        user_file.write_text(topology_text(port, interval="1h", name="Mine"))
        options = app.AgentOptions(tailscale=FAKE_TAILSCALE)
        earlier = Recorder()
        monitor = app._build_monitor(options, {}, earlier, earlier.on_update)
        monitor.start()
        try:
            earlier.wait(lambda u: u.snapshot is not None)
        finally:
            monitor.stop()
        user_file.unlink()

        rec = Recorder()
        monitor = app._build_monitor(options, {}, rec, rec.on_update)
        monitor.start()
        try:
            refused = rec.wait(lambda u: u.topology_error is not None)
            assert refused.snapshot is None  # nothing of the example was swept
            assert refused.topology_error is not None
            assert refused.topology_error.startswith(f"{user_file}: no such file (deleted")
            opened: list[tuple[Path, str]] = []

            class Opener:  # the desktop's opener is a process boundary: record the call
                def open_path(self, path: Path, what: str) -> None:
                    opened.append((path, what))

            app._open_topology_file(options, {}, monitor, Opener())  # type: ignore[arg-type]
            assert opened == [(user_file.parent, "the topology folder")]
            assert not user_file.exists()
        finally:
            monitor.stop()


# ==== topology feedback: the user's own edits =================================


def _save(path: Path, text: str, bump: list[float]) -> None:
    """Write `text` with a fresh mtime (coarse clocks and quick edits would hide a change)."""
    path.write_text(text)
    bump[0] += 5
    os.utime(path, (time.time() + bump[0], time.time() + bump[0]))


def test_every_topology_refusal_and_fix_is_told_even_within_ten_minutes(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    with http_server({"/": "ok"}) as (_, port):
        good = topology_text(port, interval="1h")
        topo = tmp_path / "topology.toml"
        topo.write_text(good)
        _, rec = start_monitor(topo)
        rec.wait(lambda u: u.snapshot is not None)
        bump = [0.0]
        expected: list[str] = []
        for _ in range(2):  # break, fix, break again, fix again: seconds apart
            _save(topo, good.replace('name = "monitor test"', 'name = "monitor test'), bump)
            rec.wait(lambda u: u.topology_error is not None and rec.updates[-1] is u)
            _save(topo, good, bump)
            rec.wait(lambda u: u.topology_error is None and rec.updates[-1] is u)
            expected += ["Topology file refused", "Topology file accepted"]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(rec.shown) < len(expected):
                time.sleep(0.05)
        assert [title for title, _, _ in rec.shown] == expected


def test_a_notification_held_back_is_logged(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.monitor")
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(NO_SERVER, interval="1s").replace('"critical"', '"degraded"'))
    sweeps = ScriptedSweeps()
    monitor, rec = start_monitor(topo, sweep_once=sweeps)
    rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
    monitor.pause_notifications(time.time() + 3600)
    rec.wait(lambda u: u.paused_until is not None)
    sweeps.result = REFUSED
    rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events))
    assert rec.shown == []  # paused: held back ...
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "held back" not in caplog.text:
        time.sleep(0.05)
    held = [r.getMessage() for r in caplog.records if "held back" in r.getMessage()]
    assert held == ["notification held back (notifications are paused): desktop: Ollama down"]


# ==== grace: it says why, and it never hides a known red ======================


def _calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_one_off_tailscale_hang_is_no_sleep_and_starts_no_grace(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "tailscale-calls.log"
    monkeypatch.setenv("FAKE_TAILSCALE_LOG", str(calls))
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1s"))
        _, rec = start_monitor(topo)
        rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
        before = _calls(calls)
        monkeypatch.setenv("FAKE_TAILSCALE_MODE", "hang")  # the next `tailscale status` hangs
        deadline = time.monotonic() + 5
        while _calls(calls) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        monkeypatch.setenv("FAKE_TAILSCALE_MODE", "ok")  # ... and only that one
        hung = rec.wait(lambda u: u.snapshot is not None and not u.snapshot.tailnet.running)
        n = len(rec.updates)
        rec.wait(lambda u: len(rec.updates) >= n + 3)  # three sweeps after it answered again
    after = rec.updates[rec.updates.index(hung) :]
    assert [u for u in after if u.in_grace] == []  # nothing slept, nothing restarted
    assert rec.shown == []  # one reading is no outage


def test_tailscale_answering_again_settles_with_that_reason_and_the_confirmed_colour(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1s"))
        _, rec = start_monitor(topo)
        rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
        monkeypatch.setenv("FAKE_TAILSCALE_MODE", "garbage")
        rec.wait(lambda u: any(e.kind.value == "tailscale_stopped" for e in u.events))
        assert [t for t, _, _ in rec.shown] == ["Tailscale cannot be read here"]
        monkeypatch.setenv("FAKE_TAILSCALE_MODE", "ok")
        back = rec.wait(lambda u: any(e.kind.value == "tailscale_running" for e in u.events))
    assert back.in_grace
    view = app.tray_view(back, autostart=None)
    assert overall_health(view) is Health.GREEN  # confirmed: Tailscale runs, Ollama up
    headline = build_menu(view, local_time=lambda t: "12:00")[0].text
    assert headline.startswith("✓ monitor test: Settling after Tailscale answered again")
    assert "sleep" not in tooltip(view) and "network change" not in tooltip(view)


def test_a_known_red_state_is_kept_while_settling_after_a_clock_change(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    jump = [0.0]
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1s"))
        _, rec = start_monitor(topo, wall=lambda: time.time() + jump[0])
        rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
    rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events))  # critical
    jump[0] = 3600.0  # the clock is set an hour ahead; nothing slept
    settling = rec.wait(lambda u: u.in_grace, timeout=10)
    view = app.tray_view(settling, autostart=None)
    assert overall_health(view) is Health.RED  # not grey: the outage is known
    headline = build_menu(view, local_time=lambda t: "12:00")[0].text
    assert headline.startswith("× monitor test: Settling after a clock change")
    assert "desktop: Ollama down" in headline


# ==== uptime: the window it covers, kept fresh ================================


class _Switch(http.server.ThreadingHTTPServer):
    """Answers 503 until `up` is set, then 200."""

    daemon_threads = True

    def __init__(self) -> None:
        self.up = threading.Event()
        super().__init__(("127.0.0.1", 0), _SwitchHandler)


class _SwitchHandler(http.server.BaseHTTPRequestHandler):
    server: _Switch

    def do_GET(self) -> None:
        status = 200 if self.server.up.is_set() else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_uptime_says_the_window_it_covers_and_follows_a_recovery(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    server = _Switch()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(server.server_address[1], interval="1s"))
        db = tmp_path / "history.sqlite3"
        _, rec = start_monitor(topo, open_history=lambda: History(db))
        rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events))
        down_from = rec.updates[0].now
        n = rec.sweeps()
        rec.wait(lambda u: rec.sweeps() >= n + 2)  # down a little longer than confirming took
        server.up.set()
        back = rec.wait(lambda u: any(e.kind.value == "service_up" for e in u.events))
        down_s = back.now - down_from
        # Up for three times as long as it was down: up three quarters of the time covered.
        later = rec.wait(lambda u: u.now - back.now > 3 * down_s, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    line = _service_line(later)
    match = re.fullmatch(r"✓ Ollama :\d+ — up · (\d+\.\d)% over (\d+) s", line)
    assert match, line
    assert 60.0 <= float(match[1]) <= 90.0  # about 75 %, fresh within a percent or so
    assert abs(int(match[2]) - (later.now - down_from)) <= 2


def _service_line(update: MonitorStatus) -> str:
    view = app.tray_view(update, autostart=None)
    node = next(e for e in build_menu(view, local_time=lambda t: "12:00") if e.children)
    return next(c.text for c in node.children if "Ollama" in c.text)


# ==== restarts: the history carries the known states forward =================


def test_a_restart_tells_the_recovery_of_a_problem_told_before_it(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(closed_port(), interval="1s"))
    first, rec = start_monitor(topo, open_history=lambda: History(db))
    rec.wait(lambda u: any(e.kind.value == "service_down" for e in u.events))
    first.stop()
    with http_server({"/": "ok"}) as (_, port):  # while stopped, Ollama came back
        topo.write_text(topology_text(port, interval="1s"))
        _, again = start_monitor(topo, open_history=lambda: History(db))
        back = again.wait(lambda u: any(e.kind.value == "service_up" for e in u.events))
    assert [t for t, _, _ in rec.shown] == ["desktop: Ollama down"]
    assert [t for t, _, _ in again.shown] == ["desktop: Ollama up"]
    (event,) = back.events
    assert event.message.startswith("Ollama is back (up after ")
    with History(db) as store:
        kinds = [r.kind for r in store.events()]
    assert kinds == [
        "agent_started", "service_down", "agent_stopped", "agent_started", "service_up"
    ]  # fmt: skip


def test_the_tray_view_says_when_the_last_sweep_finished(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    with http_server({"/": "ok"}) as (_, port):
        topo = tmp_path / "topology.toml"
        topo.write_text(topology_text(port, interval="1h"))
        _, rec = start_monitor(topo)
        update = rec.wait(lambda u: u.snapshot is not None)
    assert update.snapshot is not None
    view = app.tray_view(update, autostart=None)
    assert view.last_checked == time.strftime("%H:%M:%S", time.localtime(update.snapshot.at))
    assert app.tray_view(replace(update, snapshot=None), autostart=None).last_checked == ""


# ==== the event loop: the policy `check` uses ==================================


def _many_services_topology(services: int) -> str:
    lines = ["version = 1", 'name = "many"', "", "[defaults]", 'interval = "1h"', 'timeout = "1s"']
    lines += ["", "[[nodes]]", 'id = "desktop"', 'hostname = "sweetlife"', 'ip = "127.0.0.1"']
    ports: set[int] = set()
    while len(ports) < services:  # one node: no two services on one port
        ports.add(closed_port())
    for i, port in enumerate(sorted(ports)):
        lines += ["", "  [[nodes.services]]", f'  name = "s{i}"', f"  port = {port}"]
        lines += ['  check = "tcp"', '  impact = "info"']
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("services", "loop"),
    [
        (UVLOOP_MIN_PROBES, "uvloop" if sys.platform != "win32" else "asyncio"),
        (UVLOOP_MIN_PROBES - 1, "asyncio"),
    ],
    ids=["at-the-threshold", "below-it"],
)
def test_the_monitor_sweeps_on_the_loop_check_would_pick(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path, services: int, loop: str
) -> None:
    topo = tmp_path / "topology.toml"
    topo.write_text(_many_services_topology(services))
    loops: list[str] = []
    rec = Recorder()

    def on_update(update: MonitorStatus) -> None:  # called on the monitor's own loop
        loops.append(type(asyncio.get_running_loop()).__module__.split(".")[0])
        rec.on_update(update)

    start_monitor(topo, recorder=rec, on_update=on_update)
    rec.wait(lambda u: u.snapshot is not None)
    assert set(loops) == {loop}
    assert loop_factory(services).__module__.split(".")[0] == loop  # what `check` runs on


# ==== snoozed alerts ===========================================================


def test_a_snoozed_outage_is_recorded_not_announced_and_until_back_ends_by_itself(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(NO_SERVER, interval="1s"))
    db, state_file = tmp_path / "history.sqlite3", tmp_path / "state" / "snoozes.json"
    sweeps = ScriptedSweeps()
    monitor, rec = start_monitor(
        topo, sweep_once=sweeps, open_history=lambda: History(db), snooze_path=state_file
    )
    rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
    # The re-check that would confirm the down waits until the snooze is in: a person snoozes
    # between the first bad reading and its confirmation, however busy this machine is.
    sweeps.gate = threading.Event()
    sweeps.result = REFUSED  # a first bad reading: the menu shows it down, "until it is back"
    rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.RED)
    monitor.snooze(("desktop", "Ollama"), SnoozeKind.UNTIL_BACK, None)
    wait_for(lambda: load_snoozes(state_file).keys() == {("desktop", "Ollama")}, 30)
    sweeps.gate.set()  # the snooze is kept in the state file (it survives a restart)
    rec.wait(lambda u: ("desktop", "Ollama") in u.snoozes)
    down = rec.wait(lambda u: any(e.kind is EventKind.SERVICE_DOWN for e in u.events))
    assert down.snapshot is not None and down.snapshot.overall is not Health.RED
    why = down.changes[("service", "desktop", "Ollama")]
    assert why.bad and why.evidence.detail == "connection refused"
    sweeps.result = UP
    back = rec.wait(lambda u: any(e.kind is EventKind.SNOOZE_ENDED for e in u.events))
    assert back.snoozes == {} and load_snoozes(state_file) == {}
    assert rec.shown == []  # nothing was announced for it, neither the down nor the up
    monitor.stop()
    with History(db) as store:
        kinds = [r.kind for r in store.events() if r.service == "Ollama"]
    assert kinds == ["snooze_started", "service_down", "service_up", "snooze_ended"]


def test_snoozes_survive_a_restart_and_an_unsnooze_says_what_is_still_wrong(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(NO_SERVER, interval="1s"))
    state_file = tmp_path / "snoozes.json"
    first, rec = start_monitor(topo, sweep_once=ScriptedSweeps(), snooze_path=state_file)
    rec.wait(lambda u: u.snapshot is not None)
    first.snooze(("desktop", ""), SnoozeKind.HOUR, time.time() + 3600)
    rec.wait(lambda u: ("desktop", "") in u.snoozes)
    first.stop()
    sweeps = ScriptedSweeps()
    sweeps.result = REFUSED
    second, rec2 = start_monitor(topo, sweep_once=sweeps, snooze_path=state_file)
    rec2.wait(lambda u: ("desktop", "") in u.snoozes and u.snapshot is not None)
    rec2.wait(lambda u: any(e.kind is EventKind.SERVICE_DOWN for e in u.events))
    assert rec2.shown == []
    second.unsnooze(("desktop", ""))
    ended = rec2.wait(lambda u: any(e.kind is EventKind.SNOOZE_ENDED for e in u.events))
    assert ended.snoozes == {}
    assert rec2.shown[0][0] == "desktop: snooze over — Ollama still wrong"
    assert rec2.shown[0][2] is True  # a critical service is still down


def test_a_snoozed_outage_stays_uncoloured_while_settling_after_a_clock_change(  # type: ignore[no-untyped-def]
    start_monitor, tmp_path: Path
) -> None:
    topo = tmp_path / "topology.toml"
    topo.write_text(topology_text(NO_SERVER, interval="1s"))
    jump = [0.0]
    sweeps = ScriptedSweeps()
    monitor, rec = start_monitor(topo, sweep_once=sweeps, wall=lambda: time.time() + jump[0])
    rec.wait(lambda u: u.snapshot is not None and u.snapshot.overall is Health.GREEN)
    monitor.snooze(("desktop", ""), SnoozeKind.HOUR, time.time() + 3600)
    rec.wait(lambda u: ("desktop", "") in u.snoozes)
    sweeps.result = REFUSED
    rec.wait(lambda u: any(e.kind is EventKind.SERVICE_DOWN for e in u.events))  # confirmed
    jump[0] = 600.0  # the clock is set ahead: a grace period keeps the confirmed states
    settling = rec.wait(lambda u: u.in_grace, timeout=10)
    assert settling.settling is not None and settling.settling.health is Health.GREEN
    assert settling.settling.problems == ()  # the snoozed critical down does not colour
    assert overall_health(app.tray_view(settling, autostart=None)) is Health.GREEN
    assert rec.shown == []
