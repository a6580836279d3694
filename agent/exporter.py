"""The opt-in Prometheus endpoint of a running agent (wiring): where it listens, what it shows.

Off unless asked for, by the first of: `--metrics HOST:PORT` on `run` or `tray`,
$TAILNET_AGENT_METRICS, `metrics = "HOST:PORT"` in config.toml in the user config folder
(only that key is read; the file may hold others). `open_exporter` parses the address and
refuses, before anything starts, one that is not loopback or one of this node's Tailscale
IPs (asking Tailscale only then): a UsageError, exit 3 — when Tailscale can say so.

The Exporter sits between the monitor and the metrics edge: `observe` wraps the sweep (to
count and time sweeps) and the monitor's on_update callback (to keep the latest
MonitorStatus); every scrape turns those into core.metrics families. `start` binds the
endpoint (a UsageError when the address is taken or not this machine's); `stop` closes it
and joins its thread.

A Tailscale IP asked for while Tailscale cannot be read (a tray started at login before
tailscaled is up) is no error: the agent starts, and the endpoint waits. After each sweep
it looks again — Tailscale running and the address one of this node's IPs: it binds (and
tries again next sweep while the address cannot be bound yet); Tailscale running and the
address not this node's: an error in the log and the menu, and nothing is served. The
menu's line comes with the status the exporter passes on (MonitorStatus.notes).
"""

from __future__ import annotations

import ipaddress
import logging
import platform
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from agent import __version__
from agent.core.decoding import load_toml
from agent.core.menu import MonitorStatus
from agent.core.metrics import (
    MetricFamily,
    MetricsAddress,
    SweepStats,
    metric_families,
    parse_metrics_address,
    refusal,
)
from agent.core.model import Snapshot, TailnetView, Topology
from agent.edges import event_loop, paths
from agent.edges.tailscale import find_cli, read_status
from agent.errors import UsageError
from agent.monitor import SweepOnce
from agent.sweep import TAILSCALE_TIMEOUT_S

__all__ = [
    "CONFIG_FILE",
    "METRICS_ENV",
    "Exporter",
    "MetricsSetting",
    "metrics_setting",
    "open_exporter",
]

log = logging.getLogger(__name__)

METRICS_ENV = "TAILNET_AGENT_METRICS"
CONFIG_FILE = "config.toml"  # in the user config folder, beside topology.toml


@dataclass(frozen=True, slots=True)
class MetricsSetting:
    """An address asked for, and where it was asked (for messages)."""

    text: str
    where: str  # "--metrics", "$TAILNET_AGENT_METRICS", "…/config.toml: metrics"


def metrics_setting(
    cli_value: str | None, env: Mapping[str, str], config: Path | None = None
) -> MetricsSetting | None:
    """The metrics address asked for (--metrics, else the variable, else config.toml's
    `metrics`), or None: off. An unreadable config.toml or a `metrics` that is no string is
    a UsageError; a missing file or key is simply off."""
    if cli_value:
        return MetricsSetting(cli_value, "--metrics")
    if env.get(METRICS_ENV):
        return MetricsSetting(env[METRICS_ENV], f"${METRICS_ENV}")
    path = paths.config_dir() / CONFIG_FILE if config is None else config
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot be read ({error})") from None
    try:
        value = load_toml(text).get("metrics")
    except ValueError as error:  # bad syntax, or nested too deeply to read
        raise UsageError(f"{path}: not valid TOML ({error}); metrics not read") from None
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UsageError(f'{path}: metrics: give a string, such as metrics = "127.0.0.1:9233"')
    return MetricsSetting(value, f"{path}: metrics")


class Exporter:
    """Keeps what a scrape shows (the latest status, the sweep counters) and the endpoint."""

    def __init__(
        self, address: MetricsAddress, where: str = "--metrics", *, waiting: str = ""
    ) -> None:
        """`waiting`: why the endpoint cannot bind yet (Tailscale unread); "" binds at start."""
        self.address = address
        self._where = where
        self._lock = threading.Lock()
        self._status: MonitorStatus | None = None
        self._sweeps = SweepStats()
        # here, not at the top: prometheus-client and wsgiref load only with --metrics (RSS)
        from agent.edges.metrics import MetricsServer

        self._server = MetricsServer(address, self.families)
        self._binding = threading.Lock()  # a retry (monitor thread) against stop (main thread)
        self._waiting = waiting
        self._said = ""
        self._stopped = False

    @property
    def waiting(self) -> str:
        """Why nothing is served yet ("" once it serves, or when it binds at start)."""
        return self._waiting

    def families(self) -> tuple[MetricFamily, ...]:
        """One scrape's metrics (any thread)."""
        with self._lock:
            status, sweeps = self._status, self._sweeps
        return metric_families(
            status, sweeps, version=__version__, python_version=platform.python_version()
        )

    def observe(
        self, sweep_once: SweepOnce, on_update: Callable[[MonitorStatus], None]
    ) -> tuple[SweepOnce, Callable[[MonitorStatus], None]]:
        """The monitor's sweep and callback, the same but seen by this exporter."""

        async def timed(topology: Topology) -> Snapshot:
            started = time.perf_counter()
            try:
                snapshot = await sweep_once(topology)
            finally:
                took = time.perf_counter() - started
                with self._lock:
                    self._sweeps = SweepStats(self._sweeps.total + 1, took)
            if self._waiting:
                self.retry(snapshot.tailnet)
            return snapshot

        def publish(status: MonitorStatus) -> None:
            with self._lock:
                self._status = status
            if self._waiting:
                status = replace(status, notes=(*status.notes, f"Metrics: {self._waiting}"))
            on_update(status)

        return timed, publish

    def start(self) -> None:
        if self._waiting:
            self._say(self._waiting, logging.WARNING)
            return
        try:
            self._server.start()
        except OSError as error:
            raise UsageError(
                f"{self._where} {self.address}: cannot listen there ({error.strerror or error})"
            ) from None

    def retry(self, tailnet: TailnetView) -> None:
        """While waiting: bind once Tailscale says the address is this node's (a sweep's
        reading of Tailscale, so no extra `tailscale status`)."""
        level = logging.WARNING
        if not tailnet.running or not tailnet.self_ips:  # no IPs yet: it cannot tell
            why = _waiting_words(self.address, tailnet.detail)
        elif refused := refusal(self.address, tailnet.self_ips):
            why, level = f"not served: {refused}", logging.ERROR
        else:
            with self._binding:
                if self._stopped:
                    return
                try:
                    self._server.start()
                except OSError as error:
                    why = f"waiting to listen on {self.address} ({error.strerror or error})"
                else:
                    self._waiting = self._said = ""
                    return
        self._waiting = why
        self._say(why, level)

    def _say(self, why: str, level: int) -> None:
        if why != self._said:  # once per change, not every sweep
            log.log(level, "%s %s: %s", self._where, self.address, why)
            self._said = why

    def stop(self) -> None:
        with self._binding:
            self._stopped = True
            self._server.stop()


def _waiting_words(address: MetricsAddress, detail: str) -> str:
    return f"waiting for Tailscale to serve on {address} ({detail or 'Tailscale is not running'})"


def open_exporter(
    cli_value: str | None,
    env: Mapping[str, str],
    *,
    tailscale: str | None,
    config: Path | None = None,
) -> Exporter | None:
    """The exporter asked for, its address checked (not yet listening), or None when off."""
    setting = metrics_setting(cli_value, env, config)
    if setting is None:
        return None
    address = parse_metrics_address(setting.text, where=setting.where)
    if address.loopback:
        return Exporter(address, setting.where)
    view = event_loop.run(read_status(find_cli(tailscale, env), TAILSCALE_TIMEOUT_S), probes=0)
    if not view.running and not ipaddress.ip_address(address.host).is_unspecified:
        # Tailscale cannot tell yet whether this is one of its IPs: wait for it, sweep by sweep
        return Exporter(address, setting.where, waiting=_waiting_words(address, view.detail))
    why = refusal(address, view.self_ips)
    if why:
        raise UsageError(f"{setting.where} {setting.text}: {why}")
    return Exporter(address, setting.where)
