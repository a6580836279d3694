"""The planner on a first run (core.first_run): nothing of the example is probed, and a
Tailscale that is down here still says so first. Plain data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.core.first_run import first_run_check, is_first_run
from agent.core.model import (
    Access,
    BackendState,
    Defaults,
    ProbeState,
    Reason,
    TailnetView,
    TailscaleProblem,
)
from agent.core.plan import FIRST_RUN_DETAIL, plan_sweep
from tests.core.sample_network import ALL_DIRECT, TOPOLOGY

NOT_INSTALLED = TailnetView(backend_state=None, problem=TailscaleProblem.NOT_INSTALLED)
STOPPED = TailnetView(backend_state=BackendState.STOPPED, problem=TailscaleProblem.NOT_RUNNING)
SERVICES = sum(len(n.services) for n in TOPOLOGY.nodes)


def test_a_first_run_plans_no_probe_and_says_why_for_each_service() -> None:
    plan = plan_sweep(TOPOLOGY, None, ALL_DIRECT, now=5.0, first_run=True)
    assert plan.targets == ()
    assert len(plan.skipped) == SERVICES
    assert {(r.state, r.reason, r.detail, r.at) for r in plan.skipped.values()} == {
        (ProbeState.SKIPPED, None, FIRST_RUN_DETAIL, 5.0)
    }
    assert len(plan.addresses) == SERVICES  # still shown where they would be


def test_the_same_machine_without_a_first_run_probes_every_peer() -> None:
    plan = plan_sweep(TOPOLOGY, None, ALL_DIRECT, now=5.0)
    assert len(plan.targets) == SERVICES and plan.skipped == {}


def test_a_first_run_without_tailscale_says_tailscale_first_and_probes_not_even_loopback() -> None:
    local = replace(TOPOLOGY, defaults=replace(Defaults(), access=Access.LOCALHOST_AND_TAILSCALE))
    plan = plan_sweep(local, "desktop", NOT_INSTALLED, first_run=True)
    assert plan.targets == ()
    assert {r.reason for r in plan.skipped.values()} == {Reason.TAILSCALE_DOWN}
    assert len(plan_sweep(local, "desktop", NOT_INSTALLED).targets) > 0  # the control


@pytest.mark.parametrize(
    ("tailnet", "self_id", "bundled", "expected"),
    [
        (ALL_DIRECT, None, True, True),  # a stranger to the example
        (NOT_INSTALLED, "desktop", True, True),  # no Tailscale, --node given
        (STOPPED, None, True, True),
        (ALL_DIRECT, "desktop", True, False),  # one of its nodes: the Sparklio users
        (ALL_DIRECT, None, False, False),  # a topology of the user's own
        (NOT_INSTALLED, None, False, False),
    ],
)
def test_is_first_run(
    tailnet: TailnetView, self_id: str | None, bundled: bool, expected: bool
) -> None:
    assert is_first_run(tailnet, self_id, bundled=bundled) is expected


def test_a_first_runs_check_says_nothing_was_probed_and_what_to_do() -> None:
    verdict, instead = first_run_check("This machine is not in the Sparklio example network")
    assert verdict.startswith("This machine is not in the Sparklio example network: nothing")
    assert "tailnet-agent init" in instead and "tailnet-agent demo" in instead
