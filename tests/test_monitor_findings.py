"""The running monitor announces a diagnosis once per change, and logs key-expiry news.

Real parts: the Monitor with the real sweep (the stand-in `tailscale` CLI, whose status
file the test rewrites between sweeps; the exposure audit over psutil's socket table, with
real sockets bound and listening on 0.0.0.0 and 127.0.0.1). The notifier is the recorder
of tests/test_monitor.py: what the monitor asks the desktop to show.

- A finding that persists over many sweeps is announced once; when it changes (another
  key), once more; when it clears and comes back, again.
- A node key expiring within a week is an event like the others: recorded, notified, and
  written to the monitor's log lines (`event key_expiring: ...`), with no key material.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.core import notify_policy
from agent.core.events import EventKind
from agent.edges.history import History
from agent.edges.topology_source import load_topology
from agent.monitor import Monitor
from agent.sweep import sweep
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES
from tests.test_monitor import Recorder

FAKE_TAILSCALE = str(FAKE_TAILSCALE_DIR / "tailscale")
FAR = "2099-01-01T00:00:00Z"  # a key expiry nothing warns of


@pytest.fixture(autouse=True)
def every_announcement_reaches_the_notifier(monkeypatch: pytest.MonkeyPatch) -> None:
    # The policy shows the same subject at most once per 10 min (tested in the core); here
    # the point is what the monitor announces, so a finding that comes back is shown.
    monkeypatch.setattr(notify_policy, "RATE_LIMIT_S", 0.0)


class Status:
    """The stand-in CLI's status file (read on every call): loopback_all_direct.json, this
    machine sweetlife at 127.0.0.1, the Mac mini at 127.0.0.3, the laptop at 127.0.0.2."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.doc = json.loads((TAILSCALE_FIXTURES / "loopback_all_direct.json").read_text())
        self.doc["Self"]["KeyExpiry"] = FAR
        for peer in self.doc["Peer"].values():
            peer["KeyExpiry"] = FAR
        self.write()
        monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(path))
        monkeypatch.delenv("FAKE_TAILSCALE_MODE", raising=False)

    def peer(self, hostname: str) -> dict[str, object]:
        return next(p for p in self.doc["Peer"].values() if p["HostName"] == hostname)

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc))
        tmp.replace(self.path)  # never a half-written file for a sweep to read


TOPOLOGY = """version = 1
name = "findings test"
[defaults]
interval = "1s"
timeout = "1s"
access = "tailscale"
[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"
{services}
[[nodes]]
id = "macmini"
name = "Mac mini"
hostname = "woosuns-mac-mini"
ip = "127.0.0.3"
[[nodes]]
id = "laptop"
name = "Laptop"
hostname = "desktop-ecmkau8"
ip = "127.0.0.2"
always_on = false
"""


@pytest.fixture
def run_monitor(tmp_path: Path) -> Iterator[Callable[..., tuple[Monitor, Recorder]]]:
    monitors: list[Monitor] = []

    def start(topology: str, **kw: object) -> tuple[Monitor, Recorder]:
        topo = tmp_path / "topology.toml"
        topo.write_text(topology, encoding="utf-8")
        rec = Recorder()
        monitor = Monitor(
            load_topology=lambda: load_topology(str(topo), {}),
            locate_topology=lambda: topo,
            sweep_once=functools.partial(sweep, tailscale_cli=FAKE_TAILSCALE),
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


def shown(rec: Recorder, words: str) -> list[tuple[str, str]]:
    with rec.lock:
        return [(t, m) for t, m, _ in rec.shown if words in t]


def sweeps_pass(rec: Recorder, count: int) -> None:
    """Wait until `count` more sweeps have been published."""
    target = rec.sweeps() + count
    rec.wait(lambda u: rec.sweeps() >= target, timeout=30)


def wait_shown(rec: Recorder, words: str, count: int) -> list[tuple[str, str]]:
    rec.wait(lambda u: len(shown(rec, words)) >= count, timeout=30)
    return shown(rec, words)


def test_drift_is_announced_once_per_change(  # type: ignore[no-untyped-def]
    run_monitor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = Status(tmp_path / "status.json", monkeypatch)
    _, rec = run_monitor(TOPOLOGY.format(services=""))
    sweeps_pass(rec, 2)
    assert shown(rec, "topology drift") == []  # the tailnet matches
    mac = status.peer("Woosuns-Mac-mini")

    mac["TailscaleIPs"] = ["127.0.0.9"]  # the Mac mini's IP changed
    status.write()
    (found,) = wait_shown(rec, "topology drift", 1)
    assert found[0] == "Mac mini: topology drift"
    assert 'change ip = "127.0.0.3" to ip = "127.0.0.9"' in found[1]
    sweeps_pass(rec, 8)  # it persists over many sweeps: nothing more
    assert len(shown(rec, "topology drift")) == 1

    mac["TailscaleIPs"] = ["127.0.0.8"]  # it changes: one more (and the old one is over)
    status.write()
    wait_shown(rec, "topology drift resolved", 1)
    rec.wait(lambda u: len(shown(rec, "topology drift")) >= 3, timeout=30)
    sweeps_pass(rec, 6)
    titles = [t for t, _ in shown(rec, "topology drift")]
    assert sorted(titles) == [
        "Mac mini: topology drift",
        "Mac mini: topology drift",
        "Mac mini: topology drift resolved",
    ]
    news = [m for t, m in shown(rec, "topology drift") if not t.endswith("resolved")]
    assert 'to ip = "127.0.0.8"' in news[-1]

    mac["TailscaleIPs"] = ["127.0.0.3"]  # it clears ...
    status.write()
    wait_shown(rec, "topology drift resolved", 2)
    mac["TailscaleIPs"] = ["127.0.0.9"]  # ... and comes back: announced again
    status.write()
    rec.wait(lambda u: len(shown(rec, "Mac mini: topology drift")) >= 5, timeout=30)
    sweeps_pass(rec, 6)
    drifts = [m for t, m in shown(rec, "topology drift") if not t.endswith("resolved")]
    assert len(drifts) == 3
    assert 'to ip = "127.0.0.9"' in drifts[-1]


@contextlib.contextmanager
def listening(address: str) -> Iterator[int]:
    """A TCP socket bound to `address` and listening (a tcp probe's connect completes)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, 0))
        sock.listen()
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_an_exposure_is_announced_once_per_change(  # type: ignore[no-untyped-def]
    run_monitor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Status(tmp_path / "status.json", monkeypatch)
    with listening("127.0.0.1") as port:
        service = f"""  [[nodes.services]]
  name = "PostgreSQL"
  port = {port}
  check = "tcp"
  impact = "info"
"""
    # The port is free again: the test listens on it where it says, in turn.
    _, rec = run_monitor(TOPOLOGY.format(services=service))
    with listening_on_port("0.0.0.0", port):
        (found,) = wait_shown(rec, "exposed beyond Tailscale", 1)
        assert found[0] == "Desktop: exposed beyond Tailscale"
        assert "PostgreSQL listens on 0.0.0.0" in found[1]
        sweeps_pass(rec, 8)  # it persists: nothing more
        assert len(shown(rec, "exposed beyond Tailscale")) == 1
    with listening_on_port("127.0.0.1", port):  # fixed: it listens on this node's IP only
        wait_shown(rec, "exposed beyond Tailscale resolved", 1)
        sweeps_pass(rec, 4)
        assert len(shown(rec, "exposed beyond Tailscale")) == 2
    with listening_on_port("0.0.0.0", port):  # it comes back: announced again
        rec.wait(lambda u: len(shown(rec, "exposed beyond Tailscale")) >= 3, timeout=30)
        sweeps_pass(rec, 4)
    titles = [t for t, _ in shown(rec, "exposed beyond Tailscale")]
    assert titles == [
        "Desktop: exposed beyond Tailscale",
        "Desktop: exposed beyond Tailscale resolved",
        "Desktop: exposed beyond Tailscale",
    ]


@contextlib.contextmanager
def listening_on_port(address: str, port: int) -> Iterator[None]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen()
        yield
    finally:
        sock.close()


def test_a_key_expiring_is_logged_like_other_events(  # type: ignore[no-untyped-def]
    run_monitor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.monitor")
    status = Status(tmp_path / "status.json", monkeypatch)
    in_three_days = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 86400 + 600))
    status.peer("Woosuns-Mac-mini")["KeyExpiry"] = in_three_days
    status.write()
    db = tmp_path / "history.sqlite3"
    monitor, rec = run_monitor(TOPOLOGY.format(services=""), open_history=lambda: History(db))
    (note,) = wait_shown(rec, "node key", 1)
    sweeps_pass(rec, 3)
    monitor.stop()
    assert note[0] == "Mac mini: node key expires in 3 days"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event ")]
    keyed = [line for line in lines if line.startswith("event key_expiring:")]
    assert keyed == [f"event key_expiring: {note[0]} — {note[1]}"]  # once, as announced
    assert "tailscale up --force-reauth" in keyed[0]
    assert "nodekey:" not in caplog.text  # no key material in the log
    with History(db) as store:
        kinds = [r.kind for r in store.events() if r.kind == EventKind.KEY_EXPIRING]
    assert kinds == [EventKind.KEY_EXPIRING]
    assert len(shown(rec, "node key")) == 1
