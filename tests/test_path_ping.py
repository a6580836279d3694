"""`tailscale ping` against the stand-in CLI: the answers, the bound, the cancel, the schedule."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.core.model import Link
from agent.edges.path_ping import PathPinger, ping_peer
from agent.edges.topology_source import load_topology
from agent.monitor import Monitor
from agent.sweep import sweep
from tests.conftest import FAKE_TAILSCALE_DIR, TAILSCALE_FIXTURES

FAKE = str(FAKE_TAILSCALE_DIR / "tailscale")
HANG_GUARD_S = 20.0  # a guard against a hang, not a speed expectation
MAC_IP = "127.0.0.3"  # loopback_all_direct.json: the Mac mini, direct at 127.0.0.3:57124
LAPTOP_IP = "127.0.0.2"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The stand-in's environment; returns the file its process ids are written to."""
    for var in ("FAKE_TAILSCALE_MODE", "FAKE_TAILSCALE_PING_MODE", "FAKE_TAILSCALE_PING_LATENCY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(TAILSCALE_FIXTURES / "loopback_all_direct.json"))
    monkeypatch.setenv("FAKE_TAILSCALE_LOG", str(tmp_path / "calls.jsonl"))
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TAILSCALE_PIDS", str(pids))
    return pids


def calls(fake: Path) -> list[list[str]]:
    log = fake.parent / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose; /proc tells on Linux
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def wait_until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_direct_pong(fake: Path) -> None:
    reading = asyncio.run(ping_peer(FAKE, MAC_IP, 3, clock=lambda: 7.0))
    assert (reading.link, reading.via, reading.latency_ms, reading.at) == (
        Link.DIRECT, "127.0.0.3:57124", 1.0, 7.0,
    )  # fmt: skip
    assert calls(fake) == [["ping", "--c", "1", "--timeout", "3s", "--until-direct=false", MAC_IP]]


def test_a_derp_pong(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(TAILSCALE_FIXTURES / "loopback_mac_relayed.json"))
    monkeypatch.setenv("FAKE_TAILSCALE_PING_LATENCY", "138ms")
    reading = asyncio.run(ping_peer(FAKE, MAC_IP, 3))
    assert (reading.link, reading.via, reading.latency_ms) == (Link.RELAY, "tok", 138.0)


def test_no_reply_and_unknown_peer(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert asyncio.run(ping_peer(FAKE, "127.0.0.99", 3)).error == "no matching peer"
    monkeypatch.setenv("FAKE_TAILSCALE_PING_MODE", "timeout")
    assert asyncio.run(ping_peer(FAKE, MAC_IP, 3)).error == "no reply within 3 s"


def test_a_missing_cli_is_a_reading_not_a_crash(tmp_path: Path) -> None:
    reading = asyncio.run(ping_peer(str(tmp_path / "nope"), MAC_IP, 3))
    assert reading.link is Link.UNKNOWN and reading.error.startswith("cannot run")


def test_a_hanging_ping_is_bounded_and_killed(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_PING_MODE", "hang")
    reading = asyncio.run(ping_peer(FAKE, MAC_IP, 0.2))
    assert reading.error == "no reply within 0.2 s"
    (pid,) = (int(p) for p in fake.read_text().split())
    assert not alive(pid)


def test_a_cancelled_ping_kills_the_cli(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_PING_MODE", "hang")

    async def cancel_once_started() -> None:
        task = asyncio.ensure_future(ping_peer(FAKE, MAC_IP, 600))
        while not (fake.exists() and fake.read_text().strip()):
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_once_started())
    (pid,) = (int(p) for p in fake.read_text().split())
    assert not alive(pid)


def test_the_monitor_pings_a_peer_at_most_once_a_minute(fake: Path) -> None:
    now = [0.0]
    pinger = PathPinger(FAKE, every_s=60, mono=lambda: now[0])
    peers = {"macmini": MAC_IP, "laptop": LAPTOP_IP}
    for t in (0.0, 10.0, 59.0):
        now[0] = t
        readings = asyncio.run(pinger.readings(peers, 1))
        assert {k: r.link for k, r in readings.items()} == {
            "macmini": Link.DIRECT,
            "laptop": Link.DIRECT,
        }
    assert len(calls(fake)) == 2  # once each so far, the readings reused
    now[0] = 60.0
    asyncio.run(pinger.readings({"macmini": MAC_IP}, 1))  # the laptop went offline
    assert sorted(c[-1] for c in calls(fake)) == [LAPTOP_IP, MAC_IP, MAC_IP]
    assert asyncio.run(pinger.readings({}, 1)) == {}
    assert asyncio.run(PathPinger(None).readings(peers, 1)) == {}


def test_checks_sweep_pings_each_online_peer_concurrently(fake: Path, tmp_path: Path) -> None:
    topo = tmp_path / "topology.toml"
    topo.write_text(TOPOLOGY)
    snapshot = asyncio.run(sweep(load_topology(str(topo), {}), tailscale_cli=FAKE))
    paths = {n.node.id: n.path for n in snapshot.nodes}
    assert paths["desktop"] is None  # this machine
    assert paths["macmini"] is not None and paths["macmini"].link is Link.DIRECT
    assert sorted(c[-1] for c in calls(fake) if c[0] == "ping") == [LAPTOP_IP, MAC_IP]


TOPOLOGY = """
version = 1
name = "ping test"
[defaults]
interval = "1s"
timeout = "1s"
[[nodes]]
id = "desktop"
hostname = "sweetlife"
ip = "127.0.0.1"
[[nodes]]
id = "laptop"
hostname = "desktop-ecmkau8"
ip = "127.0.0.2"
always_on = false
[[nodes]]
id = "macmini"
hostname = "woosuns-mac-mini"
ip = "127.0.0.3"
"""


class Quiet:
    name = "quiet"

    def notify(self, title: str, message: str, **kw: object) -> bool:
        return True


def test_stopping_the_monitor_cancels_a_hanging_ping(
    fake: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_PING_MODE", "hang")
    topo = tmp_path / "topology.toml"
    topo.write_text(TOPOLOGY.replace('timeout = "1s"', 'timeout = "30s"'))
    monitor = Monitor(
        load_topology=lambda: load_topology(str(topo), {}),
        locate_topology=lambda: topo,
        sweep_once=functools.partial(
            sweep, tailscale_cli=FAKE, pinger=PathPinger(FAKE, every_s=60)
        ),
        notifier=Quiet(),  # type: ignore[arg-type]
        on_update=lambda status: None,
    )
    monitor.start()
    # the status call, then the two pings, hanging
    wait_until(lambda: fake.exists() and len(fake.read_text().split()) >= 3)
    monitor.stop(timeout=HANG_GUARD_S)
    assert not monitor.alive
    pids = [int(p) for p in fake.read_text().split()]
    wait_until(lambda: not any(alive(p) for p in pids))
