"""The fault tests' shared fixtures: the Mac mini's FastAPI as a FaultyService, and the real
agent (`run --headless -v`) watching it, green before the test begins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import AgentSandbox
from tests.helpers.faulty_service import FaultyService, faulty_service
from tests.helpers.running_agent import MACMINI, RunningAgent, fastapi_topology, running_agent

__all__ = ["agent", "service"]


@pytest.fixture
def service() -> Iterator[FaultyService]:
    with faulty_service(MACMINI) as server:
        yield server


@pytest.fixture
def agent(sandbox: AgentSandbox, tmp_path: Path, service: FaultyService) -> Iterator[RunningAgent]:
    sandbox.use_fake_tailscale("loopback_all_direct.json")
    topology = fastapi_topology(tmp_path / "topology.toml", service.port)
    with running_agent(sandbox, topology, "-v") as running:
        running.wait_line("state green")
        yield running
    assert sandbox.outside_connections() == []
