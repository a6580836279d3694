"""agent.edges.tailscale: finding the CLI and running it, against the real stand-in executable."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.core import notify_policy
from agent.core.events import tailscale_stopped_event
from agent.core.model import BackendState, Link, TailscaleProblem
from agent.core.tailnet import link_of, parse_status_json
from agent.edges import child_process, tailscale
from agent.edges.tailscale import (
    NOT_INSTALLED_DETAIL,
    TAILSCALE_ENV,
    find_cli,
    install_locations,
    read_status,
)

TESTS = Path(__file__).resolve().parent
FAKE_DIR = TESTS / "helpers" / "fake_tailscale"
FAKE = FAKE_DIR / "tailscale"
FIXTURES = TESTS / "fixtures" / "tailscale"

HANG_GUARD_S = 10.0


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean stand-in environment; returns the path of the call log."""
    for var in ("FAKE_TAILSCALE_JSON", "FAKE_TAILSCALE_MODE", "FAKE_TAILSCALE_LOG"):
        monkeypatch.delenv(var, raising=False)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_TAILSCALE_LOG", str(log))
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(FIXTURES / "running_all_direct.json"))
    return log


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def wait_until(cond: Callable[[], bool], timeout_s: float = HANG_GUARD_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class SpawnSpy:
    """Wraps subprocess.Popen where agent.edges.child_process starts the CLI, to keep the
    real processes it starts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        real = subprocess.Popen

        def spy(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
            proc: subprocess.Popen[bytes] = real(*args, **kwargs)
            self.procs.append(proc)
            return proc

        monkeypatch.setattr(child_process.subprocess, "Popen", spy)


def test_stand_in_is_executable() -> None:
    assert os.access(FAKE, os.X_OK), f"chmod +x {FAKE}"
    assert FAKE.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    assert shutil.which("python3"), "the stand-in needs python3 on PATH (Debian: python3)"


# ==== read_status against the stand-in =========================================

OK_TABLE = [
    ("running_all_direct", BackendState.RUNNING, None, {Link.DIRECT}),
    ("running_mac_relayed", BackendState.RUNNING, None, {Link.DIRECT, Link.RELAY}),
    ("running_laptop_offline", BackendState.RUNNING, None, {Link.DIRECT, Link.OFFLINE}),
    ("stopped", BackendState.STOPPED, TailscaleProblem.NOT_RUNNING, set()),
    ("needs_login", BackendState.NEEDS_LOGIN, TailscaleProblem.NOT_RUNNING, set()),
    ("loopback_all_direct", BackendState.RUNNING, None, {Link.DIRECT}),
]


@pytest.mark.parametrize(
    ("fixture", "state", "problem", "link_kinds"), OK_TABLE, ids=[r[0] for r in OK_TABLE]
)
def test_ok_mode_prints_the_fixture(
    fake_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    fixture: str,
    state: BackendState,
    problem: TailscaleProblem | None,
    link_kinds: set[Link],
) -> None:
    path = FIXTURES / f"{fixture}.json"
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(path))
    view = asyncio.run(read_status(str(FAKE)))
    assert view == parse_status_json(path.read_text(encoding="utf-8"))
    assert view.backend_state is state
    assert view.problem is problem
    assert {link_of(p)[0] for p in view.peers} == link_kinds
    assert calls(fake_env) == [["status", "--json"]]


def test_explicit_ok_mode_and_reread_between_calls(
    fake_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    status = tmp_path / "status.json"
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", "ok")
    monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(status))
    shutil.copyfile(FIXTURES / "running_all_direct.json", status)
    first = asyncio.run(read_status(str(FAKE)))
    shutil.copyfile(FIXTURES / "running_mac_relayed.json", status)
    second = asyncio.run(read_status(str(FAKE)))
    assert [link_of(p) for p in first.peers] == [(Link.DIRECT, ""), (Link.DIRECT, "")]
    assert (Link.RELAY, "tok") in [link_of(p) for p in second.peers]
    assert len(calls(fake_env)) == 2


def test_fail_mode_is_cli_failed_with_stderr(
    fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", "fail")
    view = asyncio.run(read_status(str(FAKE)))
    assert view.problem is TailscaleProblem.CLI_FAILED
    assert "failed to connect to local tailscaled" in view.detail
    assert "exit 1" in view.detail
    assert view.backend_state is None
    assert not view.running


def test_hang_mode_times_out_and_the_child_is_gone(
    fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", "hang")
    spy = SpawnSpy(monkeypatch)
    started = time.monotonic()
    view = asyncio.run(read_status(str(FAKE), timeout_s=0.5))
    assert time.monotonic() - started < HANG_GUARD_S
    assert view.problem is TailscaleProblem.TIMED_OUT
    assert "0.5 s" in view.detail
    (proc,) = spy.procs
    assert proc.returncode is not None  # killed and reaped
    assert not pid_alive(proc.pid)


def test_cancelled_read_kills_the_child(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", "hang")
    spy = SpawnSpy(monkeypatch)

    async def scenario() -> None:
        task = asyncio.create_task(read_status(str(FAKE), timeout_s=60))
        deadline = time.monotonic() + HANG_GUARD_S
        while not calls(fake_env):  # the stand-in has started and logged its call
            assert time.monotonic() < deadline, "stand-in never started"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    (proc,) = spy.procs
    assert proc.returncode is not None
    assert not pid_alive(proc.pid)


def test_garbage_mode_is_bad_output(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", "garbage")
    view = asyncio.run(read_status(str(FAKE)))
    assert view.problem is TailscaleProblem.BAD_OUTPUT
    assert "not JSON" in view.detail


def test_ok_mode_without_json_is_cli_failed(
    fake_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_TAILSCALE_JSON")
    view = asyncio.run(read_status(str(FAKE)))
    assert view.problem is TailscaleProblem.CLI_FAILED
    assert "FAKE_TAILSCALE_JSON is not set" in view.detail


def test_no_cli_is_not_installed() -> None:
    view = asyncio.run(read_status(None))
    assert view.problem is TailscaleProblem.NOT_INSTALLED
    assert view.detail == NOT_INSTALLED_DETAIL


def test_missing_executable_is_not_installed(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-tailscale"
    view = asyncio.run(read_status(str(missing)))
    assert view.problem is TailscaleProblem.NOT_INSTALLED
    assert view.detail.startswith("Tailscale is not installed here: ")
    assert str(missing) in view.detail and "https://tailscale.com/download" in view.detail


def test_non_executable_file_is_not_installed(tmp_path: Path) -> None:
    copy = tmp_path / "tailscale"
    shutil.copyfile(FAKE, copy)  # copyfile does not copy the mode: not executable
    assert not os.access(copy, os.X_OK)
    view = asyncio.run(read_status(str(copy)))
    assert view.problem is TailscaleProblem.NOT_INSTALLED
    assert "permission denied" in view.detail
    assert str(copy) in view.detail


def test_directory_is_not_installed(tmp_path: Path) -> None:
    view = asyncio.run(read_status(str(tmp_path)))
    assert view.problem is TailscaleProblem.NOT_INSTALLED
    assert "permission denied" in view.detail


def test_executable_that_is_not_a_program_is_cli_failed(tmp_path: Path) -> None:
    bogus = tmp_path / "tailscale"
    bogus.write_bytes(b"\x00\x01\x02 not a program\n")
    bogus.chmod(bogus.stat().st_mode | stat.S_IXUSR)
    view = asyncio.run(read_status(str(bogus)))
    assert view.problem is TailscaleProblem.CLI_FAILED
    assert str(bogus) in view.detail
    assert "format" in view.detail.lower()


@pytest.mark.parametrize(
    ("program", "problem", "text"),
    [
        ("false", TailscaleProblem.CLI_FAILED, "no error message"),
        ("true", TailscaleProblem.BAD_OUTPUT, "not JSON"),
    ],
    ids=["exit-1-silent", "exit-0-empty"],
)
def test_silent_programs(program: str, problem: TailscaleProblem, text: str) -> None:
    path = shutil.which(program)
    assert path, f"`{program}` is missing (Debian: coreutils)"
    view = asyncio.run(read_status(path))
    assert view.problem is problem
    assert text in view.detail


def _popen_spy(
    monkeypatch: pytest.MonkeyPatch, platform: str, **extra: int
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Where agent.edges.child_process spawns: the calls, each refused as a missing file."""
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def spy(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        seen.append((args, kwargs))
        raise FileNotFoundError(args[0][0])

    fake = types.SimpleNamespace(
        Popen=spy, DEVNULL=subprocess.DEVNULL, PIPE=subprocess.PIPE, **extra
    )
    monkeypatch.setattr(child_process, "subprocess", fake)
    monkeypatch.setattr(child_process, "sys", types.SimpleNamespace(platform=platform))
    return seen


def test_runs_an_argv_list_with_stdin_devnull_and_no_window_on_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _popen_spy(monkeypatch, "win32", CREATE_NO_WINDOW=0x08000000)
    view = asyncio.run(read_status("C:\\Program Files\\Tailscale\\tailscale.exe"))
    assert view.problem is TailscaleProblem.NOT_INSTALLED
    ((args, kwargs),) = seen
    assert args == (["C:\\Program Files\\Tailscale\\tailscale.exe", "status", "--json"],)
    assert kwargs["creationflags"] == 0x08000000
    assert kwargs["stdin"] == subprocess.DEVNULL
    assert "shell" not in kwargs


def test_no_creationflags_off_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _popen_spy(monkeypatch, "linux")
    asyncio.run(read_status("/usr/bin/tailscale"))
    assert "creationflags" not in seen[0][1]


# ==== the stand-in itself ======================================================


@pytest.mark.parametrize(
    "args",
    [[], ["status"], ["netcheck"], ["status", "--json", "--peers=false"], ["up"]],
    ids=["none", "status-text", "netcheck", "extra-flag", "up"],
)
def test_stand_in_rejects_other_commands(fake_env: Path, args: list[str]) -> None:
    done = subprocess.run(
        [str(FAKE), *args], capture_output=True, text=True, timeout=HANG_GUARD_S, check=False
    )
    assert done.returncode == 2
    assert "USAGE" in done.stderr
    assert done.stdout == ""
    assert calls(fake_env) == [args]


# ==== find_cli =================================================================


def no_which(name: str) -> str | None:
    return None


def make_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    return str(path)


def test_find_cli_order(tmp_path: Path) -> None:
    installed = make_file(tmp_path / "install" / "tailscale")
    on_path = "/opt/path/tailscale"
    env = {TAILSCALE_ENV: "/from/env/tailscale"}

    def which(name: str) -> str | None:
        assert name == "tailscale"
        return on_path

    kw: dict[str, Any] = {"platform": "linux", "candidates": [installed]}
    assert find_cli("/explicit/tailscale", env, which=which, **kw) == "/explicit/tailscale"
    assert find_cli(None, env, which=which, **kw) == "/from/env/tailscale"
    assert find_cli(None, {}, which=which, **kw) == on_path
    assert find_cli(None, {}, which=no_which, **kw) == installed
    assert find_cli(None, {}, which=no_which, platform="linux", candidates=[]) is None


def test_find_cli_blank_values_are_ignored(tmp_path: Path) -> None:
    assert find_cli("", {TAILSCALE_ENV: "  "}, which=no_which, candidates=[]) is None


def test_find_cli_first_existing_candidate_wins(tmp_path: Path) -> None:
    (tmp_path / "a-dir").mkdir()
    second = make_file(tmp_path / "second" / "tailscale")
    third = make_file(tmp_path / "third" / "tailscale")
    candidates = [str(tmp_path / "missing"), str(tmp_path / "a-dir"), second, third]
    assert find_cli(None, {}, which=no_which, candidates=candidates) == second


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_find_cli_uses_install_locations_by_default(
    platform: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    target = make_file(tmp_path / "Tailscale" / "tailscale.exe")

    def fake_locations(plat: str, env: dict[str, str]) -> tuple[str, ...]:
        seen.append((plat, dict(env)))
        return (str(tmp_path / "missing"), target)

    monkeypatch.setattr(tailscale, "install_locations", fake_locations)
    env = {"ProgramFiles": str(tmp_path)}
    assert find_cli(None, env, platform=platform, which=no_which) == target
    assert seen == [(platform, env)]


def test_find_cli_real_path_lookup() -> None:
    def which(name: str) -> str | None:
        return shutil.which(name, path=str(FAKE_DIR))

    assert find_cli(None, {}, which=which, candidates=[]) == str(FAKE)


def test_find_cli_then_read_status_via_env(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = find_cli(None, {TAILSCALE_ENV: str(FAKE)}, which=no_which, candidates=[])
    view = asyncio.run(read_status(cli))
    assert view.running
    assert calls(fake_env) == [["status", "--json"]]


INSTALL_TABLE = [
    ("windows-default", "win32", {}, ("C:\\Program Files\\Tailscale\\tailscale.exe",)),
    (
        "windows-programfiles",
        "win32",
        {"ProgramFiles": "D:\\Apps"},
        ("D:\\Apps\\Tailscale\\tailscale.exe", "C:\\Program Files\\Tailscale\\tailscale.exe"),
    ),
    (
        "windows-32bit-python",
        "win32",
        {"ProgramFiles": "C:\\Program Files (x86)", "ProgramW6432": "C:\\Program Files"},
        (
            "C:\\Program Files\\Tailscale\\tailscale.exe",
            "C:\\Program Files (x86)\\Tailscale\\tailscale.exe",
        ),
    ),
    (
        "windows-env-case-insensitive",
        "win32",
        {"PROGRAMFILES": "E:\\PF"},
        ("E:\\PF\\Tailscale\\tailscale.exe", "C:\\Program Files\\Tailscale\\tailscale.exe"),
    ),
    (
        "macos",
        "darwin",
        {"ProgramFiles": "ignored"},
        ("/Applications/Tailscale.app/Contents/MacOS/Tailscale", "/usr/local/bin/tailscale"),
    ),
    ("linux", "linux", {}, ()),
]


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [r[1:] for r in INSTALL_TABLE],
    ids=[r[0] for r in INSTALL_TABLE],
)
def test_install_locations(platform: str, env: dict[str, str], expected: tuple[str, ...]) -> None:
    assert install_locations(platform, env) == expected


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "no-such-tailscale")


def _not_executable(tmp_path: Path) -> str:
    copy = tmp_path / "tailscale"
    shutil.copyfile(FAKE, copy)  # copyfile does not copy the mode: not executable
    return str(copy)


# Each way the real reader finds Tailscale unusable: (how, the stand-in's mode, its document).
UNUSABLE: list[Any] = [
    pytest.param(lambda _: None, "ok", None, TailscaleProblem.NOT_INSTALLED, id="no-cli-found"),
    pytest.param(_missing, "ok", None, TailscaleProblem.NOT_INSTALLED, id="path-gone"),
    pytest.param(_not_executable, "ok", None, TailscaleProblem.NOT_INSTALLED, id="not-runnable"),
    pytest.param(None, "fail", None, TailscaleProblem.CLI_FAILED, id="exits-non-zero"),
    pytest.param(None, "hang", None, TailscaleProblem.TIMED_OUT, id="hangs"),
    pytest.param(None, "garbage", None, TailscaleProblem.BAD_OUTPUT, id="garbage"),
    pytest.param(None, "half", None, TailscaleProblem.BAD_OUTPUT, id="half-a-document"),
    pytest.param(None, "ok", "stopped.json", TailscaleProblem.NOT_RUNNING, id="stopped"),
    pytest.param(None, "ok", "needs_login.json", TailscaleProblem.NOT_RUNNING, id="needs-login"),
]


@pytest.mark.parametrize(("cli", "mode", "document", "problem"), UNUSABLE)
def test_no_tailscale_notification_says_its_title_twice(
    fake_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cli: Callable[[Path], str | None] | None,
    mode: str,
    document: str | None,
    problem: TailscaleProblem,
) -> None:
    """The notification reads "TITLE: BODY" (and the log "TITLE — BODY"): the body is the
    reader's sentence without the title it may begin with."""
    monkeypatch.setenv("FAKE_TAILSCALE_MODE", mode)
    if document is not None:
        monkeypatch.setenv("FAKE_TAILSCALE_JSON", str(FIXTURES / document))
    view = asyncio.run(read_status(str(FAKE) if cli is None else cli(tmp_path), timeout_s=0.5))
    assert view.problem is problem and not view.running
    decision = notify_policy.decide(
        notify_policy.initial_policy(), [tailscale_stopped_event(view, 1.0)], 1.0
    )
    (shown,) = decision.notifications
    assert not shown.message.lower().startswith(shown.title.lower()), shown.message
    assert shown.title.lower() not in shown.message.lower(), shown.message
    assert shown.message.endswith("Peers cannot be checked until then"), shown.message


def test_the_title_cases_cover_every_tailscale_problem() -> None:
    assert {case.values[3] for case in UNUSABLE} == set(TailscaleProblem)
