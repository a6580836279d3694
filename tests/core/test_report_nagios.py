"""The Nagios plugin line, from judged sweeps: status words, text, labels and perfdata."""

from __future__ import annotations

import pytest

from agent.core.health import judge
from agent.core.model import Node, Topology
from agent.core.report.nagios import nagios_unknown, perf_label, render_nagios, selection_error
from tests.core.sample_network import (
    ALL_DIRECT,
    FASTAPI,
    LAPTOP,
    MACMINI,
    REFUSED,
    TIMEOUT,
    TOPOLOGY,
    judged,
    peer,
    running,
)


def test_green_is_ok_with_every_service_in_the_perfdata() -> None:
    result = render_nagios(judged(ALL_DIRECT))
    text, perf = result.line.split(" | ")
    assert (result.exit_code, text) == (0, "TAILNET OK - 3 nodes, 4 of 4 services up")
    assert perf.split() == [
        "ollama=1;;;;", "latency_ollama=1.2ms;;;;", "next_js=1;;;;", "latency_next_js=1.2ms;;;;",
        "fastapi=1;;;;", "latency_fastapi=1.2ms;;;;", "redis=1;;;;", "latency_redis=1.2ms;;;;",
    ]  # fmt: skip


def test_a_critical_service_down_is_critical_and_names_the_reason() -> None:
    result = render_nagios(judged(ALL_DIRECT, FastAPI=REFUSED, Redis=TIMEOUT))
    assert result.exit_code == 2
    assert result.line.startswith(
        "TAILNET CRITICAL - Mac mini: FastAPI down (refused), Redis down (timeout) | ollama=1;;;; "
    )
    assert "fastapi=0;;;; latency_fastapi=U;;;;" in result.line


def test_a_service_alone_is_judged_alone() -> None:
    snapshot = judged(running(peer(LAPTOP), peer(MACMINI, cur_addr="")), FastAPI=REFUSED)
    whole = render_nagios(snapshot, target="macmini")
    redis = render_nagios(snapshot, service="Redis")
    assert whole.exit_code == 2 and "relayed" in whole.line
    assert redis.line.startswith("TAILNET OK - Redis on Mac mini up | redis=1;;;;")


def test_a_laptop_away_is_ok_not_an_alarm() -> None:
    offline = running(peer(LAPTOP, online=False, active=False), peer(MACMINI))
    result = render_nagios(judged(offline, Next_js=REFUSED), target="laptop")
    assert result.exit_code == 0, result.line


def test_labels_are_safe_and_unique() -> None:
    assert perf_label("MinIO Console") == "minio_console"
    assert perf_label("Next.js") == "next_js"
    assert perf_label("데이터") == "service"
    second = Node("mini2", "Mini 2", "m2", "100.64.0.9", services=(FASTAPI,))
    twins = judge(Topology("twins", (MACMINI, second)), ALL_DIRECT, None, {}, {}, now=1.0)
    line = render_nagios(twins, service="FastAPI").line
    assert "macmini_fastapi=U;;;;" in line and "mini2_fastapi=U;;;;" in line
    assert line.startswith("TAILNET UNKNOWN - not checked")  # no results: nothing learnt


def test_no_pipe_ever_reaches_the_text() -> None:
    assert nagios_unknown("a | b\nc").line == "TAILNET UNKNOWN - a / b c"


@pytest.mark.parametrize(
    ("target", "service", "words"),
    [
        ("nas", None, "no such node"),
        (None, "Grafana", "no such service"),
        ("laptop", "Redis", "node laptop"),
    ],
)
def test_selection_errors_name_what_exists(
    target: str | None, service: str | None, words: str
) -> None:
    error = selection_error(TOPOLOGY, target, service)
    assert error is not None and words in error and "known:" in error
    assert render_nagios(judged(ALL_DIRECT), target=target, service=service).exit_code == 3
