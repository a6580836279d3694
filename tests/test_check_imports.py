"""`check` loads only what a one-shot check uses (issue 12 item 7: its start-up is most of
the time a 505-endpoint check takes beside blackbox_exporter).

The installed agent checks the loopback network of test_check_e2e (the stand-in `tailscale`)
as a table, as JSON and as a Nagios line; at exit it writes every module it had loaded. Each
module named here was once loaded by check through a top-level import and cost its start
(docs/benchmarks.md "Start-up"): a top-level import that brings one back fails here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import AgentSandbox
from tests.test_check_e2e import loopback_network, write_topology
from tests.test_headless_imports import RECORD_MODULES

# module -> who needs it (and so imports it where it is used)
NOT_ON_THE_CHECK_PATH = {
    "agent.core.report.history": "the history command's list",
    "agent.core.events": "the monitor's events (keys.announce, snooze's snooze_*_event)",
    "agent.core.evidence": "the monitor's events",
    "agent.core.confirm": "the monitor's state machine",
    "agent.core.share_view": "--share-view",
    "agent.core.starter": "init's starter topology",
    "agent.core.menu": "the tray's menu",
}
NAGIOS = "agent.core.report.nagios"  # the plugin line: --nagios only


def _check_modules(sandbox: AgentSandbox, *args: str) -> tuple[int, str, set[str]]:
    """`check ARGS` over the loopback network: its exit code, its stdout, what it loaded."""
    modules_out = sandbox.root / "modules.txt"
    with loopback_network() as ports:
        topology = str(write_topology(sandbox, ports))
        argv = [sys.executable, "-c", RECORD_MODULES, str(modules_out), "check", *args]
        done = subprocess.run(
            sandbox.command([*argv, "--topology", topology]),
            env=sandbox.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    return done.returncode, done.stdout + done.stderr, set(modules_out.read_text().split())


@pytest.mark.parametrize(
    ("args", "says"), [((), "FastAPI"), (("--json",), '"overall": "green"')], ids=["table", "json"]
)
def test_check_loads_nothing_beyond_its_path(
    sandbox: AgentSandbox, args: tuple[str, ...], says: str
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    code, output, modules = _check_modules(sandbox, *args)
    assert code == 0 and says in output, output
    # the listing saw the path itself: the probes, the snoozes read, the diagnoses, the report
    assert {
        "agent.edges.probes.http",
        "agent.core.snooze",
        "agent.core.drift",
        "agent.core.exposure",
        "agent.core.report.check",
    } <= modules
    loaded = {
        m: why for m, why in {**NOT_ON_THE_CHECK_PATH, NAGIOS: "--nagios"}.items() if m in modules
    }
    assert loaded == {}, loaded
    assert sandbox.outside_connections() == []


def test_check_nagios_loads_its_line_and_nothing_else_beyond_the_path(
    sandbox: AgentSandbox,
) -> None:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    code, output, modules = _check_modules(sandbox, "--nagios")
    assert code == 0 and output.startswith("TAILNET OK"), output
    assert NAGIOS in modules
    loaded = {m: why for m, why in NOT_ON_THE_CHECK_PATH.items() if m in modules}
    assert loaded == {}, loaded
    assert sandbox.outside_connections() == []
