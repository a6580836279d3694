"""The runbook's hints in one table: what a person can do about each failure.

Pure. The network's runbook (Q1 a node is offline: `tailscale up` on it; Q2 ping works
but the service does not: is it running, does the firewall let Tailscale through, is
the port right; Q3 slow: look for `direct`) is automated here, one hint per situation:

- `REASONS`: why a probe failed -> (what happened, in an event's words; the hint).
- `TAILSCALE`: why Tailscale is unusable on this machine -> (the short fact; the hint).
- `BACKEND_STATES`: tailscaled's state when it is not Running -> (the fact; the hint).
- `LISTEN_FIXES`: a server that listens beyond Tailscale -> the setting that binds it to
  the Tailscale IP (`listen_fix`, for the exposure audit).

Probes report facts ("connection refused", "no answer within 3 s"); `explain` adds the
hint where a failure is shown (the menu, the `check` table, the summary), `with_hint`
where a sentence is built. The Tailscale reader's detail is shown as it is (the summary,
the notification, `check --json`), so it is made once, when the status is read, by
`tailscale_detail` and `state_detail` from these tables. Nothing else writes a hint, so
a failure never carries two that contradict each other.
"""

from __future__ import annotations

from agent.core.model import BackendState, CheckKind, ProbeResult, Reason, Service, TailscaleProblem

__all__ = [
    "BACKEND_STATES",
    "DOWNLOAD_URL",
    "KEY_EXPIRY_HINT",
    "LINK_BROKEN",
    "LISTEN_FIXES",
    "NOT_THE_CLI",
    "REASONS",
    "RELAYED",
    "TAILSCALE",
    "TAILSCALE_UP",
    "explain",
    "key_expiry_hint",
    "link_broken_hint",
    "listen_fix",
    "peer_offline_hint",
    "reason_hint",
    "reason_text",
    "state_detail",
    "tailscale_detail",
    "tailscale_hint",
    "tailscale_title",
    "with_hint",
]

DOWNLOAD_URL = "https://tailscale.com/download"
TAILSCALE_UP = "run `tailscale up`"
NOT_THE_CLI = "is it the tailscale program? Name the right one with --tailscale PATH"
RELAYED = "look for `direct` in `tailscale status`"  # Q3: a DERP relay is the slow path
# A node key that expires logs its node out of the tailnet (tailscale.com/kb/1028/key-expiry).
KEY_EXPIRY_HINT = "`tailscale up --force-reauth` {where}, or disable expiry in the admin console"
# --share-view: only this machine fails while the other nodes reach the service.
LINK_BROKEN = (
    "the service is fine: check this machine's path to it — `tailscale ping {host}`, "
    "this machine's firewall or VPN"
)

# Reason -> (what happened, the hint). "{host}" is the node's hostname.
REASONS: dict[Reason, tuple[str, str]] = {
    Reason.REFUSED: ("refused the connection", "service not running?"),
    Reason.TIMEOUT: ("did not answer in time", "firewall or host unreachable?"),
    Reason.NO_ANSWER: (
        "accepted the connection but never answered",
        "the host is reachable, the service hangs: restart it or check its logs",
    ),
    Reason.HTTP_STATUS: (
        "answered with an error status",
        "the service reports a problem; check its logs",
    ),
    Reason.BODY_MISMATCH: (
        "answered, but not with the expected content",
        "the service is unhealthy, or something else answers there",
    ),
    Reason.PROTOCOL_MISMATCH: (
        "answered in another protocol",
        "something else answers on that port: is the port or the check kind wrong?",
    ),
    Reason.DNS: ("could not be found by name", "check the hostname and MagicDNS"),
    Reason.TLS: ("failed the TLS handshake", "check the certificate, or use http"),
    Reason.PEER_OFFLINE: (
        "cannot be reached: its node is offline in Tailscale",
        f"{TAILSCALE_UP} on {{host}}",
    ),
    Reason.TAILSCALE_DOWN: (
        "was not checked: Tailscale does not work on this machine",
        "fix Tailscale here first",
    ),
    Reason.ERROR: ("could not be checked", "see the log"),
}

# TailscaleProblem -> (the short fact, the hint).
TAILSCALE: dict[TailscaleProblem, tuple[str, str]] = {
    TailscaleProblem.NOT_INSTALLED: (
        "Tailscale is not installed here",
        f"install it from {DOWNLOAD_URL}, or name its CLI with --tailscale PATH",
    ),
    TailscaleProblem.NOT_RUNNING: ("Tailscale is not running here", TAILSCALE_UP),
    TailscaleProblem.CLI_FAILED: (
        "Tailscale cannot be reached here",
        "start Tailscale on this machine: the app, or the tailscaled service",
    ),
    TailscaleProblem.TIMED_OUT: (
        "Tailscale does not answer here",
        "tailscaled may be stuck; restart Tailscale",
    ),
    TailscaleProblem.BAD_OUTPUT: (
        "Tailscale cannot be read here",
        f"{NOT_THE_CLI}, or update Tailscale",
    ),
}

# BackendState other than Running -> (the fact, the hint). Q1 for a stopped or logged-out
# Tailscale; the others say what it waits for.
BACKEND_STATES: dict[BackendState, tuple[str, str]] = {
    BackendState.NEEDS_LOGIN: ("Tailscale needs you to log in here", TAILSCALE_UP),
    BackendState.STOPPED: ("Tailscale is stopped on this machine", TAILSCALE_UP),
    BackendState.STARTING: (
        "Tailscale is still starting on this machine; wait a moment",
        f"if it stays like this, {TAILSCALE_UP}",
    ),
    BackendState.NEEDS_MACHINE_AUTH: (
        "Tailscale is waiting for an admin to approve this machine",
        "approve it in the Tailscale admin console",
    ),
    BackendState.NO_STATE: ("Tailscale has not started on this machine yet", TAILSCALE_UP),
    BackendState.UNKNOWN: ("Tailscale did not say whether it is running here", TAILSCALE_UP),
}


def with_hint(text: str, hint: str) -> str:
    """ "connection refused" + "service not running?" -> "connection refused (service not
    running?)"; `text` alone when there is no hint or it already ends with this one."""
    if not hint or text.endswith(f"({hint})"):
        return text
    return f"{text} ({hint})" if text else hint


def reason_hint(reason: Reason | None, hostname: str) -> str:
    """The runbook's hint for a failure reason ("" when there is none)."""
    if reason is None:
        return ""
    return REASONS[reason][1].format(host=hostname)


def reason_text(reason: Reason) -> str:
    """What happened, as the end of "FastAPI on woosuns-mac-mini ...": "refused the connection"."""
    return REASONS[reason][0]


def link_broken_hint(hostname: str) -> str:
    """Only this machine fails to reach a service the others reach: look here, not there."""
    return LINK_BROKEN.format(host=hostname)


def peer_offline_hint(hostname: str) -> str:
    """Q1: "run `tailscale up` on woosuns-mac-mini"."""
    return reason_hint(Reason.PEER_OFFLINE, hostname)


def key_expiry_hint(*, is_self: bool) -> str:
    """What to do about a node key that is about to expire, on that node ("there") or on
    this machine ("here")."""
    return KEY_EXPIRY_HINT.format(where="here" if is_self else "there")


def explain(result: ProbeResult, hostname: str) -> str:
    """A failed probe's detail with its one hint, as the menu and the table show it."""
    return with_hint(result.detail, reason_hint(result.reason, hostname))


def tailscale_title(problem: TailscaleProblem) -> str:
    """ "Tailscale is not installed here": the fact, for titles and skipped services."""
    return TAILSCALE[problem][0]


def tailscale_hint(problem: TailscaleProblem) -> str:
    """What to do about it: the download link when it is missing, `tailscale up` when it
    is stopped, and so on."""
    return TAILSCALE[problem][1]


def tailscale_detail(problem: TailscaleProblem, fact: str = "", *, hint: str = "") -> str:
    """The sentence about an unusable Tailscale: `fact` (the problem's title when there is
    none) with one hint, the table's for the problem unless the caller knows a better one
    (`NOT_THE_CLI` for a program that cannot be run)."""
    return with_hint(fact or tailscale_title(problem), hint or tailscale_hint(problem))


def state_detail(state: BackendState, raw: str = "") -> str:
    """The sentence shown when Tailscale's backend is not Running, with its hint ("" when
    it runs). `raw` is the BackendState as Tailscale wrote it, named when it is new."""
    if state is BackendState.RUNNING:
        return ""
    if state is BackendState.UNKNOWN and raw:
        return (
            f"Tailscale reports a state this agent does not know ({raw[:40]!r}); "
            f"if it does not connect, {TAILSCALE_UP}"
        )
    return with_hint(*BACKEND_STATES[state])


# What binds a server to one address, by the word its service name holds (first match;
# PostgreSQL and Redis also by their check kind). {ip}: the Tailscale IP, {port} its port,
# {both}: "127.0.0.1 {ip}" where access = "localhost+tailscale" lets loopback stay. Servers
# that take one address only (uvicorn, Ollama, ComfyUI, Next.js) get the Tailscale IP.
LISTEN_FIXES: tuple[tuple[str, str], ...] = (
    ("postgres", "listen_addresses = '{pg}' in postgresql.conf, then restart PostgreSQL"),
    ("redis", "bind {both} in redis.conf, then restart Redis"),
    ("minio console", "start MinIO with --console-address {ip}:{port}"),
    ("minio", "start MinIO with --address {ip}:{port}"),
    ("ollama", "set OLLAMA_HOST={ip}:{port} for the Ollama service, then restart Ollama"),
    ("comfy", "start ComfyUI with --listen {ip} --port {port}"),
    ("next", "start Next.js with -H {ip} (next dev -H {ip} -p {port})"),
    ("fastapi", "start uvicorn with --host {ip} --port {port}"),
    ("uvicorn", "start uvicorn with --host {ip} --port {port}"),
)
_LISTEN_BY_CHECK = {CheckKind.POSTGRES: "postgres", CheckKind.REDIS: "redis"}
_LISTEN_ANY = "make it listen on {ip} only (not 0.0.0.0, :: or a LAN address)"


def listen_fix(service: Service, ip: str, *, keep_loopback: bool) -> str:
    """The setting that makes `service` listen on its Tailscale IP `ip` only (and loopback
    when `keep_loopback`): "listen_addresses = '100.123.51.5' in postgresql.conf, ..."."""
    name = service.name.casefold()
    template = next(
        (fix for word, fix in LISTEN_FIXES if word in name),
        None,
    )
    if template is None and service.check in _LISTEN_BY_CHECK:
        word = _LISTEN_BY_CHECK[service.check]
        template = next(fix for w, fix in LISTEN_FIXES if w == word)
    return (template or _LISTEN_ANY).format(
        ip=ip,
        port=service.port,
        both=f"127.0.0.1 {ip}" if keep_loopback else ip,
        pg=f"localhost,{ip}" if keep_loopback else ip,
    )
