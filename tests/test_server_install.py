"""A server install (`pip install tailnet-agent`, no `desktop` extra) runs check and headless.

The agent runs with the desktop libraries made absent (tests/helpers/without_desktop.py: their
imports fail as when they are not installed) over the loopback Sparklio network of
test_check_e2e; .ci/run also installs the package without extras into a fresh venv and runs
it there.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from tests.conftest import HELPERS, AgentSandbox
from tests.test_check_e2e import check_json, loopback_network, write_topology

WITHOUT_DESKTOP = HELPERS / "without_desktop.py"
GUI_MODULES = {"agent.desktop.tray", "agent.desktop.icons"}


def run_without_desktop(
    sandbox: AgentSandbox, *args: str, timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    modules = sandbox.root / "modules.txt"
    done = subprocess.run(
        [sys.executable, str(WITHOUT_DESKTOP), str(modules), *args],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done, set(modules.read_text().split())


def test_check_runs_without_the_desktop_libraries(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    with loopback_network() as ports:
        topology = str(write_topology(sandbox, ports))
        done, modules = run_without_desktop(sandbox, "check", "--topology", topology)
        code, data = check_json(sandbox, "--topology", topology)  # the full install agrees
    assert done.returncode == 0, done.stderr
    assert "Mac mini" in done.stdout and "FastAPI" in done.stdout
    assert (code, data["overall"]) == (0, "green")
    assert modules & GUI_MODULES == set()
    assert "agent.edges.probes" in modules  # the helper saw the agent's imports


def test_check_help_loads_no_probe_and_no_http_library(sandbox: AgentSandbox) -> None:
    done, modules = run_without_desktop(sandbox, "check", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: tailnet-agent check" in done.stdout
    probing = {m for m in modules if m.startswith(("httpx", "agent.edges.probes", "agent.sweep"))}
    assert probing == set()
    assert modules & GUI_MODULES == set()


def headless_until_green(sandbox: AgentSandbox, argv: list[str]) -> tuple[int, list[str]]:
    """Run `argv ... run --headless` over the loopback network of test_check_e2e until its
    first green state, then stop it with SIGTERM: its exit code and its log lines."""
    with loopback_network() as ports:
        topology = str(write_topology(sandbox, ports))
        agent = subprocess.Popen(
            [*argv, "run", "--headless", "--topology", topology],
            env=sandbox.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert agent.stderr is not None
        lines: list[str] = []
        green = threading.Event()

        def read() -> None:
            assert agent.stderr is not None
            for line in agent.stderr:
                lines.append(line)
                if "state green" in line:
                    green.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert green.wait(30), "".join(lines)
        finally:
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(20)
            reader.join(5)
            agent.stderr.close()
    return code, lines


def test_headless_runs_without_the_desktop_libraries(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    modules_out = sandbox.root / "modules.txt"
    code, lines = headless_until_green(
        sandbox, [sys.executable, str(WITHOUT_DESKTOP), str(modules_out)]
    )
    assert code == 0, "".join(lines)
    assert not any("Traceback" in line for line in lines), "".join(lines)
    assert "notifications go to the log only" in "".join(lines)
    assert set(modules_out.read_text().split()) & GUI_MODULES == set()
    assert sandbox.outside_connections() == []


def test_the_tray_without_the_desktop_extra_says_how_to_get_it(sandbox: AgentSandbox) -> None:
    sandbox.env["DISPLAY"] = ":99"  # never reached: the missing libraries are told first
    done, _ = run_without_desktop(sandbox, "tray")
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip() == (
        "tailnet-agent: the tray needs the desktop libraries (PIL is not installed): "
        "pip install 'tailnet-agent[desktop]', or run `tailnet-agent run --headless`"
    )
