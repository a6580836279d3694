"""Session-wide real servers for the probe tests (started once, stopped at the end)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.servers import (
    Address,
    Route,
    has_ipv6_loopback,
    http_server,
    postgres_server,
    redis_server,
    websocket_server,
)

REDIS_PASSWORD = "probe-test-secret"

WEB_ROUTES = {
    "/health": Route(200, "status: ok\n"),
    "/created": Route(201, "made"),
    "/empty": Route(204),
    "/moved": Route(302, headers={"Location": "/health"}),
    "/missing-page": Route(404, "nope"),
    "/boom": Route(500, "internal error"),
    "/unavailable": Route(503, "later"),
    # the marker sits right after the first 64 KiB, where the probe stops reading
    "/big-late": Route(200, "x" * (64 * 1024) + "MARKER"),
    "/big-early": Route(200, "MARKER" + "x" * (200 * 1024)),
    "/utf8": Route(200, "état: prêt ✓", headers={"Content-Type": "text/plain; charset=utf-8"}),
}


@pytest.fixture(scope="session")
def web_addr() -> Iterator[Address]:
    with http_server(WEB_ROUTES) as address:
        yield address


@pytest.fixture(scope="session")
def redis_addr() -> Iterator[Address]:
    with redis_server() as address:
        yield address


@pytest.fixture(scope="session")
def redis_auth_addr() -> Iterator[Address]:
    with redis_server(requirepass=REDIS_PASSWORD) as address:
        yield address


@pytest.fixture(scope="session")
def postgres_addr() -> Iterator[Address]:
    with postgres_server() as address:
        yield address


@pytest.fixture(scope="session")
def ws_addr() -> Iterator[Address]:
    with websocket_server("/ws") as address:
        yield address


@pytest.fixture(scope="session")
def ipv6() -> None:
    if not has_ipv6_loopback():
        pytest.fail(
            "this machine has no IPv6 loopback (cannot bind ::1): enable IPv6 on lo "
            "(sysctl net.ipv6.conf.lo.disable_ipv6=0) to run the IPv6 probe tests"
        )
