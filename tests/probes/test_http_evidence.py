"""The HTTP probe records the facts behind its verdict: the status it met and, for a
failing answer, the start of the body it read — scrubbed, bounded, and from the one
request it sends (agent.core.evidence takes them into the events)."""

from __future__ import annotations

from agent.core.model import ProbeState, Reason
from tests.helpers.servers import Route, closed_port, http_server
from tests.probes.support import probe_once, target

BUSY = '{"detail": "upstream busy", "token": "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"}'


def test_a_failing_status_keeps_the_status_and_a_scrubbed_excerpt_of_its_body() -> None:
    with http_server({"/health": Route(503, BUSY)}) as addr:
        result = probe_once(target("http", addr, path="/health", expect_status=(200,)))
    assert (result.state, result.reason, result.http_status) == (
        ProbeState.DOWN,
        Reason.HTTP_STATUS,
        503,
    )
    assert "upstream busy" in result.excerpt
    assert "sk-live" not in result.excerpt and "9f8e7d6c" not in result.excerpt


def test_a_body_mismatch_keeps_the_body_it_read_and_a_long_body_is_cut() -> None:
    with http_server({"/health": "status: starting " + "x" * 5000}) as addr:
        result = probe_once(target("http", addr, path="/health", expect_body="ok"))
    assert result.reason is Reason.BODY_MISMATCH and result.http_status == 200
    assert result.excerpt.startswith("status: starting") and len(result.excerpt) <= 120


def test_a_good_answer_keeps_its_status_and_no_body() -> None:
    with http_server({"/health": "ok, secret=hunter2"}) as addr:
        result = probe_once(target("http", addr, path="/health"))
    assert (result.state, result.http_status, result.excerpt) == (ProbeState.UP, 200, "")


def test_a_socket_error_has_no_status_and_a_body_that_never_comes_keeps_the_status() -> None:
    refused = probe_once(target("http", ("127.0.0.1", closed_port())))
    assert (refused.reason, refused.http_status, refused.excerpt) == (Reason.REFUSED, None, "")
    with http_server({"/slow": Route(503, "a" * 64, drip=5.0)}) as addr:
        result = probe_once(target("http", addr, path="/slow", timeout=3.0))
    # the verdict is the status, not a timeout: the excerpt is read briefly or not at all
    assert (result.reason, result.http_status) == (Reason.HTTP_STATUS, 503)
