"""Event values and their words: titles, messages, runbook hints, no secrets."""

from __future__ import annotations

import pytest

from agent.core.events import (
    EventKind,
    describe_failure,
    link_direct_event,
    link_relayed_event,
    peer_offline_event,
    peer_online_event,
    reason_hint,
    scrub,
    service_down_event,
    service_up_event,
    tailscale_running_event,
    tailscale_stopped_event,
    topology_error_event,
    topology_fixed_event,
)
from agent.core.figures import format_duration
from agent.core.model import (
    BackendState,
    ProbeResult,
    ProbeState,
    Reason,
    TailnetView,
    TailscaleProblem,
)
from tests.core.snapshots import FASTAPI, LAPTOP, MACMINI, NEXT, POSTGRES, REDIS


def down(reason: Reason | None, detail: str = "") -> ProbeResult:
    return ProbeResult(ProbeState.DOWN, reason, detail)


@pytest.mark.parametrize(
    ("reason", "detail", "expected"),
    [
        (Reason.REFUSED, "connection refused",
         "FastAPI on woosuns-mac-mini refused the connection (service not running?)"),
        (Reason.TIMEOUT, "no answer within 3 s",
         "FastAPI on woosuns-mac-mini did not answer in time (firewall or host unreachable?)"),
        (Reason.HTTP_STATUS, "HTTP 503 Service Unavailable",
         "FastAPI on woosuns-mac-mini answered HTTP 503 Service Unavailable "
         "(the service reports a problem; check its logs)"),
        (Reason.HTTP_STATUS, "",
         "FastAPI on woosuns-mac-mini answered with an error status "
         "(the service reports a problem; check its logs)"),
        (Reason.BODY_MISMATCH, "body lacks 'ok'",
         "FastAPI on woosuns-mac-mini answered, but not with the expected content "
         "(the service is unhealthy, or something else answers there)"),
        (Reason.PROTOCOL_MISMATCH, "not HTTP",
         "FastAPI on woosuns-mac-mini answered in another protocol "
         "(something else answers on that port: is the port or the check kind wrong?)"),
        (Reason.DNS, "name not known",
         "FastAPI on woosuns-mac-mini could not be found by name "
         "(check the hostname and MagicDNS)"),
        (Reason.TLS, "bad certificate",
         "FastAPI on woosuns-mac-mini failed the TLS handshake "
         "(check the certificate, or use http)"),
        (Reason.PEER_OFFLINE, "",
         "FastAPI on woosuns-mac-mini cannot be reached: its node is offline in Tailscale "
         "(run `tailscale up` on woosuns-mac-mini)"),
        (Reason.TAILSCALE_DOWN, "",
         "FastAPI on woosuns-mac-mini was not checked: Tailscale does not work on this "
         "machine (fix Tailscale here first)"),
        (Reason.ERROR, "ValueError: boom",
         "FastAPI on woosuns-mac-mini could not be checked: ValueError: boom (see the log)"),
        (None, "", "FastAPI on woosuns-mac-mini is down"),
        (None, "odd", "FastAPI on woosuns-mac-mini is down: odd"),
    ],
    ids=["refused", "timeout", "http-status", "http-status-no-detail", "body", "protocol",
         "dns", "tls", "peer-offline", "tailscale-down", "error", "none", "none-detail"],
)  # fmt: skip
def test_failure_texts_carry_the_runbook_hint(
    reason: Reason | None, detail: str, expected: str
) -> None:
    assert describe_failure("FastAPI", "woosuns-mac-mini", down(reason, detail)) == expected


def test_every_reason_has_a_hint() -> None:
    for reason in Reason:
        assert reason_hint(reason, "host")
    assert reason_hint(None, "host") == ""
    assert reason_hint(Reason.PEER_OFFLINE, "woosuns-mac-mini") == (
        "run `tailscale up` on woosuns-mac-mini"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://admin:s3cret@100.123.51.5:9000/minio failed",
         "GET http://100.123.51.5:9000/minio failed"),
        ("https://user@host/x", "https://host/x"),
        ("redis://:hunter2@127.0.0.1:6379/0 refused", "redis://127.0.0.1:6379/0 refused"),
        ("http://host/health?token=abc123&x=1 -> 401", "http://host/health -> 401"),
        ("http://host/p#frag", "http://host/p"),
        ("plain text, no url", "plain text, no url"),
        ("  many\n  spaces\t here ", "many spaces here"),
    ],
    ids=["userinfo", "user-only", "redis-password", "query", "fragment", "plain", "spaces"],
)  # fmt: skip
def test_scrub_removes_credentials_and_queries(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_scrub_caps_the_length() -> None:
    out = scrub("x" * 500)
    assert len(out) == 160 and out.endswith("…")
    assert len(scrub("y" * 500, 50)) == 50


def test_no_secret_reaches_an_event_text() -> None:
    leaky = down(Reason.ERROR, "httpx error for http://bob:pa55word@100.123.51.5:8000/health?k=v")
    event = service_down_event(MACMINI, FASTAPI, leaky, 1.0)
    assert "pa55word" not in event.message and "bob" not in event.message
    assert "k=v" not in event.message
    ts = tailscale_stopped_event(
        TailnetView(problem=TailscaleProblem.CLI_FAILED, detail="see https://a:b@login.x/?t=1"),
        1.0,
    )
    assert "a:b@" not in ts.message and "t=1" not in ts.message
    topo = topology_error_event("f.toml:3: url: http://u:p@h/ is not allowed", 1.0)
    assert "u:p@" not in topo.message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (12.4, "12 s"), (59.6, "1 min"), (250, "4 min"), (3600, "1 h"),
     (3900, "1 h 5 min"), (86400, "1 d"), (90000, "1 d 1 h"), (-5, "0 s")],
    ids=["zero", "seconds", "rounds-up", "minutes", "hour", "hour-min", "day", "day-hour",
         "negative"],
)  # fmt: skip
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_keeps_seconds_below_a_threshold() -> None:
    """notify_policy's "shown 70 s ago": whole seconds up to two minutes, then minutes."""
    texts = [format_duration(s, seconds_below=120) for s in (70, 119.4, 170, 599)]
    assert texts == ["70 s", "119 s", "2 min", "9 min"]


@pytest.mark.parametrize(
    ("kind", "family", "bad"),
    [
        (EventKind.SERVICE_DOWN, "service", True),
        (EventKind.SERVICE_UP, "service", False),
        (EventKind.PEER_OFFLINE, "peer", True),
        (EventKind.PEER_ONLINE, "peer", False),
        (EventKind.LINK_RELAYED, "link", True),
        (EventKind.LINK_DIRECT, "link", False),
        (EventKind.TAILSCALE_STOPPED, "tailscale", True),
        (EventKind.TAILSCALE_RUNNING, "tailscale", False),
        (EventKind.TOPOLOGY_ERROR, "topology", True),
        (EventKind.TOPOLOGY_FIXED, "topology", False),
    ],
    ids=lambda v: str(v),
)
def test_kind_family_and_direction(kind: EventKind, family: str, bad: bool) -> None:
    assert kind.family == family
    assert kind.bad is bad


def test_service_down_critical_degraded_info_folded() -> None:
    refused = down(Reason.REFUSED)
    critical = service_down_event(MACMINI, FASTAPI, refused, 5.0)
    assert (critical.critical, critical.announce, critical.folded) == (True, True, False)
    assert critical.subject == ("service", "macmini", "FastAPI")
    assert critical.reason is Reason.REFUSED and critical.at == 5.0
    assert critical.node_name == "Mac mini — Backend Server"
    degraded = service_down_event(MACMINI, REDIS, refused, 5.0)
    assert (degraded.critical, degraded.announce) == (False, True)
    info = service_down_event(LAPTOP, NEXT, refused, 5.0)
    assert (info.critical, info.announce) == (False, False)
    folded = service_down_event(MACMINI, POSTGRES, down(Reason.PEER_OFFLINE), 5.0, folded=True)
    assert (folded.critical, folded.announce, folded.folded) == (True, False, True)
    assert folded.message.endswith(" — the node is offline")


def test_service_up_texts() -> None:
    event = service_up_event(MACMINI, FASTAPI, 9.0, down_for_s=250.0, announce=True)
    assert event.title == "Mac mini — Backend Server: FastAPI up"
    assert event.message == "FastAPI is back (up after 4 min)"
    assert not event.critical and not event.bad
    unknown = service_up_event(MACMINI, FASTAPI, 9.0, down_for_s=None, announce=False)
    assert unknown.message == "FastAPI is back" and not unknown.announce


def test_peer_events() -> None:
    offline = peer_offline_event(MACMINI, 1.0)
    assert offline.title == "Mac mini — Backend Server offline"
    assert offline.message == (
        "Tailscale reports woosuns-mac-mini offline and none of its services answer "
        "(run `tailscale up` on it)"
    )
    assert offline.critical and offline.announce and offline.subject == ("peer", "macmini", "")
    laptop = peer_offline_event(LAPTOP, 1.0)
    assert not laptop.critical and not laptop.announce
    online = peer_online_event(MACMINI, 2.0, offline_for_s=720.0, announce=True)
    assert online.title == "Mac mini — Backend Server online"
    assert online.message == "woosuns-mac-mini is back online (after 12 min offline)"
    assert not online.critical and online.still_down == ()
    partial = peer_online_event(
        MACMINI, 2.0, offline_for_s=None, announce=False, still_down=(REDIS,)
    )
    assert partial.announce and not partial.critical  # Redis is degraded
    assert partial.title == "Mac mini — Backend Server online — Redis still down"
    assert partial.message == "woosuns-mac-mini is back online; still not answering: Redis"
    critical = peer_online_event(
        MACMINI, 2.0, offline_for_s=None, announce=True, still_down=(FASTAPI, REDIS)
    )
    assert critical.critical and critical.still_down == ("FastAPI", "Redis")


def test_link_events() -> None:
    lost = link_relayed_event(MACMINI, "tok", 1.0, was_direct=True)
    assert lost.title == "Mac mini — Backend Server: relayed via DERP 'tok'"
    assert lost.message == (
        "the direct path was lost; traffic goes through a relay, which is slower "
        "(look for `direct` in `tailscale status`)"
    )
    assert lost.relay == "tok" and not lost.critical and lost.announce
    never = link_relayed_event(MACMINI, "", 1.0, was_direct=False)
    assert never.title == "Mac mini — Backend Server: relayed via a DERP relay"
    assert never.message.startswith("there is no direct path;")
    back = link_direct_event(MACMINI, 2.0, relayed_for_s=300.0, peer_relay=False, announce=True)
    assert back.title == "Mac mini — Backend Server: direct again"
    assert back.message == "the link is direct again (after 5 min relayed)"
    peer = link_direct_event(MACMINI, 2.0, relayed_for_s=None, peer_relay=True, announce=True)
    assert peer.title == "Mac mini — Backend Server: off the DERP relay"
    assert peer.message == "the link now goes through a peer relay, usually fast"


@pytest.mark.parametrize(
    ("problem", "title"),
    [
        (TailscaleProblem.NOT_RUNNING, "Tailscale is not running here"),
        (TailscaleProblem.NOT_INSTALLED, "Tailscale is not installed here"),
        (TailscaleProblem.CLI_FAILED, "Tailscale cannot be reached here"),
        (TailscaleProblem.TIMED_OUT, "Tailscale does not answer here"),
        (TailscaleProblem.BAD_OUTPUT, "Tailscale cannot be read here"),
    ],
    ids=lambda v: str(v),
)
def test_tailscale_stopped_titles(problem: TailscaleProblem, title: str) -> None:
    view = TailnetView(
        backend_state=BackendState.STOPPED,
        problem=problem,
        detail="Tailscale is stopped on this machine (run `tailscale up`).",
    )
    event = tailscale_stopped_event(view, 3.0)
    assert event.title == title
    assert event.critical and event.announce and event.subject == ("tailscale", "", "")
    assert event.message == (
        "Tailscale is stopped on this machine (run `tailscale up`). Peers cannot be checked "
        "until then"
    )


def test_tailscale_stopped_without_detail_and_running_again() -> None:
    event = tailscale_stopped_event(TailnetView(backend_state=BackendState.STOPPED), 3.0)
    assert event.title == "Tailscale is not running here"
    # under its title the body does not say it again: the hint is all that is left
    assert event.message == "Run `tailscale up`. Peers cannot be checked until then"
    again = tailscale_running_event(4.0, stopped_for_s=130.0, announce=True)
    assert again.title == "Tailscale is running here again"
    assert again.message.startswith("Tailscale is running again (up after 2 min);")
    assert not again.critical


def test_topology_events() -> None:
    err = topology_error_event("topology.toml:4: nodes.ip: '1.2.3' is not an IPv4 address", 1.0)
    assert err.title == "Topology file refused"
    assert err.message == (
        "topology.toml:4: nodes.ip: '1.2.3' is not an IPv4 address — the last good topology "
        "stays in use"
    )
    assert err.bad and err.announce and not err.critical
    fixed = topology_fixed_event("/home/u/.config/tailnet-agent/topology.toml", 3, 2.0)
    assert fixed.title == "Topology file accepted"
    assert (
        fixed.message
        == "/home/u/.config/tailnet-agent/topology.toml is valid again; watching 3 nodes"
    )
    assert not fixed.bad


# ==== one hint per situation ==================================================


@pytest.mark.parametrize("problem", list(TailscaleProblem), ids=lambda p: p.value)
def test_tailscale_stopped_carries_one_hint_and_the_right_one(problem: TailscaleProblem) -> None:
    """The detail (from the reader) already holds its hint: the event adds none of its own."""
    from agent.core.hints import tailscale_hint

    hint = tailscale_hint(problem)
    view = TailnetView(problem=problem, detail=f"{problem.value} here ({hint})")
    event = tailscale_stopped_event(view, 3.0)
    assert event.message.count(hint) == 1, event.message
    assert event.message.count("(") == 1, event.message
    if problem is TailscaleProblem.NOT_INSTALLED:
        assert "https://tailscale.com/download" in hint and "tailscale up" not in hint


@pytest.mark.parametrize(
    ("problem", "title", "words"),
    [
        (TailscaleProblem.NOT_RUNNING, "Tailscale is running here again",
         "Tailscale is running again (up after 2 min)"),
        (TailscaleProblem.NOT_INSTALLED, "Tailscale is installed here now",
         "Tailscale is installed now (it was missing for 2 min)"),
        (TailscaleProblem.CLI_FAILED, "Tailscale can be reached here again",
         "Tailscale answers again (it could not be reached for 2 min)"),
        (TailscaleProblem.TIMED_OUT, "Tailscale answers here again",
         "Tailscale answers again (it did not answer for 2 min)"),
        (TailscaleProblem.BAD_OUTPUT, "Tailscale can be read here again",
         "Tailscale's status reads normally again (for 2 min it printed something unreadable)"),
    ],
    ids=lambda v: str(v),
)  # fmt: skip
def test_tailscale_recovery_says_what_was_wrong(
    problem: TailscaleProblem, title: str, words: str
) -> None:
    """Garbage from the CLI is no "down": the recovery names what really ended."""
    from tests.core.snapshots import Driver, sweep

    d = Driver()
    d.step(sweep())
    broken = sweep(running=False, problem=problem)
    d.step(broken)
    d.step(broken, after=1.0)
    d.step(broken, after=119.0)
    (event,) = d.step(sweep()).events
    assert (event.kind, event.title) == (EventKind.TAILSCALE_RUNNING, title)
    assert event.message.startswith(words), event.message
