"""The Prometheus endpoint: serves core.metrics' families over HTTP with prometheus-client.

`MetricsServer(address, families)` listens on one address (the wiring has already refused
any that is not loopback or this node's Tailscale IP) and, on every scrape of `/metrics`,
calls `families()` and hands the MetricFamily values to prometheus-client, the reference
implementation of the exposition format (text 0.0.4, OpenMetrics on request, gzip), with
the process_* and python_* collectors beside them. Each server has its own
CollectorRegistry: nothing lives in prometheus-client's global registry.

Read-only: GET only (any other method is 405 with `Allow: GET`), `/metrics` and a small
page at `/` that links to it; anything else is 404. One client asking more than
core.rate_limit's rate gets 429 (a scrape is every 15 s or so; a flood is not a scrape), and
http.server bounds a request's line and headers (414, 431). Requests are served on daemon
threads, each connection with a read timeout; `stop()` closes the socket and joins the
server thread.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.core.metrics import MetricFamily, MetricKind, MetricsAddress
from agent.core.rate_limit import ClientRates

__all__ = ["REQUEST_TIMEOUT_S", "MetricsServer"]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0  # a client that sends nothing for this long is dropped

_INDEX = (
    b"<!doctype html><title>tailnet-agent</title>"
    b'<h1>tailnet-agent</h1><p><a href="/metrics">Metrics</a></p>\n'
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Families(Collector):
    """A prometheus-client collector over core.metrics: asked anew on every scrape."""

    def __init__(self, families: Callable[[], Sequence[MetricFamily]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families():
            metric: GaugeMetricFamily | CounterMetricFamily
            if family.kind is MetricKind.COUNTER:
                metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
            for values, value in family.samples:
                metric.add_metric(list(values), value)
            yield metric


def _read_only(metrics: WsgiApp) -> WsgiApp:
    rates = ClientRates()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET"), *_TEXT])
            return [b"only GET is served here\n"]
        if not rates.allow(str(environ.get("REMOTE_ADDR", "")), time.monotonic()):
            start_response("429 Too Many Requests", [("Retry-After", "1"), *_TEXT])
            return [b"too many requests\n"]
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_INDEX]
        start_response("404 Not Found", list(_TEXT))
        return [b"not found: the metrics are at /metrics\n"]

    return app


_TEXT = (("Content-Type", "text/plain; charset=utf-8"),)


class _QuietHandler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s: " + format, self.address_string(), *args)


class MetricsServer:
    """One listening endpoint for Prometheus. `start` binds (OSError when it cannot)."""

    def __init__(
        self, address: MetricsAddress, families: Callable[[], Sequence[MetricFamily]]
    ) -> None:
        self.address = address
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Families(families))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.address.host else socket.AF_INET

        class _Server(ThreadingWSGIServer):
            address_family = family

        self._server = make_server(
            self.address.host,
            self.address.port,
            _read_only(make_wsgi_app(self.registry)),
            server_class=_Server,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()
        log.info("serving Prometheus metrics on %s", self.address.url)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)
        log.debug("metrics endpoint %s closed", self.address)
