"""End to end: the installed `tailnet-agent demo`, the whole walk at a high speed.

The real agent runs in the sandbox with the loopback-only guard loaded and no session bus
(so notifications go to the log, one line each). What is asserted is the sequence — the
steps, the colours the agent showed, the notifications it gave — never how long anything
took; and that nothing was sent off loopback, that a real agent's lock held meanwhile
stopped nothing, and that the demo's files stayed in its own folder.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from agent.edges.history import History
from agent.edges.single_instance import InstanceLock
from tests.conftest import AgentSandbox, installed_agent
from tests.test_server_install import GUI_MODULES, run_without_desktop

SPEED = "50"
TIMEOUT_S = 240  # a hang guard: at this speed the walk takes seconds
APP_STATE = ("state", "tailnet-agent")

COLOURS = ["green", "amber", "green", "red", "green", "red", "green"]
NOTIFICATIONS = [
    ("Desktop — GPU Worker: relayed via DERP 'tok'", False),
    ("Desktop — GPU Worker: direct again", False),
    ("Mac mini — Backend Server: FastAPI down", True),
    ("Mac mini — Backend Server: FastAPI up", False),
    ("Mac mini — Backend Server offline", True),
    ("Mac mini — Backend Server online", False),
]


def without_a_desktop(sandbox: AgentSandbox, tmp_path: Path) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        sandbox.env.pop(name, None)
    runtime = tmp_path / "runtime"  # no "bus" socket in it
    runtime.mkdir(mode=0o700)
    sandbox.env["XDG_RUNTIME_DIR"] = str(runtime)


def state_folder(sandbox: AgentSandbox) -> Path:
    return sandbox.root.joinpath(*APP_STATE)


def assert_the_whole_walk(stderr: str) -> None:
    lines = stderr.splitlines()
    steps = [int(m[1]) for line in lines if (m := re.search(r"demo step (\d)/7: ", line))]
    assert steps == [1, 2, 3, 4, 5, 6, 7], stderr
    over = [i for i, line in enumerate(lines) if "the walk is over" in line]
    seventh = next(i for i, line in enumerate(lines) if "demo step 7/7" in line)
    assert len(over) == 1 and over[0] > seventh, stderr
    assert not [line for line in lines if line.startswith("WARNING agent.demo.walk")], stderr
    named = [int(n) for n in re.findall(r"watching 'Sparklio demo (\d)/7: ", stderr)]
    assert named == [1, 2, 3, 4, 5, 6, 7], stderr  # the topology's name (tooltip, menu title)
    colours = [m[1] for line in lines if (m := re.match(r"INFO agent\.app: state (\w+):", line))]
    shown = [c for i, c in enumerate(colours) if i == 0 or c != colours[i - 1]]
    assert shown == COLOURS, stderr
    notes = [line for line in lines if "notification (log only" in line]
    assert len(notes) == len(NOTIFICATIONS), "\n".join(notes)
    for line, (title, critical) in zip(notes, NOTIFICATIONS, strict=True):
        assert f": {title}: " in line, line
        assert ("(log only, critical)" in line) is critical, line


def test_the_headless_demo_walks_every_step_on_loopback_beside_a_running_agent(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    without_a_desktop(sandbox, tmp_path)
    real_lock = state_folder(sandbox) / "agent.lock"
    with InstanceLock(real_lock):  # a real agent runs meanwhile
        done = sandbox.run("demo", "--headless", "--speed", SPEED, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert_the_whole_walk(done.stderr)
    assert sandbox.outside_connections() == []
    # Its files are its own: the real agent's history and log were not touched.
    demo = state_folder(sandbox) / "demo"
    assert sorted(p.name for p in state_folder(sandbox).iterdir()) == ["agent.lock", "demo"]
    assert (demo / "log" / "tailnet-agent.log").read_text(encoding="utf-8").count("demo step") == 7
    with History(demo / "history.sqlite3") as history:
        kinds = [r.kind for r in history.events() if r.announce]
    assert kinds == [
        "link_relayed", "link_direct", "service_down", "service_up", "peer_offline",
        "peer_online",
    ]  # fmt: skip


def test_two_demos_at_once_each_walk_on_a_loopback_block_of_their_own(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    """Two users' demos (two state folders) on one machine at the same time: each takes a
    127.84.N.0/24 of its own, so neither answers for the other's stopped FastAPI or Mac mini,
    and both walks show every step and every notification."""
    without_a_desktop(sandbox, tmp_path)
    other = AgentSandbox(tmp_path / "other", dict(sandbox.env))
    for key, folder in (("XDG_STATE_HOME", "state"), ("HOME", "home"), ("NETGUARD_LOG", "ng")):
        other.env[key] = str(other.root / folder)
    other.root.mkdir()
    argv = [installed_agent(), "demo", "--headless", "--speed", SPEED]
    demos = [
        subprocess.Popen(argv, env=box.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for box in (sandbox, other)
    ]  # fmt: skip
    try:
        outputs = [demo.communicate(timeout=TIMEOUT_S)[1] for demo in demos]
    finally:
        for demo in demos:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
    blocks = []
    for demo, stderr in zip(demos, outputs, strict=True):
        assert demo.returncode == 0, stderr
        assert_the_whole_walk(stderr)
        blocks.append(set(re.findall(r"macmini/FastAPI (127\.84\.\d+)\.3:8000", stderr)))
    assert len(blocks[0]) == len(blocks[1]) == 1 and blocks[0] != blocks[1], blocks
    assert sandbox.outside_connections() == [] and other.outside_connections() == []


def test_a_second_demo_is_refused_while_one_runs(sandbox: AgentSandbox) -> None:
    with InstanceLock(state_folder(sandbox) / "demo" / "walk.lock"):
        done = sandbox.run("demo", "--headless", "--speed", SPEED, timeout=TIMEOUT_S)
    assert done.returncode == 3, done.stderr
    assert "a demo is already running here" in done.stderr
    assert "demo step" not in done.stderr
    assert sandbox.outside_connections() == []


def test_a_server_install_runs_the_readmes_demo_headless_and_says_why(
    sandbox: AgentSandbox, tmp_path: Path
) -> None:
    """`tailnet-agent demo` (no --headless) where the desktop libraries are absent."""
    without_a_desktop(sandbox, tmp_path)
    done, modules = run_without_desktop(sandbox, "demo", "--speed", SPEED, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert "no tray here, so the demo runs headless, in this terminal (" in done.stderr
    assert "the tray needs the desktop libraries (PIL is not installed)" in done.stderr
    assert_the_whole_walk(done.stderr)
    assert sandbox.outside_connections() == []
    assert modules & GUI_MODULES == set()


def test_a_speed_that_is_not_a_positive_number_is_a_usage_error(sandbox: AgentSandbox) -> None:
    for speed in ("0", "-2", "fast", "nan"):
        done = sandbox.run("demo", "--headless", "--speed", speed)
        assert done.returncode == 3, (speed, done.stderr)
        assert "--speed" in done.stderr
