"""The history store against real SQLite files: events, sweeps, uptime, retention, damage."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.core.events import (
    RECORD_FIELD_NAMES,
    Event,
    EventKind,
    EventRecord,
    agent_started_event,
    agent_stopped_event,
    link_relayed_event,
    peer_online_event,
    retired_event,
    service_down_event,
    service_up_event,
)
from agent.core.model import (
    CheckKind,
    Defaults,
    Health,
    Impact,
    Link,
    Node,
    ProbeResult,
    ProbeState,
    Reason,
    Service,
    Snapshot,
    TailnetView,
    Topology,
)
from agent.core.report.history import history_to_json, render_history
from agent.edges.history import History, HistoryError, Uptime, parse_since, schema
from agent.errors import AgentError, UsageError
from tests.core import snapshots as build

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
DAY = 86400.0
T0 = 1_700_000_000.0  # 2023-11-14, a fixed wall-clock start

UP, DOWN, UNKNOWN, SKIPPED = ProbeState.UP, ProbeState.DOWN, ProbeState.UNKNOWN, ProbeState.SKIPPED

FASTAPI = Service("FastAPI", 8000, CheckKind.HTTP, "/health", impact=Impact.CRITICAL)
REDIS = Service("Redis", 6379, CheckKind.REDIS)
OLLAMA = Service("Ollama", 11434, CheckKind.HTTP, "/api/tags")
MACMINI = Node("macmini", "Mac mini — Backend", "woosuns-mac-mini", "100.123.51.5", "macos",
               services=(FASTAPI, REDIS))  # fmt: skip
DESKTOP = Node("desktop", "Desktop — GPU", "sweetlife", "100.120.180.42", "windows",
               services=(OLLAMA,))  # fmt: skip


def topology(interval_s: float = 10.0, nodes: tuple[Node, ...] = (DESKTOP, MACMINI)) -> Topology:
    return Topology("Sparklio", nodes, Defaults(interval_s=interval_s))


def snapshot(
    at: float,
    states: dict[str, ProbeState] | None = None,
    *,
    topo: Topology | None = None,
    link: Link = Link.DIRECT,
) -> Snapshot:
    """A sweep where every service is up unless named in `states` (by service name)."""
    topo = topo or topology()
    states = states or {}
    nodes = [
        build.node_status(
            node,
            *(
                build.service_status(
                    s, ProbeResult(states.get(s.name, UP), at=at), node.ip, health=Health.GREEN
                )
                for s in node.services
            ),
            is_self=node.id == "desktop",
            link=link,
            online=True,
            latency=1.0,
        )
        for node in topo.nodes
    ]
    return build.snapshot(*nodes, topology=topo, tailnet=TailnetView(), at=at)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "history.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[History]:
    with History(db, clock=Clock()) as h:
        yield h


def play(
    h: History,
    segments: Sequence[tuple[float, dict[str, ProbeState] | None]],
    *,
    start: float = T0,
    interval: float = 10.0,
    clock: Clock | None = None,
) -> float:
    """Sweep every `interval` s through (duration, states) segments; None = agent off.

    Returns the end time. Sweeps fall at start, start + interval, ...: the state a sweep
    reads holds until the next one.
    """
    topo = topology(interval)
    base = snapshot(start, topo=topo)
    variants: dict[str, Snapshot] = {}
    t = start
    for duration, states in segments:
        end = t + duration
        if states is not None:
            key = json.dumps(sorted(states.items()))
            template = (
                variants.setdefault(key, snapshot(start, states, topo=topo)) if states else base
            )
            while t < end - 1e-9:
                if clock is not None:
                    clock.now = t
                h.record_sweep(replace(template, at=t))
                t += interval
        t = end
    return t


def run_rows(path: Path) -> list[tuple[float, float, int, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT first_at, last_at, sweeps, states FROM runs ORDER BY id"
        ).fetchall()


# ==== events ===================================================================


def sample_events() -> list[Event]:
    down = ProbeResult(DOWN, Reason.REFUSED, "connection refused")
    return [
        service_down_event(MACMINI, FASTAPI, down, T0 + 1),
        link_relayed_event(DESKTOP, "tok", T0 + 2, was_direct=True),
        service_up_event(MACMINI, FASTAPI, T0 + 300, down_for_s=299.0, announce=False),
        peer_online_event(
            MACMINI, T0 + 400, offline_for_s=60.0, announce=False, still_down=(REDIS,)
        ),
    ]


def test_events_round_trip_with_every_field(db: Path) -> None:
    events = sample_events()
    with History(db, clock=Clock()) as h:
        h.record_events(events)
        h.record_events([])  # nothing to write is fine
    with History(db, clock=Clock()) as h:  # persisted: a new connection reads them
        records = h.events()
    assert [r.kind for r in records] == [e.kind.value for e in events]
    for record, event in zip(records, events, strict=True):
        assert (record.at, record.node_id, record.service, record.title, record.message) == (
            event.at, event.node_id, event.service, event.title, event.message,
        )  # fmt: skip
        assert (record.critical, record.announce) == (event.critical, event.announce)
        assert record.node_name == event.node_name
        assert record.reason == (event.reason.value if event.reason else None)
        assert (record.relay, record.duration_s, record.still_down, record.folded) == (
            event.relay, event.duration_s, event.still_down, event.folded,
        )  # fmt: skip
    assert records[0].bad and records[0].critical and not records[2].bad
    assert not records[2].announce
    assert records[3].still_down == ("Redis",) and records[3].announce


def _a_value_unlike_the_default(name: str, hint: object, default: object) -> object:
    """A value of an event field's type that differs from its default (and from None)."""
    if name == "kind":
        return EventKind.PEER_ONLINE
    if name == "reason":
        return Reason.TIMEOUT
    if name == "at":
        return T0  # the store's now: older events are pruned on the first write
    options = typing.get_args(hint)
    base = next(o for o in options if o is not type(None)) if type(None) in options else hint
    if base is str:
        return f"{name} ✓"
    if base is float:
        return 12.5
    if base is int:
        return 503
    if base is bool:
        return default is not True
    if typing.get_origin(base) is tuple:
        return ("one", "two")
    if isinstance(base, type) and dataclasses.is_dataclass(base):  # a nested record: each field
        hints = typing.get_type_hints(base)
        return base(
            **{
                f.name: _a_value_unlike_the_default(f.name, hints[f.name], f.default)
                for f in dataclasses.fields(base)
            }
        )
    raise AssertionError(f"give the event field {name} ({hint}) a value here")


def test_every_event_field_is_stored_read_back_and_shown(db: Path, store: History) -> None:
    """A new Event field needs no edit in the history: walk Event's fields, set each one
    unlike its default, and find it in the table (a column, or `extra`), in the record
    read back and in the JSON."""
    hints = typing.get_type_hints(Event)
    values = {
        f.name: _a_value_unlike_the_default(f.name, hints[f.name], f.default)
        for f in dataclasses.fields(Event)
    }
    event = Event(**values)
    store.record_events([event])
    with sqlite3.connect(db) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
        (extra_text,) = conn.execute("SELECT extra FROM events").fetchone()
    extra = json.loads(extra_text)
    for f in dataclasses.fields(Event):
        if f.default is dataclasses.MISSING:
            assert RECORD_FIELD_NAMES.get(f.name, f.name) in columns, f"no column for {f.name}"
        else:
            assert f.name in extra, f"{f.name} is not stored"
    (record,) = store.events()
    for f in dataclasses.fields(Event):
        assert getattr(record, f.name) == getattr(event, f.name), f.name
    (shown,) = history_to_json([record])
    assert {
        RECORD_FIELD_NAMES.get(f.name, f.name) for f in dataclasses.fields(Event)
    } <= shown.keys()


def test_an_event_with_default_extras_stores_no_extra(db: Path, store: History) -> None:
    store.record_events([agent_stopped_event(T0)])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT extra FROM events").fetchall() == [(None,)]


def test_events_since_and_limit_keep_newest_last(store: History) -> None:
    store.record_events(sample_events())
    assert [r.at for r in store.events(since=T0 + 2)] == [T0 + 2, T0 + 300, T0 + 400]
    assert [r.at for r in store.events(limit=2)] == [T0 + 300, T0 + 400]
    assert [r.at for r in store.events(since=T0 + 2, limit=1)] == [T0 + 400]
    assert store.events(since=T0 + 1000) == []


def test_unknown_kind_from_a_newer_agent_is_read_as_text(db: Path, store: History) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO events (at, kind, title, message, critical, announced, extra) "
            "VALUES (?, 'cert_expiring', 't', 'm', 0, 1, 'not json')",
            (T0,),
        )
    (record,) = store.events()
    assert record.kind == "cert_expiring" and not record.bad and record.node_name == ""


# ==== sweeps ===================================================================


def test_identical_sweeps_share_one_row_and_a_change_starts_another(
    db: Path, store: History
) -> None:
    end = play(store, [(1000, {}), (30, {"Redis": DOWN}), (50, {})])
    rows = run_rows(db)
    assert [(r[2], r[3]) for r in rows] == [(100, "uuu"), (3, "uud"), (5, "uuu")]
    assert rows[-1][1] == end - 10
    store.close()
    with History(db, clock=Clock(end)) as again:  # a restart within the gap limit continues
        again.record_sweep(snapshot(end))
    assert len(run_rows(db)) == 3 and run_rows(db)[-1][2] == 6


def test_link_change_and_gap_start_new_rows(db: Path, store: History) -> None:
    store.record_sweep(snapshot(T0))
    store.record_sweep(snapshot(T0 + 10, link=Link.RELAY))
    store.record_sweep(snapshot(T0 + 20, link=Link.RELAY))
    store.record_sweep(snapshot(T0 + 20 + 3600, link=Link.RELAY))  # the agent was off
    assert [r[2] for r in run_rows(db)] == [1, 2, 1]


# ==== uptime ===================================================================


def test_uptime_is_exact_on_a_day_at_ten_seconds(db: Path, store: History) -> None:
    end = play(
        store,
        [
            (6 * HOUR, {}),
            (1 * HOUR, {"FastAPI": DOWN, "Ollama": DOWN}),
            (17 * HOUR, {"Ollama": SKIPPED}),
        ],
    )
    assert end == T0 + 24 * HOUR
    uptime = store.uptime(T0, end)
    assert uptime[("macmini", "FastAPI")] == pytest.approx(23 / 24, abs=1e-12)
    assert uptime[("macmini", "Redis")] == pytest.approx(1.0)
    # skipped time left out: 6 h up, 1 h down (counted as up it would read 23/24)
    assert uptime[("desktop", "Ollama")] == pytest.approx(6 / 7, abs=1e-12)
    # half the window: the last 12 h were all up
    assert store.uptime(end - 12 * HOUR, end)[("macmini", "FastAPI")] == pytest.approx(1.0)
    # a window that starts inside the outage: 30 min down, 17 h up
    since = T0 + 6.5 * HOUR
    assert store.uptime(since, end)[("macmini", "FastAPI")] == pytest.approx(17 / 17.5)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        pytest.param(
            [(6, {}), (2, {"FastAPI": UNKNOWN}), (2, {"FastAPI": DOWN}), (14, {})],
            20 / 22,
            id="unknown-time-excluded",
        ),
        pytest.param(  # beside down time, so that skipped counted as up (22/24) differs
            [(6, {}), (2, {"FastAPI": SKIPPED}), (2, {"FastAPI": DOWN}), (14, {})],
            20 / 22,
            id="skipped-time-excluded",
        ),
        pytest.param(
            [(6, {}), (2, None), (1, {"FastAPI": DOWN}), (15, {})], 21 / 22, id="gap-excluded"
        ),
        pytest.param([(12, {"FastAPI": DOWN}), (12, {"FastAPI": UP})], 0.5, id="half-and-half"),
        pytest.param([(24, {"FastAPI": DOWN})], 0.0, id="down-all-day"),
        pytest.param([(24, {"FastAPI": UNKNOWN})], None, id="only-unknown-is-none"),
    ],
)
def test_uptime_time_weighting(
    store: History,
    segments: list[tuple[float, dict[str, ProbeState] | None]],
    expected: float | None,
) -> None:
    end = play(store, [(hours * HOUR, states) for hours, states in segments], interval=60)
    got = store.uptime(T0, end)[("macmini", "FastAPI")]
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_uptime_detail_says_from_when_the_data_covers_the_window(store: History) -> None:
    end = play(store, [(60, {})])  # one minute of data
    detail = store.uptime_detail(end - DAY, end)
    assert detail[("macmini", "FastAPI")] == Uptime(1.0, T0)
    play(store, [(DAY, {"FastAPI": DOWN})], start=end)  # a day more: the window is covered
    later = store.uptime_detail(end, end + DAY)
    assert later[("macmini", "FastAPI")] == Uptime(0.0, end)
    # a gap inside the window leaves the start where the data begins
    late = end + DAY + 3 * HOUR
    play(store, [(HOUR, {})], start=late)
    assert store.uptime_detail(late + HOUR - DAY, late + HOUR)[
        ("macmini", "FastAPI")
    ].covered_from == pytest.approx(late + HOUR - DAY)


def test_a_service_added_later_covers_less_of_the_window(store: History) -> None:
    play(store, [(HOUR, {})], interval=60)
    more = topology(60.0, (DESKTOP, replace(MACMINI, services=(*MACMINI.services, OLLAMA))))
    for i in range(10):
        store.record_sweep(snapshot(T0 + HOUR + 60 * i, topo=more))
    detail = store.uptime_detail(T0 + 2 * HOUR - DAY, T0 + 2 * HOUR)
    assert detail[("macmini", "FastAPI")].covered_from == T0
    assert detail[("macmini", "Ollama")].covered_from == T0 + HOUR


def test_uptime_without_data(store: History) -> None:
    assert store.uptime(T0, T0 + DAY) == {}
    play(store, [(HOUR, {})])
    assert store.uptime(T0 + 2 * DAY, T0 + 3 * DAY) == {}  # the window holds no sweep
    assert store.uptime(T0 + HOUR, T0) == {}


def test_uptime_last_sweep_holds_until_now_but_not_over_a_gap(store: History) -> None:
    play(store, [(HOUR, {"FastAPI": DOWN})])  # last sweep at T0 + 1 h - 10 s
    store.record_sweep(snapshot(T0 + HOUR, {"FastAPI": UP}))
    # now 20 s after the last sweep (within the gap limit): up for 20 s of 3620 s
    assert store.uptime(T0, T0 + HOUR + 20)[("macmini", "FastAPI")] == pytest.approx(20 / 3620)
    # now an hour later: the agent stopped; the last sweep counts for one interval only
    late = store.uptime(T0, T0 + 2 * HOUR)[("macmini", "FastAPI")]
    assert late == pytest.approx(10 / 3610)


# ==== state_since ==============================================================


def test_state_since_follows_each_service(db: Path, store: History) -> None:
    end = play(
        store, [(HOUR, {}), (600, {"FastAPI": DOWN}), (300, {"FastAPI": DOWN, "Redis": DOWN})]
    )
    since = store.state_since(end)
    assert since == {
        ("macmini", "FastAPI"): T0 + HOUR,
        ("macmini", "Redis"): T0 + HOUR + 600,
        ("desktop", "Ollama"): T0,
    }
    store.record_sweep(snapshot(end))  # both back up
    assert store.state_since(end + 5)[("macmini", "FastAPI")] == end
    assert store.state_since(end + 5)[("desktop", "Ollama")] == T0


def test_state_since_restarts_after_a_gap_and_survives_a_new_service(store: History) -> None:
    play(store, [(HOUR, {})])
    later = T0 + 3 * HOUR  # the agent was off for two hours
    store.record_sweep(snapshot(later))
    assert store.state_since(later)[("macmini", "Redis")] == later
    grown = topology(nodes=(DESKTOP, replace(MACMINI, services=(FASTAPI, REDIS, OLLAMA))))
    store.record_sweep(snapshot(later + 10, topo=grown))  # a service was added to the file
    since = store.state_since(later + 10)
    assert since[("macmini", "Redis")] == later
    assert since[("macmini", "Ollama")] == later + 10
    assert store.state_since(later + 10 + HOUR) == {}  # too old to say what is current


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_state_since_of_the_writer_matches_a_fresh_reading(db: Path, seed: int) -> None:
    """The writer keeps state_since up to date as it records; a new reader walks the file."""
    rng = random.Random(seed)
    grown = topology(nodes=(DESKTOP, replace(MACMINI, services=(FASTAPI, REDIS, OLLAMA))))
    choices = [UP, UP, UP, DOWN, UNKNOWN, SKIPPED]
    t = T0
    with History(db, clock=Clock()) as writer:
        for step in range(150):
            t += rng.choice([10.0, 10.0, 10.0, 12.0, 1.0, 600.0])  # 600 s: a gap
            states = {s: rng.choice(choices) for s in ("FastAPI", "Redis", "Ollama")}
            if rng.random() < 0.7:
                states = {}  # mostly nothing changes
            topo = grown if (step // 40) % 2 else topology()
            writer.record_sweep(snapshot(t, states, topo=topo))
            mine = writer.state_since(t)
            with History(db, clock=Clock()) as reader:
                assert mine == reader.state_since(t), f"step {step}"
            assert set(mine) == {(n.id, s.name) for n in topo.nodes for s in n.services}


# ==== retention and size =======================================================


def test_retention_prunes_on_first_write_and_every_n_writes(db: Path) -> None:
    clock = Clock()
    with History(db, clock=clock, prune_every=50) as h:
        for day in range(40):
            h.record_events([replace(sample_events()[0], at=T0 + day * DAY)])
        play(h, [(40 * DAY, {})], interval=HOUR, clock=clock)
    # written with a clock that followed the data: nothing past its retention is left
    with sqlite3.connect(db) as conn:
        oldest_event = conn.execute("SELECT MIN(at) FROM events").fetchone()[0]
        oldest_run = conn.execute("SELECT MIN(first_at) FROM runs").fetchone()[0]
    now = T0 + 40 * DAY - HOUR
    late = 50 * HOUR  # pruning runs every 50 writes, one sweep an hour
    assert now - 30 * DAY - late <= oldest_event < now - 30 * DAY + DAY
    assert now - 7 * DAY - late <= oldest_run

    clock.now = T0 + 100 * DAY
    with History(db, clock=clock) as reader:  # opening to read never deletes
        assert len(reader.events()) > 0
        reader.record_events([replace(sample_events()[0], at=clock.now)])  # first write prunes
        assert [r.at for r in reader.events()] == [clock.now]
        assert reader.uptime(T0, clock.now) == {}


def test_thirty_days_of_twelve_flapping_services_stay_small(tmp_path: Path) -> None:
    """Worst case: one service flips on every 10-s sweep, so every sweep is a new row."""
    db = tmp_path / "history.sqlite3"
    services = tuple(Service(f"svc{i}", 8000 + i, CheckKind.TCP) for i in range(4))
    nodes = tuple(Node(f"n{k}", f"Node {k}", f"host{k}", f"100.64.0.{k}", services=services)
                  for k in range(3))  # fmt: skip
    topo = Topology("big", nodes)
    steady = snapshot(T0, topo=topo)
    flipped = snapshot(T0, {"svc1": DOWN}, topo=topo)
    clock = Clock()
    with History(db, clock=clock) as h:
        for i in range(8640):  # day 0 through the real write path
            clock.now = T0 + i * 10
            h.record_sweep(replace(flipped if i % 2 else steady, at=clock.now))
            if i % 2880 == 0:
                h.record_events([replace(e, at=clock.now) for e in sample_events()])
        assert len(run_rows(db)) == 8640
        with sqlite3.connect(db) as conn:  # days 1..29: the day before's rows, shifted
            for day in range(1, 30):
                conn.execute(
                    "INSERT INTO runs (keyset, first_at, last_at, interval, sweeps, overall, "
                    "links, states) SELECT keyset, first_at + ?1, last_at + ?1, interval, "
                    "sweeps, overall, links, states FROM runs WHERE first_at >= ?2 - ?1",
                    (DAY, T0 + day * DAY),
                )
                conn.execute(
                    "INSERT INTO events (at, kind, node_id, service, title, message, "
                    "critical, announced, extra) SELECT at + ?1, kind, node_id, service, "
                    "title, message, critical, announced, extra FROM events WHERE at >= ?2 - ?1",
                    (DAY, T0 + day * DAY),
                )
                conn.commit()
                h.prune(T0 + (day + 1) * DAY)
        size = h.size_bytes()
        uptime = h.uptime(T0 + 29 * DAY, T0 + 30 * DAY)
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    rows = run_rows(db)
    print(f"\n30 days, 12 services, 10 s, flapping: {len(rows)} runs, {size / 1e6:.2f} MB "
          f"(files on disk {on_disk / 1e6:.2f} MB)")  # fmt: skip
    assert len(rows) == 7 * 8640
    assert uptime[("n0", "svc1")] == pytest.approx(0.5, abs=1e-3)
    assert uptime[("n2", "svc3")] == pytest.approx(1.0)
    assert size < 8_000_000 and on_disk < 12_000_000


def test_a_file_over_the_cap_is_pruned_hard_and_shrinks(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = replace(sample_events()[0], message="x" * 2000)
    with History(db, clock=Clock(), max_bytes=300_000) as h:
        h.prune()
        for i in range(400):  # ~1 MB of events, all within their retention
            h.record_events([replace(big, at=T0 + i)])
        with caplog.at_level(logging.WARNING, logger="agent.edges.history"):
            h.prune()
        assert h.size_bytes() <= 300_000
        kept = h.events()
    assert 0 < len(kept) < 400 and kept[-1].at == T0 + 399  # the newest are kept
    assert db.stat().st_size <= 300_000
    assert "dropped its oldest records" in caplog.text


# ==== damage, versions, locks ==================================================


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)


def _future(path: Path) -> None:
    with History(path, clock=Clock()) as h:
        h.record_events(sample_events())
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, data BLOB)")


def _damaged_page(path: Path) -> None:
    with History(path, clock=Clock()) as h:
        for i in range(200):
            h.record_events([replace(sample_events()[0], at=T0 + i, message="m" * 500)])
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as f:  # scribble over the b-tree pages after the first
        f.seek(4096 * 2)
        f.write(b"\xa5" * 4096 * 4)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_garbage, id="not-a-database"),
        pytest.param(_future, id="from-a-newer-agent"),
        pytest.param(_foreign, id="someone-elses-database"),
        pytest.param(_damaged_page, id="damaged-page"),
    ],
)
def test_an_unusable_file_is_moved_aside_and_a_new_one_started(
    db: Path, spoil: object, caplog: pytest.LogCaptureFixture
) -> None:
    db.parent.mkdir(parents=True)
    spoil(db)  # type: ignore[operator]
    spoiled = db.read_bytes()
    with (
        caplog.at_level(logging.WARNING, logger="agent.edges.history"),
        History(db, clock=Clock()) as h,
    ):
        h.record_events(sample_events()[:1])
        assert len(h.events()) == 1
    aside = [p for p in db.parent.iterdir() if p.name.startswith("history.sqlite3.corrupt-")]
    (moved,) = [p for p in aside if not p.name.endswith("-wal")]
    assert moved.read_bytes() == spoiled  # kept as it was, for a post-mortem
    assert "moved it to" in caplog.text and str(moved) in caplog.text
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION


def test_an_unusable_folder_is_a_history_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(HistoryError) as caught:
        History(blocker / "history.sqlite3")
    assert isinstance(caught.value, AgentError) and str(blocker) in caught.value.message


def test_a_locked_database_is_waited_for_then_refused(db: Path) -> None:
    with History(db, clock=Clock()) as h:
        h.record_events(sample_events()[:1])
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another agent in the middle of a write
        with History(db, clock=Clock(), busy_timeout_s=0.2) as h:
            assert len(h.events()) == 1  # reading is not blocked (WAL)
            with pytest.raises(HistoryError) as caught:
                h.record_events(sample_events()[1:2])
            assert "locked by another process" in caught.value.message
            other.execute("COMMIT")
            h.record_events(sample_events()[1:2])  # free again: writes go through
            assert len(h.events()) == 2
    finally:
        other.close()


def test_a_short_lock_is_waited_out(db: Path) -> None:
    with History(db, clock=Clock()) as h:
        h.record_events(sample_events()[:1])
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        release.start()
        try:
            started = time.monotonic()
            h.record_events(sample_events()[1:2])  # waits (busy_timeout 5 s), then writes
            waited = time.monotonic() - started
        finally:
            release.join()
            other.close()
        assert len(h.events()) == 2 and waited >= 0.25


def test_migration_hook_upgrades_an_older_schema(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with History(db, clock=Clock()) as h:
        h.record_events(sample_events()[:1])
    calls: list[int] = []

    def to_v2(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE events ADD COLUMN source TEXT")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(schema, "MIGRATIONS", {1: to_v2})
    with History(db, clock=Clock()) as h:
        assert len(h.events()) == 1  # the data survived the upgrade
    with History(db, clock=Clock()):
        pass  # already current: no second run
    assert calls == [1]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "source" in [r[1] for r in conn.execute("PRAGMA table_info(events)")]


def test_wal_mode_and_settings(db: Path, store: History) -> None:
    store.record_events(sample_events()[:1])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


# ==== another process reads while this one writes ==============================

_READER = r"""
import json, sys
from agent.edges.history import History
with History(sys.argv[1], busy_timeout_s=0.5) as h:
    for line in sys.stdin:
        if line.strip() == "read":
            print(json.dumps([r.title for r in h.events()]), flush=True)
        elif line.strip().startswith("until "):
            target, seen = int(line.split()[1]), []
            while not seen or seen[-1] < target:
                seen.append(len(h.events()))
            print(json.dumps(seen), flush=True)
"""


def test_another_process_reads_while_this_one_writes(db: Path) -> None:
    with History(db, clock=Clock()) as h:
        h.record_events(sample_events()[:1])
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        reader = subprocess.Popen(
            [sys.executable, "-c", _READER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert reader.stdin is not None and reader.stdout is not None

        def ask(command: str) -> list[object]:
            assert reader.stdin is not None and reader.stdout is not None
            reader.stdin.write(command + "\n")
            reader.stdin.flush()
            answer: list[object] = json.loads(reader.stdout.readline())
            return answer

        try:
            assert len(ask("read")) == 1
            writer = sqlite3.connect(db, isolation_level=None)
            writer.execute("BEGIN IMMEDIATE")  # a write in flight, not committed
            writer.execute(
                "INSERT INTO events (at, kind, title, message, critical, announced) "
                "VALUES (?, 'service_up', 'in flight', '', 0, 1)",
                (T0 + 5,),
            )
            assert len(ask("read")) == 1  # not blocked, and sees only committed data
            writer.execute("COMMIT")
            writer.close()
            assert ask("read")[-1] == "in flight"
            # now the reader polls while this process writes 200 events, one commit each
            reader.stdin.write("until 202\n")
            reader.stdin.flush()
            for i in range(200):
                h.record_events([replace(sample_events()[0], at=T0 + 10 + i, title=f"e{i}")])
            seen = json.loads(reader.stdout.readline())
            assert seen == sorted(seen) and seen[-1] == 202
        finally:
            reader.stdin.close()
            code = reader.wait(timeout=20)
            reader.stdout.close()
        assert code == 0


# ==== output for the `history` command =========================================


def _records(store: History) -> list[EventRecord]:
    store.record_events(sample_events())
    return store.events()


def _local(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def test_render_history_lists_time_mark_title_and_message(store: History) -> None:
    text = render_history(_records(store), color=False, since=T0)
    lines = text.splitlines()
    assert lines[0] == f"Events since {_local(T0)[:16]} (local time):"
    assert lines[1] == f"{_local(T0 + 1)}  ✗ Mac mini — Backend: FastAPI down"
    assert lines[2].strip().startswith("FastAPI on woosuns-mac-mini refused the connection")
    assert lines[3] == f"{_local(T0 + 2)}  ! Desktop — GPU: relayed via DERP 'tok'"
    assert lines[5] == f"{_local(T0 + 300)}  ✓ Mac mini — Backend: FastAPI up (not notified)"
    assert lines[6].strip() == "FastAPI is back (up after 4 min)"
    assert lines[7] == f"{_local(T0 + 400)}  ! Mac mini — Backend online — Redis still down"
    assert "\x1b" not in text and text.endswith("\n")


def test_render_history_colours_and_scrubs_control_characters(store: History) -> None:
    store.record_events([replace(sample_events()[0], title="evil\x1b[2Jtitle", message="a\rb")])
    text = render_history(store.events(), color=True)
    assert "\x1b[31m✗\x1b[0m" in text  # critical and bad: red
    assert "\x1b[2J" not in text and "\r" not in text and "evil [2Jtitle" in text


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        pytest.param(T0, f"No events since {_local(T0)[:16]}.\n", id="with-since"),
        pytest.param(None, "No events recorded.\n", id="without-since"),
    ],
)
def test_render_history_when_empty(since: float | None, expected: str) -> None:
    assert render_history([], color=True, since=since) == expected


def test_history_to_json_has_stable_keys(store: History) -> None:
    data = history_to_json(_records(store))
    json.dumps(data)
    first = data[0]
    assert list(first) == [  # the order `history --json` prints them in
        "at", "kind", "node_id", "service", "title", "message", "critical", "announced",
        "node_name", "reason", "relay", "duration_s", "still_down", "folded", "evidence",
    ]  # fmt: skip
    assert {"at", "kind", "node_id", "service", "title", "message", "critical", "announced"} <= (
        first.keys()
    )
    assert first["at"] == datetime.fromtimestamp(T0 + 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (first["kind"], first["node_id"], first["service"]) == (
        EventKind.SERVICE_DOWN.value, "macmini", "FastAPI",
    )  # fmt: skip
    assert (first["critical"], first["announced"], first["reason"]) == (True, True, "refused")
    assert data[2]["announced"] is False and data[2]["duration_s"] == 299.0
    assert data[3]["still_down"] == ["Redis"]


NOW = T0 + 100 * DAY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("24h", NOW - DAY, id="hours"),
        pytest.param("30m", NOW - 1800, id="minutes"),
        pytest.param("7d", NOW - 7 * DAY, id="days"),
        pytest.param(" 1.5d ", NOW - 1.5 * DAY, id="fractional-days"),
        pytest.param("90s", NOW - 90, id="seconds"),
        pytest.param("2023-11-14T22:13:20+00:00", T0, id="iso-with-offset"),
        pytest.param("2023-11-14T22:13:20Z", T0, id="iso-utc-z"),
        pytest.param(
            "2023-11-14", datetime(2023, 11, 14).astimezone().timestamp(), id="date-local"
        ),
        pytest.param(
            "2023-11-14 08:30",
            datetime(2023, 11, 14, 8, 30).astimezone().timestamp(),
            id="datetime-local",
        ),
    ],
)
def test_parse_since(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("yesterday", id="words"),
        pytest.param("0s", id="zero"),
        pytest.param("-5h", id="negative"),
        pytest.param("2099-01-01", id="future"),
    ],
)
def test_parse_since_refuses_with_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_since(text, NOW)
    assert "--since" in caught.value.message


def test_latest_changes_hold_the_last_event_of_each_subject(store: History) -> None:
    down = ProbeResult(DOWN, Reason.REFUSED, "connection refused")
    store.record_events(
        [
            agent_started_event(T0, version="1", carried=0, unclean=False),
            service_down_event(MACMINI, FASTAPI, down, T0 + 1),
            service_down_event(MACMINI, REDIS, down, T0 + 2),
            service_up_event(MACMINI, REDIS, T0 + 3, down_for_s=1.0, announce=True),
            link_relayed_event(DESKTOP, "tok", T0 + 4, was_direct=True),
            agent_stopped_event(T0 + 5),
        ]
    )
    latest = [(r.kind, r.node_id, r.service) for r in store.latest_changes()]
    assert latest == [
        ("service_down", "macmini", "FastAPI"),
        ("service_up", "macmini", "Redis"),
        ("link_relayed", "desktop", None),
        ("agent_stopped", None, None),
    ]


def test_render_history_shows_the_agent_and_retired_records_as_notes(store: History) -> None:
    store.record_events(
        [
            agent_started_event(T0, version="1.2", carried=2, unclean=True),
            retired_event(EventKind.SERVICE_RETIRED, "macmini", "Old", T0 + 1),
            agent_stopped_event(T0 + 2),
        ]
    )
    lines = render_history(store.events(), color=False).splitlines()
    assert [line.split("  ", 1)[1] for line in lines[::2]] == [
        "· tailnet-agent started",
        "· macmini: Old removed from the topology",
        "· tailnet-agent stopped",
    ]
    assert lines[1].strip() == (
        "tailnet-agent 1.2 started; 2 known problems carried over (the previous run ended "
        "without a stop record: a crash or power loss?)"
    )


def test_the_evidence_is_stored_printed_under_its_event_and_carried_whole_in_json(
    store: History,
) -> None:
    from agent.core.evidence import Evidence

    busy = Evidence(
        state="down", detail="HTTP 503 (expected 200)", http_status=503, body="upstream busy",
        address="100.123.51.5:8000", link="direct", latency_ms=12.0, tailscale="Running",
        peer_online=True,
    )  # fmt: skip
    (event, *_) = sample_events()
    store.record_events([replace(event, evidence=busy)])
    (record,) = store.events()
    assert record.evidence == busy
    lines = render_history([record], color=False).splitlines()
    assert lines[2].strip() == "why: HTTP 503 · body: 'upstream busy' · direct · 12 ms"
    (shown,) = history_to_json([record])
    assert shown["evidence"] == dataclasses.asdict(busy)  # every key, set or not
    assert shown["evidence"]["endpoint"] == "" and shown["evidence"]["relay"] == ""
    json.dumps(shown)
