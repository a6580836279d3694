"""The exception -> (state, reason, detail) table, for failures loopback cannot produce
(name resolution, unreachable hosts, Windows error codes, TLS)."""

from __future__ import annotations

import errno
import socket
import ssl

import httpx
import pytest

from agent.core.model import ProbeState, Reason
from agent.edges.probes._errors import classify, one_line, seconds_text


def _wrapped(inner: BaseException) -> httpx.ConnectError:
    """Wrap an error the way httpx/httpcore/anyio do on a failed connect."""
    try:
        try:
            try:
                raise inner
            except OSError as exc:
                raise OSError("All connection attempts failed") from exc
        except OSError as exc:
            raise RuntimeError(exc) from None  # httpcore-style: the error as an argument
    except RuntimeError as exc:
        try:
            raise httpx.ConnectError("All connection attempts failed") from exc
        except httpx.ConnectError as outer:
            return outer


def _win(code: int) -> OSError:
    exc = OSError(0, "windows error")
    exc.winerror = code  # type: ignore[attr-defined]
    return exc


CASES = [
    ("refused", ConnectionRefusedError(errno.ECONNREFUSED, "refused"), Reason.REFUSED, "refused"),
    ("refused-wrapped", _wrapped(ConnectionRefusedError(111, "x")), Reason.REFUSED, "refused"),
    ("dns", socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Reason.DNS, "resolve"),
    ("dns-wrapped", _wrapped(socket.gaierror(-3, "Temporary failure")), Reason.DNS, "resolve"),
    ("host-unreachable", OSError(errno.EHOSTUNREACH, "No route"), Reason.TIMEOUT, "host unre"),
    ("net-unreachable", OSError(errno.ENETUNREACH, "unreachable"), Reason.TIMEOUT, "network"),
    ("reset", ConnectionResetError(errno.ECONNRESET, "reset"), Reason.PROTOCOL_MISMATCH, "reset"),
    ("read-error-without-cause", httpx.ReadError("x"), None, None),
    ("broken-pipe", BrokenPipeError(errno.EPIPE, "pipe"), Reason.PROTOCOL_MISMATCH, "reset"),
    ("kernel-timeout", OSError(errno.ETIMEDOUT, "timed out"), Reason.TIMEOUT, "within 3 s"),
    ("deadline", TimeoutError(), Reason.TIMEOUT, "within 3 s"),
    ("httpx-read-timeout", httpx.ReadTimeout("slow"), Reason.NO_ANSWER, "connected, but no"),
    ("httpx-connect-timeout", httpx.ConnectTimeout("slow"), Reason.TIMEOUT, "within 3 s"),
    (
        "not-http",
        httpx.RemoteProtocolError("illegal status line"),
        Reason.PROTOCOL_MISMATCH,
        "HTTP",
    ),
    ("win-refused", _win(1225), Reason.REFUSED, "refused"),
    ("win-host-unreachable", _win(1232), Reason.TIMEOUT, "host unreachable"),
    ("win-reset", _win(64), Reason.PROTOCOL_MISMATCH, "reset"),
    ("wsa-refused", OSError(10061, "WSAECONNREFUSED"), Reason.REFUSED, "refused"),
    ("wsa-host-unreachable", OSError(10065, "WSAEHOSTUNREACH"), Reason.TIMEOUT, "host"),
    ("tls", ssl.SSLCertVerificationError(1, "certificate verify failed"), Reason.TLS, "TLS"),
]


@pytest.mark.parametrize(
    ("exc", "reason", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_mapping(exc: BaseException, reason: Reason | None, words: str | None) -> None:
    state, got_reason, detail = classify(exc, 3.0, "macmini")
    if reason is None:  # an error with no cause to go on
        assert (state, got_reason) == (ProbeState.UNKNOWN, Reason.ERROR)
        return
    assert (state, got_reason) == (ProbeState.DOWN, reason)
    assert words is not None and words in detail
    assert "\n" not in detail


def test_the_read_error_of_a_reset_connection_is_a_protocol_mismatch() -> None:
    try:
        try:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        except OSError as exc:
            raise httpx.ReadError("reset") from exc
    except httpx.ReadError as outer:
        assert classify(outer, 3.0)[1] is Reason.PROTOCOL_MISMATCH


def test_unexpected_errors_are_unknown_with_type_and_message() -> None:
    assert classify(ValueError("bad\nthing"), 3.0) == (
        ProbeState.UNKNOWN,
        Reason.ERROR,
        "ValueError: bad thing",
    )


def test_an_unmapped_os_error_names_the_innermost_os_error() -> None:
    state, reason, detail = classify(_wrapped(OSError(errno.EADDRNOTAVAIL, "Cannot assign")), 3)
    assert (state, reason) == (ProbeState.UNKNOWN, Reason.ERROR)
    assert "Cannot assign" in detail


def test_dns_detail_names_the_host() -> None:
    detail = classify(socket.gaierror(-2, "Name or service not known"), 3.0, "macmini")[2]
    assert detail == "cannot resolve macmini: Name or service not known"


@pytest.mark.parametrize(
    ("seconds", "text"), [(3.0, "3"), (0.3, "0.3"), (2.5, "2.5"), (10, "10")], ids=str
)
def test_seconds_text(seconds: float, text: str) -> None:
    assert seconds_text(seconds) == text


def test_one_line_cuts_long_text() -> None:
    line = one_line("a\n" * 300, 50)
    assert len(line) == 50 and line.endswith("…") and "\n" not in line
