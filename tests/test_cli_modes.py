"""The long-running modes from the command line: tray without a display, headless, logging."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import AgentSandbox, installed_agent
from tests.helpers.servers import http_server


def test_version(sandbox: AgentSandbox) -> None:
    done = sandbox.run("--version")
    assert done.returncode == 0 and done.stdout.startswith("tailnet-agent ")


@pytest.mark.parametrize("args", [[], ["tray"]], ids=["plain", "tray"])
def test_tray_without_a_display_says_how_to_run_headless(
    sandbox: AgentSandbox, args: list[str]
) -> None:
    for key in ("DISPLAY", "WAYLAND_DISPLAY"):
        sandbox.env.pop(key, None)
    done = sandbox.run(*args, timeout=30)
    assert done.returncode == 3
    assert "run --headless" in done.stderr
    assert "Traceback" not in done.stderr


def test_headless_logs_to_a_file_and_stops_on_sigint(sandbox: AgentSandbox) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    sandbox.env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no desktop: notifications go to the log
    log_file = Path(sandbox.env["XDG_STATE_HOME"]) / "tailnet-agent" / "log" / "tailnet-agent.log"
    with http_server({"/": "ok"}) as (_, port):
        topo = sandbox.root / "topology.toml"
        topo.write_text(
            'version = 1\nname = "t"\n[defaults]\ninterval = "1s"\n'
            '[[nodes]]\nid = "desktop"\nhostname = "sweetlife"\nip = "127.0.0.1"\n'
            f'[[nodes.services]]\nname = "Ollama"\nport = {port}\ncheck = "http"\n',
            encoding="utf-8",
        )
        proc = subprocess.Popen(
            [installed_agent(), "run", "--headless", "--topology", str(topo)],
            env=sandbox.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if log_file.exists() and "state green" in log_file.read_text():
                    break
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
            else:
                pytest.fail(f"no 'state green' in {log_file}")
            sweeps = _sweeps(sandbox)
            while _sweeps(sandbox) < sweeps + 2:  # a few sweeps more: said once, not per sweep
                assert proc.poll() is None and time.monotonic() < deadline + 10
                time.sleep(0.1)
            second = sandbox.run("run", "--headless", "--topology", str(topo), timeout=30)
            assert second.returncode == 3
            assert f"already running (pid {proc.pid})" in second.stderr
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, stderr
    assert "state green: All good" in stderr  # the console shows it too
    text = log_file.read_text()
    # Startup says once which notifier, which topology (its name, file and interval) and
    # which node this machine is, and how that was found.
    said = [line for line in text.splitlines() if "notifications via" in line or
            "notifications through" in line or "notifications go to" in line]  # fmt: skip
    # No session bus here: no desktop backend can deliver, and it says so once.
    assert len(said) == 1 and said[0].endswith("notifications go to the log only"), text
    watching = [line for line in text.splitlines() if " watching " in line]
    assert len(watching) == 1, text
    assert f"watching 't' from {topo}: 1 node, 1 service, a sweep every 1s" in watching[0]
    node = [line for line in text.splitlines() if "this machine is" in line]
    assert len(node) == 1 and node[0].endswith("this machine is node desktop (its Tailscale IP "
                                               "127.0.0.1)"), text  # fmt: skip
    assert "stopping on SIGINT" in text
    assert sandbox.outside_connections() == []


def _sweeps(sandbox: AgentSandbox) -> int:
    """How many times the stand-in tailscale was asked: one per sweep."""
    log = sandbox.root / "fake-tailscale.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


# ==== help =====================================================================

COMMANDS = [
    ["check"], ["run"], ["tray"], ["demo"], ["history"], ["topology"], ["topology", "validate"],
    ["topology", "show"], ["autostart"], ["autostart", "enable"], ["autostart", "disable"],
    ["autostart", "status"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_a_description_and_its_exit_codes(
    sandbox: AgentSandbox, command: list[str]
) -> None:
    done = sandbox.run(*command, "--help")
    assert done.returncode == 0, done.stderr
    _, _, rest = done.stdout.partition("\n\n")  # after the usage
    description = rest.split("\n\n", 1)[0]
    assert description.strip() and not description.startswith(("options:", "positional")), (
        done.stdout
    )
    assert "exit codes:" in done.stdout, done.stdout


def test_check_help_lists_the_nagios_exit_codes(sandbox: AgentSandbox) -> None:
    out = sandbox.run("check", "--help").stdout
    codes = out.split("exit codes:", 1)[1]
    for code, word in [("0", "green"), ("1", "amber"), ("2", "red"), ("3", "grey")]:
        assert any(line.split()[:1] == [code] and word in line for line in codes.splitlines()), out


def test_validate_takes_the_file_as_every_command_does_or_as_an_argument(
    sandbox: AgentSandbox,
) -> None:
    path = sandbox.root / "t.toml"
    path.write_text('version = 1\n[[nodes]]\nid = "a"\nhostname = "a"\nip = "127.0.0.1"\n')
    for args in (["topology", "validate", str(path)],
                 ["topology", "validate", "--topology", str(path)],
                 ["--topology", str(path), "topology", "validate"]):  # fmt: skip
        done = sandbox.run(*args)
        assert (done.returncode, done.stdout) == (0, f"OK: {path}: 1 nodes, 0 services\n"), args
    both = sandbox.run("topology", "validate", str(path), "--topology", str(path))
    assert both.returncode == 3
    assert "give the file once" in both.stderr, both.stderr
