"""The one table of hints (agent.core.hints): every failure has its hint, and the sentences
made from the table carry exactly one."""

from __future__ import annotations

import pytest

from agent.core.hints import (
    BACKEND_STATES,
    NOT_THE_CLI,
    REASONS,
    TAILSCALE,
    TAILSCALE_UP,
    reason_hint,
    state_detail,
    tailscale_detail,
    tailscale_hint,
    tailscale_title,
)
from agent.core.model import BackendState, Reason, TailscaleProblem


@pytest.mark.parametrize("reason", list(Reason))
def test_every_failure_reason_has_what_happened_and_a_hint(reason: Reason) -> None:
    what, hint = REASONS[reason]
    assert what
    assert hint
    assert reason_hint(reason, "woosuns-mac-mini") == hint.format(host="woosuns-mac-mini")


@pytest.mark.parametrize("problem", list(TailscaleProblem))
def test_every_tailscale_problem_has_a_title_and_a_hint(problem: TailscaleProblem) -> None:
    assert (tailscale_title(problem), tailscale_hint(problem)) == TAILSCALE[problem]
    assert all(TAILSCALE[problem])


@pytest.mark.parametrize("state", [s for s in BackendState if s is not BackendState.RUNNING])
def test_every_state_but_running_has_a_sentence_with_its_hint(state: BackendState) -> None:
    fact, hint = BACKEND_STATES[state]
    assert state_detail(state) == f"{fact} ({hint})"


def test_running_has_no_sentence_and_no_table_entry() -> None:
    assert BackendState.RUNNING not in BACKEND_STATES
    assert state_detail(BackendState.RUNNING, "Running") == ""


def test_a_state_this_agent_does_not_know_is_named_with_the_q1_hint() -> None:
    detail = state_detail(BackendState.UNKNOWN, "Hibernating")
    assert detail.startswith("Tailscale reports a state this agent does not know ('Hibernating')")
    assert detail.endswith(TAILSCALE_UP)


def test_peer_offline_hint_names_the_host() -> None:
    assert reason_hint(Reason.PEER_OFFLINE, "sweetlife") == f"{TAILSCALE_UP} on sweetlife"
    assert reason_hint(None, "sweetlife") == ""


def test_tailscale_detail_is_the_fact_with_the_problems_one_hint() -> None:
    problem = TailscaleProblem.CLI_FAILED
    assert tailscale_detail(problem, "`tailscale status` failed (exit 1): boom") == (
        f"`tailscale status` failed (exit 1): boom ({tailscale_hint(problem)})"
    )
    assert tailscale_detail(problem) == f"{tailscale_title(problem)} ({tailscale_hint(problem)})"


def test_tailscale_detail_takes_the_callers_better_hint_instead_of_the_tables() -> None:
    detail = tailscale_detail(TailscaleProblem.CLI_FAILED, "/x cannot be run", hint=NOT_THE_CLI)
    assert detail == f"/x cannot be run ({NOT_THE_CLI})"
