"""`tailnet-agent --version` and `--help` start in a blink: they load argparse and the package's
light modules only (issue 12 item 7; the figures are tests/bench/startup.py's).

Each case runs in a fresh interpreter and lists what it imported, so a heavy import added at
the top of agent/cli.py (the probes, httpx, asyncio, the edges) fails here instead of silently
costing every start. `run --headless` on a server (no session bus) loads no bus library.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# What the command line may load before it knows which command runs.
ALLOWED_AGENT_MODULES = {"agent", "agent.cli", "agent.core", "agent.core.constants", "agent.errors"}
HEAVY = (
    "httpx",
    "h11",
    "httptools",
    "asyncio",
    "uvloop",
    "platformdirs",
    "logging",
    "sqlite3",
    "tomllib",
)

LIST_MODULES = """
import json, sys
from agent.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
sys.stdout.flush()
print("\\n" + json.dumps(sorted(name for name, m in sys.modules.items() if m is not None)))
"""


def _modules_after(argv: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LIST_MODULES.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["check", "--help"]])
def test_version_and_help_load_only_argparse_and_the_light_modules(argv: list[str]) -> None:
    modules = _modules_after(argv)
    agent_modules = {m for m in modules if m == "agent" or m.startswith("agent.")}
    assert agent_modules <= ALLOWED_AGENT_MODULES, sorted(agent_modules - ALLOWED_AGENT_MODULES)
    assert "agent.cli" in agent_modules and "argparse" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == [], loaded


def test_a_command_still_loads_what_it_needs() -> None:
    # the same listing sees the imports when they happen: `topology show` loads the topology
    modules = _modules_after(["topology", "show"])
    assert {"agent.edges.topology_source", "agent.core.topology", "logging"} <= modules


HEADLESS_MODULES = """
import json, sys
import agent.app
from agent.desktop.notify import choose_notifier
notifier = choose_notifier("linux")
loaded = sorted(n for n, m in sys.modules.items() if m is not None)
print("\\n" + json.dumps([notifier.name, loaded]))
"""


def test_headless_without_a_session_bus_loads_no_bus_library_and_no_exporter(
    tmp_path: Path,
) -> None:
    # the server case of `run --headless` (RSS: docs/benchmarks.md): no bus, so neither
    # dbus-fast nor plyer is loaded to find that out; prometheus-client only with --metrics
    env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY")}
    env["XDG_RUNTIME_DIR"] = str(tmp_path)  # no "bus" socket in it
    done = subprocess.run(
        [sys.executable, "-c", HEADLESS_MODULES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    name, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert name == "log"
    bus_or_exporter = ("dbus_fast", "plyer", "prometheus_client")
    loaded = sorted(m for m in modules if m.split(".")[0] in bus_or_exporter)
    assert loaded == [], loaded
