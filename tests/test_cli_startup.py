"""`tailnet-agent --version` and `--help` start in a blink: they load argparse and the package's
light modules only (issue 12 item 7; the figures are tests/bench/startup.py's).

Each case runs in a fresh interpreter and lists what it imported, so a heavy import added at
the top of agent/cli.py (the probes, httpx, asyncio, the edges) fails here instead of silently
costing every start.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What the command line may load before it knows which command runs.
ALLOWED_AGENT_MODULES = {"agent", "agent.cli", "agent.core", "agent.core.constants", "agent.errors"}
HEAVY = ("httpx", "h11", "asyncio", "uvloop", "platformdirs", "logging", "sqlite3", "tomllib")

LIST_MODULES = """
import json, sys
from agent.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
sys.stdout.flush()
print("\\n" + json.dumps(sorted(sys.modules)))
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
