"""`run --headless` on a server loads only what its path uses (issue 12 item 7: idle RSS).

The real agent runs over the loopback network of test_check_e2e until its first green
sweep, then stops on SIGTERM; at exit it writes every module it had loaded. Each module named
here was once imported at the top of a module on this path and cost the idle agent memory
(docs/benchmarks.md "Start-up"): a top-level import that brings one back fails here.
"""

from __future__ import annotations

import sys

from tests.conftest import AgentSandbox
from tests.test_server_install import headless_until_green

# module -> who needs it (and so imports it where it is used)
NOT_ON_THE_HEADLESS_PATH = {
    "agent.desktop.autostart": "the tray's Start at login, and the demo's command",
    "plistlib": "macOS's LaunchAgent backend",
    "xml.parsers.expat": "plistlib",
    "difflib": "the topology's 'did you mean' for a misspelt key or value",
    "decimal": "a topology duration no unit spells exactly",
    "agent.edges.share_view": "--share-view's endpoint",
    "agent.edges.peer_views": "--share-view's client",
    "http.server": "--share-view's endpoint",
    "socketserver": "--share-view's endpoint",
    "html": "http.server",
    "prometheus_client": "--metrics",
    "dbus_fast": "a desktop session bus",
    # (httpx itself is on this path: the network's Ollama is asked for its details, an
    # answer's body; tests/probes/test_without_httpx.py shows a sweep that needs none)
    "agent.edges.topology_fetch": "a URL topology",
}

RECORD_MODULES = """
import atexit, sys
from pathlib import Path

out = Path(sys.argv[1])
atexit.register(
    lambda: out.write_text("\\n".join(n for n, m in sys.modules.items() if m is not None))
)
from agent.cli import main

sys.argv = ["tailnet-agent", *sys.argv[2:]]
sys.exit(main())
"""


def test_headless_on_a_server_loads_nothing_beyond_its_path(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    for server_has_none in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY"):
        sandbox.env.pop(server_has_none, None)
    sandbox.env["XDG_RUNTIME_DIR"] = str(sandbox.root)  # no "bus" socket in it
    modules_out = sandbox.root / "modules.txt"
    code, lines = headless_until_green(
        sandbox, [sys.executable, "-c", RECORD_MODULES, str(modules_out)]
    )
    assert code == 0, "".join(lines)
    modules = set(modules_out.read_text().split())
    # the listing saw the path itself: the probes, the history and the log ran
    assert {"agent.edges.probes.http", "agent.edges.history", "sqlite3", "asyncio"} <= modules
    loaded = {m: why for m, why in NOT_ON_THE_HEADLESS_PATH.items() if m in modules}
    assert loaded == {}, loaded
    assert sandbox.outside_connections() == []
