"""`check` asks `tailscale status` before it imports the probes (agent.cli._check,
tailscale.start_status): the same answer as asking it in the sweep, never for a refused
command line, and no CLI left behind whichever way `check` ends."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from agent.core.model import TailscaleProblem
from agent.edges.tailscale import read_status, start_status
from tests.conftest import AgentSandbox

FAKE = Path(__file__).parent / "helpers" / "fake_tailscale" / "tailscale"
FIXTURES = Path(__file__).parent / "fixtures" / "tailscale"
HANG_GUARD_S = 20.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def wait_for(cond: object, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("FAKE_TAILSCALE_MODE", "FAKE_TAILSCALE_FAULT_FILE", "FAKE_TAILSCALE_LOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(FIXTURES / "running_all_direct.json"))
    monkeypatch.setenv("FAKE_TAILSCALE_PIDS", str(tmp_path / "pids"))
    return tmp_path / "pids"


def test_a_status_started_early_reads_as_one_asked_in_the_sweep(fake: Path) -> None:
    started = start_status(str(FAKE))
    wait_for(lambda: pids(fake), "the CLI was not started at once")  # before any event loop
    early = asyncio.run(read_status(str(FAKE), started=started))
    asked = asyncio.run(read_status(str(FAKE)))
    assert early.problem is None and early.running
    assert early == asked


def test_no_cli_is_nothing_started() -> None:
    assert start_status(None) is None
    assert asyncio.run(read_status(None)).problem is TailscaleProblem.NOT_INSTALLED


def test_a_started_status_nobody_reads_is_killed(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", "hang")
    started = start_status(str(FAKE))
    assert started is not None
    wait_for(lambda: pids(fake), "the CLI was not started")
    started.kill()
    (pid,) = pids(fake)
    wait_for(lambda: not alive(pid), "the killed CLI is still running")


def test_a_started_status_that_hangs_is_bounded_from_the_wait(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", "hang")
    started = start_status(str(FAKE))
    view = asyncio.run(read_status(str(FAKE), 0.3, started=started))
    assert view.problem is TailscaleProblem.TIMED_OUT
    (pid,) = pids(fake)
    assert not alive(pid)


@pytest.mark.parametrize("how", ["invalid topology", "unknown node"])
def test_a_refused_check_runs_no_cli(sandbox: AgentSandbox, how: str) -> None:
    sandbox.use_fake_tailscale("running_all_direct.json")
    pid_file = sandbox.root / "pids"
    sandbox.env["FAKE_TAILSCALE_PIDS"] = str(pid_file)
    topology = sandbox.root / "topology.toml"
    if how == "invalid topology":
        topology.write_text("version = 1\nname = [", encoding="utf-8")
        args = ["--topology", str(topology)]
    else:
        args = ["--node", "nobody"]  # the bundled example has no such node
    done = sandbox.run("check", *args, timeout=60)
    assert done.returncode == 3, done.stderr
    assert pids(pid_file) == []


def test_a_check_whose_cli_hangs_leaves_none_behind(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("running_all_direct.json", mode="hang")
    pid_file = sandbox.root / "pids"
    sandbox.env["FAKE_TAILSCALE_PIDS"] = str(pid_file)
    done = sandbox.run("check", "--json", timeout=60)
    assert done.returncode == 2, done.stderr  # Tailscale not answering here: red
    started = pids(pid_file)
    assert len(started) == 1, started  # asked once, early, and not again in the sweep
    wait_for(lambda: not alive(started[0]), "the CLI outlived check")
    assert sandbox.outside_connections() == []
