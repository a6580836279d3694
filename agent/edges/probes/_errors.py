"""How a failed probe is explained: OS, wire, httpx and ssl exceptions -> (state, reason,
detail); and the wire's own exceptions (WireError: `_wire`'s, without httpx).

One table for every probe kind, so "connection refused" reads the same whether
an HTTP, Redis or plain TCP probe met it. The mapping (DESIGN.md, "Failure
reasons"):

- ECONNREFUSED                    -> DOWN REFUSED  "connection refused"
- the probe's own deadline, wire or httpx timeouts, ETIMEDOUT, before a connection was made
                                  -> DOWN TIMEOUT  "no answer within 3 s" (a firewall, or the
                                     host unreachable)
- the same once the connection was made (the host is reachable, the service hangs)
                                  -> DOWN NO_ANSWER "connected, but no answer within 3 s"
- EHOSTUNREACH / ENETUNREACH     -> DOWN TIMEOUT  "host unreachable" / "network unreachable"
- name resolution (gaierror)      -> DOWN DNS
- ECONNRESET / ECONNABORTED / EPIPE after the connection was accepted
                                  -> DOWN PROTOCOL_MISMATCH: something accepted the connection
                                     and dropped it instead of answering the protocol (a reset
                                     in answer to the SYN is reported by the OS as refused)
- (Wire)RemoteProtocolError       -> DOWN PROTOCOL_MISMATCH "not an HTTP server on this port"
- httpx.DecodingError             -> DOWN BODY_MISMATCH: an HTTP answer whose body is not in
                                     the Content-Encoding it names (gzip that is not gzip)
- ssl errors                      -> DOWN TLS
- anything else                   -> UNKNOWN ERROR with the exception type and message

Windows reports some of these as WSA error numbers or `winerror` codes; both are
recognised. httpx's exceptions are looked at only when httpx is loaded (a sweep of plain
targets never loads it, so none of its exceptions can be met). Details are facts only:
the hint a person reads with them comes from the one table in agent.core.hints.
"""

from __future__ import annotations

import errno
import socket
import ssl
import sys
from collections.abc import Iterator

from agent.core.model import ProbeState, Reason

__all__ = [
    "Finding",
    "WireConnectError",
    "WireConnectTimeout",
    "WireError",
    "WireLocalProtocolError",
    "WireReadError",
    "WireReadTimeout",
    "WireRemoteProtocolError",
    "WireWriteError",
    "WireWriteTimeout",
    "classify",
    "no_answer_finding",
    "one_line",
    "refused_finding",
    "seconds_text",
    "timeout_finding",
]

Finding = tuple[ProbeState, Reason | None, str]
"""What a probe found: its state, the reason (None when up) and the fact it met, in one
line ("connection refused", "HTTP 503"); never advice, which agent.core.hints adds."""

MAX_DETAIL = 200

REFUSED_DETAIL = "connection refused"
RESET_DETAIL = "connection reset by the service"
NOT_HTTP_DETAIL = "not an HTTP server on this port"
UNDECODABLE_DETAIL = "the body is not in the Content-Encoding the answer names"


class WireError(Exception):
    """A plain exchange's failure; `httpx_name` is the httpx exception it stands for."""

    httpx_name = "TransportError"


class WireConnectError(WireError):
    httpx_name = "ConnectError"


class WireConnectTimeout(WireError):
    httpx_name = "ConnectTimeout"


class WireReadTimeout(WireError):
    httpx_name = "ReadTimeout"


class WireWriteTimeout(WireError):
    httpx_name = "WriteTimeout"


class WireReadError(WireError):
    httpx_name = "ReadError"


class WireWriteError(WireError):
    httpx_name = "WriteError"


class WireRemoteProtocolError(WireError):
    """The answer is not HTTP (or the server hung up before answering)."""

    httpx_name = "RemoteProtocolError"


class WireLocalProtocolError(WireError):
    httpx_name = "LocalProtocolError"


def _codes(*names: str) -> frozenset[int]:
    return frozenset(getattr(errno, name) for name in names if hasattr(errno, name))


# errno values (POSIX names, and the WSA numbers Windows sockets report).
_REFUSED = _codes("ECONNREFUSED", "WSAECONNREFUSED") | {10061}
_HOST_UNREACHABLE = _codes("EHOSTUNREACH", "EHOSTDOWN", "WSAEHOSTUNREACH") | {10065}
_NET_UNREACHABLE = _codes("ENETUNREACH", "ENETDOWN", "WSAENETUNREACH") | {10051}
_RESET = _codes("ECONNRESET", "ECONNABORTED", "EPIPE", "WSAECONNRESET", "WSAECONNABORTED") | {
    10053,
    10054,
}
_TIMED_OUT = _codes("ETIMEDOUT", "WSAETIMEDOUT") | {10060}
# Windows system error codes (OSError.winerror) met by the proactor event loop.
_WIN_REFUSED = {1225}  # ERROR_CONNECTION_REFUSED
_WIN_HOST_UNREACHABLE = {1232}  # ERROR_HOST_UNREACHABLE
_WIN_NET_UNREACHABLE = {1231}  # ERROR_NETWORK_UNREACHABLE
_WIN_RESET = {64, 1236}  # ERROR_NETNAME_DELETED, ERROR_CONNECTION_ABORTED
_WIN_TIMED_OUT = {121}  # ERROR_SEM_TIMEOUT


def seconds_text(seconds: float) -> str:
    """3.0 -> "3", 0.25 -> "0.25"."""
    return f"{seconds:g}"


def one_line(text: str, limit: int = MAX_DETAIL) -> str:
    """Collapse whitespace to one line and cut it to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def timeout_finding(timeout_s: float) -> Finding:
    """No connection in time: a firewall drops it, or the host is unreachable."""
    return ProbeState.DOWN, Reason.TIMEOUT, f"no answer within {seconds_text(timeout_s)} s"


def no_answer_finding(timeout_s: float) -> Finding:
    """Connected, then silence: the host is reachable, the service hangs."""
    return (
        ProbeState.DOWN,
        Reason.NO_ANSWER,
        f"connected, but no answer within {seconds_text(timeout_s)} s",
    )


def refused_finding() -> Finding:
    return ProbeState.DOWN, Reason.REFUSED, REFUSED_DETAIL


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what led to it: cause, wrapped errors, group members, context."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            todo.append(current.__cause__)
        # httpcore wraps the original error as an argument and hides the context.
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        if current.__context__ is not None:
            todo.append(current.__context__)


def _os_finding(exc: OSError, timeout_s: float, host: str, connected: bool) -> Finding | None:
    if isinstance(exc, socket.gaierror):
        why = exc.strerror or str(exc)
        return ProbeState.DOWN, Reason.DNS, one_line(f"cannot resolve {host}: {why}")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        why = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
        return ProbeState.DOWN, Reason.TLS, one_line(f"TLS error: {why}")
    code = exc.errno
    win = getattr(exc, "winerror", None)
    if isinstance(exc, ConnectionRefusedError) or code in _REFUSED or win in _WIN_REFUSED:
        return refused_finding()
    if code in _HOST_UNREACHABLE or win in _WIN_HOST_UNREACHABLE:
        return ProbeState.DOWN, Reason.TIMEOUT, "host unreachable"
    if code in _NET_UNREACHABLE or win in _WIN_NET_UNREACHABLE:
        return ProbeState.DOWN, Reason.TIMEOUT, "network unreachable"
    if (
        isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError)
        or code in _RESET
        or win in _WIN_RESET
    ):
        return ProbeState.DOWN, Reason.PROTOCOL_MISMATCH, RESET_DETAIL
    if isinstance(exc, TimeoutError) or code in _TIMED_OUT or win in _WIN_TIMED_OUT:
        return no_answer_finding(timeout_s) if connected else timeout_finding(timeout_s)
    return None


def _describe(exc: BaseException) -> str:
    message = str(exc)
    name = type(exc).__name__
    return one_line(f"{name}: {message}" if message else name)


def _kind(exc: BaseException) -> str:
    """The wire's or httpx's failures that say what happened by their type alone."""
    if isinstance(exc, WireReadTimeout | WireWriteTimeout):
        return "read_or_write_timeout"
    if isinstance(exc, TimeoutError | WireConnectTimeout):
        return "timeout"
    if isinstance(exc, WireRemoteProtocolError):
        return "not_http"
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return ""
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
        return "read_or_write_timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "not_http"
    if isinstance(exc, httpx.DecodingError):
        return "undecodable"
    return ""


def classify(
    exc: BaseException, timeout_s: float, host: str = "", *, connected: bool = False
) -> Finding:
    """Explain an exception met while probing; never raises. `connected`: the probe had
    its connection when it failed (a timeout then means the service hangs)."""
    kind = _kind(exc)
    if kind == "read_or_write_timeout":
        return no_answer_finding(timeout_s)
    if kind == "timeout":
        return no_answer_finding(timeout_s) if connected else timeout_finding(timeout_s)
    if kind == "not_http":
        if "without sending" in str(exc):
            return (
                ProbeState.DOWN,
                Reason.PROTOCOL_MISMATCH,
                f"{NOT_HTTP_DETAIL} (it closed the connection without an answer)",
            )
        return ProbeState.DOWN, Reason.PROTOCOL_MISMATCH, NOT_HTTP_DETAIL
    if kind == "undecodable":
        return ProbeState.DOWN, Reason.BODY_MISMATCH, UNDECODABLE_DETAIL
    innermost_os: OSError | None = None
    for link in _chain(exc):
        if isinstance(link, OSError):
            finding = _os_finding(link, timeout_s, host, connected)
            if finding is not None:
                return finding
            innermost_os = link
    return ProbeState.UNKNOWN, Reason.ERROR, _describe(innermost_os or exc)
