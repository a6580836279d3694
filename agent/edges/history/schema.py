"""What the history file holds: its tables, schema version and migrations, and the
compact form of a sweep.

- ``keysets``: each distinct shape of a sweep, the ordered nodes and their services, as
  JSON (``[["macmini", ["FastAPI", "Redis"]], ...]``). A topology edit adds one row.
- ``runs``: one row per *run* of identical sweeps. A sweep that reads exactly like the
  previous one (same shape, overall colour, links and service states, same interval, and
  no gap) only moves the run's ``last_at`` forward and counts it in ``sweeps``; any change
  starts a new row. ``links`` holds one character per node and ``states`` one per
  service, in the keyset's order (see the ``*_CODE`` tables).
- ``events``: every event, announced or not (agent.edges.history.event_rows).

A gap: the next sweep came later than ``GAP_FACTOR x interval + GAP_SLACK_S`` (the agent
stopped, the machine slept).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from agent.core.model import Health, Link, ProbeState, ServiceKey, Snapshot

__all__ = [
    "GAP_FACTOR",
    "GAP_SLACK_S",
    "MIGRATIONS",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "STATE_CODE",
    "TABLES",
    "Migration",
    "Run",
    "decode_keyset",
    "encode_sweep",
    "gap_limit",
]

SCHEMA_VERSION = 1
GAP_FACTOR = 3.0
GAP_SLACK_S = 5.0

STATE_CODE = {
    ProbeState.UP: "u",
    ProbeState.DOWN: "d",
    ProbeState.UNKNOWN: "?",
    ProbeState.SKIPPED: "-",
}
_LINK_CODE = {
    Link.SELF: "s",
    Link.DIRECT: "d",
    Link.RELAY: "r",
    Link.PEER_RELAY: "p",
    Link.IDLE: "i",
    Link.OFFLINE: "o",
    Link.UNKNOWN: "?",
}
_HEALTH_CODE = {Health.GREEN: "g", Health.AMBER: "a", Health.RED: "r", Health.GREY: "-"}

TABLES = (
    """CREATE TABLE keysets (
        id INTEGER PRIMARY KEY,
        nodes TEXT NOT NULL UNIQUE
    )""",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        keyset INTEGER NOT NULL,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        interval REAL NOT NULL,
        sweeps INTEGER NOT NULL,
        overall TEXT NOT NULL,
        links TEXT NOT NULL,
        states TEXT NOT NULL
    )""",
    "CREATE INDEX runs_last_at ON runs(last_at)",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        node_id TEXT,
        service TEXT,
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        critical INTEGER NOT NULL,
        announced INTEGER NOT NULL,
        extra TEXT
    )""",
    "CREATE INDEX events_at ON events(at)",
)

# Upgrades from schema version N to N + 1, run in one transaction on open. Add an entry
# (and bump SCHEMA_VERSION) when the schema changes; never edit a shipped one.
Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: dict[int, Migration] = {}


@dataclass(frozen=True, slots=True)
class Run:
    """One row of ``runs``."""

    id: int
    keyset: int
    first_at: float
    last_at: float
    interval: float
    overall: str
    links: str
    states: str


RUN_COLUMNS = "id, keyset, first_at, last_at, interval, overall, links, states"


def gap_limit(interval: float) -> float:
    """The longest wait for the next sweep that is not a gap."""
    return GAP_FACTOR * interval + GAP_SLACK_S


def encode_sweep(snapshot: Snapshot) -> tuple[str, str, str, str]:
    """(keyset JSON, overall, links, states) of one sweep."""
    shape: list[list[object]] = []
    links: list[str] = []
    states: list[str] = []
    for ns in snapshot.nodes:
        shape.append([ns.node.id, [s.service.name for s in ns.services]])
        links.append(_LINK_CODE.get(ns.link, "?"))
        states.extend(STATE_CODE.get(s.result.state, "?") for s in ns.services)
    keys = json.dumps(shape, ensure_ascii=False, separators=(",", ":"))
    return keys, _HEALTH_CODE.get(snapshot.overall, "-"), "".join(links), "".join(states)


def decode_keyset(text: str) -> tuple[ServiceKey, ...]:
    """The (node id, service name) of each state character, in order."""
    keys: list[ServiceKey] = []
    for node_id, services in json.loads(text):
        keys.extend((str(node_id), str(name)) for name in services)
    return tuple(keys)
