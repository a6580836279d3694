"""Faults of the agent's own files, against the running agent (`run --headless`): the
history locked by another connection, deleted and overwritten with garbage while in use,
and the disk full under the log and the history. Each time the monitor goes on sweeping,
says so once, and once the fault ends its records are written again."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sqlite3
from pathlib import Path

import pytest

from agent.edges.history import MONITOR_BUSY_TIMEOUT_S
from agent.edges.logs import LOG_FILE_NAME, setup_logging
from tests.conftest import AgentSandbox
from tests.helpers.faulty_service import FaultyService
from tests.helpers.namespaces import inside, namespaced, require
from tests.helpers.running_agent import FASTAPI_PROBE as PROBE
from tests.helpers.running_agent import RunningAgent, fastapi_topology, running_agent


def _history(sandbox: AgentSandbox) -> Path:
    return sandbox.root / "state" / "tailnet-agent" / "history.sqlite3"


def _sweeps(path: Path) -> int:
    """Sweeps recorded in the history file at `path` (0 while it cannot be read)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT coalesce(sum(sweeps), 0) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.fixture
def agent(agent: RunningAgent, sandbox: AgentSandbox) -> RunningAgent:
    """tests/faults/conftest.py's agent, once it has written sweeps to its history."""
    agent.wait(lambda: _sweeps(_history(sandbox)) >= 2, "no sweeps in the history")
    return agent


def _goes_on(agent: RunningAgent, sweeps: int = 2) -> None:
    agent.wait_line(PROBE, count=sweeps, since=agent.mark())


def test_history_locked_by_another_connection(agent: RunningAgent, sandbox: AgentSandbox) -> None:
    """Also the close of another process's connection: it must not take itself for the
    last one and remove the WAL the agent writes (the agent's own look at the file's header
    once dropped SQLite's locks, and every record after this close was lost)."""
    path = _history(sandbox)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        said = agent.wait_line("the history cannot be written", "locked by another process")
        # the monitor's short wait: each write waits on its event loop, holding up the sweep
        assert f"waited {MONITOR_BUSY_TIMEOUT_S:g} s" in said
        _goes_on(agent, 3)  # the monitor goes on sweeping while it cannot record
        other.execute("ROLLBACK")
    back = agent.wait_line("the history is written again")
    lost = re.search(r"\((\d+) writes? lost since", back)
    # more than one write failed under the lock, so "said once" below is really tested
    assert lost is not None and int(lost.group(1)) >= 2, back
    before = _sweeps(path)
    agent.wait(lambda: _sweeps(path) > before, "no sweep recorded after the lock")
    assert len(agent.lines("the history cannot be written")) == 1, agent.said()  # said once
    assert "Traceback" not in agent.said()


def test_history_deleted_while_running(agent: RunningAgent, sandbox: AgentSandbox) -> None:
    path = _history(sandbox)
    path.unlink()
    agent.wait_line("history:", "was deleted while in use; started a new one")
    agent.wait(lambda: _sweeps(path) >= 2, "no sweeps in the new history")
    _goes_on(agent)
    assert len(agent.lines("was deleted while in use")) == 1, agent.said()
    assert "Traceback" not in agent.said()


def test_history_overwritten_with_garbage_while_running(
    agent: RunningAgent, sandbox: AgentSandbox
) -> None:
    path = _history(sandbox)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.write(os.urandom(size))
    said = agent.wait_line("history:", "was overwritten while in use", "started a new one")
    moved = Path(said.split("moved it to ")[1].split(" and started")[0])
    assert moved.read_bytes()[:size] != b"SQLite format 3\x00"  # kept aside as it was found
    agent.wait(lambda: _sweeps(path) >= 2, "no sweeps in the new history")
    _goes_on(agent)
    assert "Traceback" not in agent.said()


def test_log_file_on_a_full_disk_says_so_once_and_recovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stand-in at the file boundary: the log file is a link to /dev/full, whose every
    write fails with ENOSPC from the kernel, as a full disk's does; removing the link is
    the space coming back."""
    log_file = tmp_path / LOG_FILE_NAME
    log_file.symlink_to("/dev/full")
    setup_logging(tmp_path, console_level=logging.WARNING)
    log = logging.getLogger("agent.faults")
    try:
        for n in range(5):
            log.warning("sweep %d", n)
        err = capsys.readouterr().err
        assert err.count("cannot be written") == 1, err
        assert "No space left on device" in err
        assert "--- Logging error ---" not in err and "Traceback" not in err, err
        assert err.count("sweep ") == 5  # the console still has every line
        log_file.unlink()  # space again
        log.warning("sweep after")
        text = log_file.read_text(encoding="utf-8")
        assert "is written again (" in text and "writes lost since" in text, text
        assert "sweep after" in text
        assert "written again" in capsys.readouterr().err
    finally:
        setup_logging(None)


def _sweeps_copied(folder: Path, scratch: Path) -> int:
    """Sweeps in the history in `folder` (another mount namespace's, through /proc/PID/root),
    read from a copy: SQLite resolves the /proc link to this namespace's folder. The WAL
    comes with it; its index is rebuilt from it."""
    scratch.mkdir(exist_ok=True)
    for suffix in ("", "-wal"):
        source = folder / f"history.sqlite3{suffix}"
        target = scratch / source.name
        try:
            target.write_bytes(source.read_bytes())
        except FileNotFoundError:
            target.unlink(missing_ok=True)
    (scratch / "history.sqlite3-shm").unlink(missing_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(scratch / "history.sqlite3")) as db:
            return int(db.execute("SELECT coalesce(sum(sweeps), 0) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return 0


def _fill(folder: Path) -> Path:
    """Fill the file system of `folder` with one file, up to ENOSPC; the file."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
    return filler


def test_history_and_log_on_a_full_disk(
    sandbox: AgentSandbox, tmp_path: Path, service: FaultyService
) -> None:
    """A real full disk: the agent's state folder (its history and its log) is a 4 MiB tmpfs
    mounted in a mount namespace of the agent's own; the test fills it through
    /proc/PID/root, then frees it."""
    require(("--mount",))
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    topology = fastapi_topology(tmp_path / "topology.toml", service.port)
    state = sandbox.root / "state" / "tailnet-agent"
    state.mkdir(parents=True)
    prefix = namespaced(("--mount",), 'mount -t tmpfs -o size=4m tmpfs "$1"', str(state))
    with running_agent(sandbox, topology, "-v", prefix=prefix) as agent:
        seen = inside(agent.process.pid, state)  # the tmpfs, as the agent sees it
        scratch = tmp_path / "copy"
        agent.wait(lambda: _sweeps_copied(seen, scratch) >= 2, "no sweeps in the history")
        filler = _fill(seen)
        said = agent.wait_line("the history cannot be written", "disk is full")
        assert "going on without it" in said
        agent.wait_line("the log file", "cannot be written", "No space left on device")
        _goes_on(agent, 3)  # the monitor sweeps on, and says it once
        assert len(agent.lines("the history cannot be written")) == 1, agent.said()
        assert len(agent.lines("the log file", "cannot be written")) == 1, agent.said()
        filler.unlink()  # space again
        back = agent.wait_line("the history is written again")
        assert "writes lost since" in back and "disk is full" in back
        agent.wait_line("the log file", "is written again", "writes lost since")
        before = _sweeps_copied(seen, scratch)
        agent.wait(lambda: _sweeps_copied(seen, scratch) > before, "no sweep recorded after")
        log_text = (seen / "log" / LOG_FILE_NAME).read_text(encoding="utf-8")
        assert "is written again" in log_text
        assert "Traceback" not in agent.said()
    assert sandbox.outside_connections() == []
