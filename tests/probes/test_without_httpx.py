"""A sweep of plain HTTP targets never imports httpx (issue 12 item 7: 4 MiB of RSS and a
twentieth of `check`'s start-up) nor h11 (the wire reads answers with httptools), and still
says the same of every answer.

Each case probes real loopback servers from a fresh interpreter (the test process has
httpx loaded long since) and lists what that interpreter imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from agent.core.model import ProbeState, Reason
from agent.edges.probes import _errors, make_http_client
from agent.edges.probes._run import REQUEST_HEADERS
from tests.helpers.servers import Route, black_hole, closed_port, http_server
from tests.probes.test_transport import reply, scripted_server

PROBE_IN_A_FRESH_INTERPRETER = """
import asyncio, json, sys
from agent.core.model import CheckKind, ProbeTarget, Service
from agent.edges.probes import run_probes

targets = [
    ProbeTarget("node", Service(name, port, CheckKind.HTTP, path=path), host, 1.0)
    for name, host, port, path in json.loads(sys.argv[1])
]
results = asyncio.run(run_probes(targets))
print(json.dumps({
    "results": {t.service.name: [r.state.value, r.reason and r.reason.value, r.detail]
                for t, r in zip(targets, results)},
    "httpx": sorted(
        name for name, module in sys.modules.items()
        if module is not None and name.partition(".")[0] in ("httpx", "h11")
    ),
}))
"""


def probe_fresh(targets: list[tuple[str, str, int, str]]) -> tuple[dict[str, list[str]], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE_IN_A_FRESH_INTERPRETER, json.dumps(targets)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)
    return answer["results"], answer["httpx"]


@contextmanager
def servers() -> Iterator[dict[str, tuple[str, int]]]:
    routes = {"/health": "ok", "/teapot": Route(503, b"overloaded")}
    with (
        http_server(routes) as web,
        black_hole() as hole,
        scripted_server(reply(b"SSH-2.0-OpenSSH_9.2\r\n")) as (not_http, _),
    ):
        yield {"web": web, "hole": hole, "not_http": not_http}


def test_answers_decided_by_their_status_and_failures_load_no_httpx() -> None:
    with servers() as at:
        web_host, web_port = at["web"]
        results, httpx_modules = probe_fresh(
            [
                ("up", web_host, web_port, "/health"),
                ("refused", "127.0.0.1", closed_port(), "/"),
                ("silent", *at["hole"], "/"),
                ("ssh", *at["not_http"], "/"),
            ]
        )
    assert httpx_modules == []
    assert results["up"] == [ProbeState.UP.value, None, "HTTP 200"]
    assert results["refused"][:2] == [ProbeState.DOWN.value, Reason.REFUSED.value]
    assert results["silent"][:2] == [ProbeState.DOWN.value, Reason.NO_ANSWER.value]
    assert results["ssh"][:2] == [ProbeState.DOWN.value, Reason.PROTOCOL_MISMATCH.value]


def test_a_body_to_read_loads_httpx_then() -> None:
    # a failing status reads the start of the body as evidence, through httpx.Response
    with servers() as at:
        results, httpx_modules = probe_fresh([("busy", *at["web"], "/teapot")])
    assert "httpx" in httpx_modules
    assert results["busy"] == [
        ProbeState.DOWN.value,
        Reason.HTTP_STATUS.value,
        "HTTP 503 (expected < 400)",
    ]


def test_the_client_sends_the_plain_paths_headers() -> None:
    assert make_http_client().headers.raw == list(REQUEST_HEADERS)


def _refused() -> OSError:
    return ConnectionRefusedError(111, "Connection refused")


@pytest.mark.parametrize(
    ("wire", "httpx_error"),
    [
        (_errors.WireReadTimeout("timed out"), httpx.ReadTimeout("timed out")),
        (_errors.WireWriteTimeout("timed out"), httpx.WriteTimeout("timed out")),
        (_errors.WireConnectTimeout("no connection"), httpx.ConnectTimeout("no connection")),
        (
            _errors.WireRemoteProtocolError("Server disconnected without sending a response."),
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
        ),
        (_errors.WireRemoteProtocolError("illegal status line"), httpx.RemoteProtocolError("x")),
        (_errors.WireReadError("reset"), httpx.ReadError("reset")),
        (_errors.WireLocalProtocolError("bad"), httpx.LocalProtocolError("bad")),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("connected", [False, True])
def test_a_wire_error_reads_as_its_httpx_twin(
    wire: Exception, httpx_error: Exception, connected: bool
) -> None:
    got = _errors.classify(wire, 2.0, "127.0.0.1", connected=connected)
    want = _errors.classify(httpx_error, 2.0, "127.0.0.1", connected=connected)
    if isinstance(wire, _errors.WireLocalProtocolError | _errors.WireReadError):
        # no type of their own in the table: both are described by their type and message
        assert got[:2] == want[:2]
    else:
        assert got == want
    assert wire.httpx_name == type(httpx_error).__name__  # type: ignore[attr-defined]


def test_a_wire_connect_error_reads_by_its_cause() -> None:
    try:
        try:
            raise _refused()
        except OSError as exc:
            raise _errors.WireConnectError(str(exc)) from exc
    except _errors.WireConnectError as wire:
        assert _errors.classify(wire, 2.0)[1] is Reason.REFUSED
