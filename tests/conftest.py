"""Suite-wide fixtures: the installed agent as a subprocess, in a sandboxed environment.

Every agent process a test starts gets temp HOME/XDG folders (so no real
config, state or log is touched), the stand-in `tailscale` first on PATH when a
test asks for it, and the loopback-only network guard (tests/helpers/netguard),
which refuses and logs any connection to an address outside 127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers.netns import IsolatedNetwork

# Property tests: by default the same examples on every run (a failure is reproducible, and
# a flaky CI is a defect); HYPOTHESIS_PROFILE=dev for fresh random ones, and a thorough
# profile by hand: HYPOTHESIS_PROFILE=thorough tests/run tests/fuzz tests/core. No example
# database in the repo (.hypothesis/ is ignored; "ci" keeps none at all).
settings.register_profile("ci", max_examples=200, derandomize=True, database=None)
settings.register_profile("dev", max_examples=200)
settings.register_profile("thorough", max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")

HELPERS = Path(__file__).parent / "helpers"
FAKE_TAILSCALE_DIR = HELPERS / "fake_tailscale"
NETGUARD_DIR = HELPERS / "netguard"
TAILSCALE_FIXTURES = Path(__file__).parent / "fixtures" / "tailscale"


def installed_agent() -> str:
    """The `tailnet-agent` console script of the interpreter running the tests."""
    exe = Path(sys.executable).parent / "tailnet-agent"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: install the agent first (tests/run does: pip install -e .)")
    return str(exe)


@dataclass
class AgentSandbox:
    """An environment for agent subprocesses, and what they left behind."""

    root: Path
    env: dict[str, str]
    network: IsolatedNetwork | None = None  # set by `isolate`: agents run inside it

    @property
    def netguard_log(self) -> Path:
        return Path(self.env["NETGUARD_LOG"])

    def isolate(self, network: IsolatedNetwork) -> None:
        """Run this sandbox's agents (`run`, `command`) in `network`: a namespace with
        loopback alone, whose kernel reports every flow to outside (tests/helpers/netns)."""
        self.network = network

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` as it must be started: inside the sandbox's network when it has one."""
        return [*self.network.prefix, *argv] if self.network is not None else list(argv)

    def outside_connections(self) -> list[str]:
        """Addresses outside loopback that an agent process tried to reach (in an isolated
        sandbox, also every flow its kernel saw leave loopback)."""
        if self.network is not None:
            self.network.settle()
        if not self.netguard_log.exists():
            return []
        return [line.split()[1] for line in self.netguard_log.read_text().splitlines()]

    def use_fake_tailscale(self, status_json: Path | str | None = None, mode: str = "ok") -> None:
        self.env["PATH"] = f"{FAKE_TAILSCALE_DIR}{os.pathsep}{self.env['PATH']}"
        self.env["FAKE_TAILSCALE_MODE"] = mode
        self.env["FAKE_TAILSCALE_LOG"] = str(self.root / "fake-tailscale.log")
        if status_json is not None:
            path = Path(status_json)
            if not path.is_absolute():
                path = TAILSCALE_FIXTURES / path
            self.env["FAKE_TAILSCALE_JSON"] = str(path)

    def run(
        self, *args: str, timeout: float = 60, module: bool = False, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv: Sequence[str] = (
            [sys.executable, "-m", "agent", *args] if module else [installed_agent(), *args]
        )
        return subprocess.run(
            self.command(argv),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
            cwd=cwd,
        )


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[AgentSandbox]:
    root = tmp_path / "sandbox"
    root.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAILNET_AGENT_", "FAKE_TAILSCALE_", "XDG_"))
    }
    # A PATH with no real `tailscale` on it: only the stand-in, when a test adds it.
    path_dirs = [
        d
        for d in env.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "tailscale").exists()
    ]
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), *path_dirs]),
        HOME=str(root / "home"),
        XDG_CONFIG_HOME=str(root / "config"),
        XDG_STATE_HOME=str(root / "state"),
        XDG_DATA_HOME=str(root / "data"),
        XDG_CACHE_HOME=str(root / "cache"),
        PYTHONPATH=str(NETGUARD_DIR),
        NETGUARD_LOG=str(root / "netguard.log"),
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
    )
    yield AgentSandbox(root, env)
    assert shutil.which("tailscale", path=env["PATH"]) in (
        None,
        str(FAKE_TAILSCALE_DIR / "tailscale"),
    )
