#!/usr/bin/env python3
"""Bench helper: run `tailnet-agent ARGS...` in this interpreter and say where its memory goes.

    python tests/bench/memory_trace.py OUT_DIR EVERY_S trace|light run --headless ...

Every EVERY_S seconds one JSON line goes to OUT_DIR/memory.jsonl: the process's RSS and its
anonymous part (/proc/self/status), SQLite's own heap (sqlite3_memory_used() of the
libsqlite3 that Python's sqlite3 module uses: the page cache, the schema, prepared
statements) and, with `trace`, what tracemalloc traces (Python's own allocations), a
tracemalloc snapshot going to OUT_DIR/snapshot-N. `light` traces nothing, so its RSS is the
agent's own. `summarise(OUT_DIR)` reads them back: the series, and which lines of code
hold more memory at the end than at the first sample after warm-up. tests/bench/soak.py
runs the agent through this with --trace-memory; tracemalloc slows the agent and its own
bookkeeping is RSS too, so a traced run's RSS is not the product's figure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path

__all__ = ["sample_line", "summarise"]

FRAMES = 8  # enough to see which agent code a library allocation was made for


def _sqlite_heap() -> object:
    """sqlite3_memory_used of the process's libsqlite3 (bytes), None where it is not found."""
    import _sqlite3  # the C module links the library every connection uses

    for name in (_sqlite3.__file__, ctypes.util.find_library("sqlite3")):
        if not name:
            continue
        try:
            function = ctypes.CDLL(name).sqlite3_memory_used
        except (OSError, AttributeError):
            continue
        function.restype = ctypes.c_int64
        return function
    return None


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def sample_line(started: float, sqlite_used: object) -> dict[str, float]:
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else -1024
    return {
        "at": round(time.monotonic() - started, 1),
        "rss_kib": _status_kib("VmRSS"),
        "anon_kib": _status_kib("RssAnon"),
        "traced_kib": round(traced / 1024, 1),
        "sqlite_kib": round(sqlite_used() / 1024, 1) if callable(sqlite_used) else -1,
    }


def _record(out: Path, every_s: float) -> None:
    started = time.monotonic()
    sqlite_used = _sqlite_heap()
    number = 0
    with (out / "memory.jsonl").open("a", encoding="utf-8") as series:
        while True:
            time.sleep(every_s)
            series.write(json.dumps(sample_line(started, sqlite_used)) + "\n")
            series.flush()
            if tracemalloc.is_tracing():
                tracemalloc.take_snapshot().dump(str(out / f"snapshot-{number}"))
                number += 1


def summarise(out: Path, *, skip: int = 1, top: int = 12) -> list[str]:
    """The series, and the lines whose memory grew most from sample `skip` to the last."""
    lines = [json.loads(x) for x in (out / "memory.jsonl").read_text().splitlines() if x]
    said = ["t s | RSS KiB | anon KiB | Python (tracemalloc) KiB | SQLite heap KiB"]
    said += [
        f"{x['at']:.0f} | {x['rss_kib']} | {x['anon_kib']} | {x['traced_kib']:.0f} | "
        f"{x['sqlite_kib']:.0f}"
        for x in lines
    ]
    snapshots = sorted(out.glob("snapshot-*"), key=lambda p: int(p.name.split("-")[1]))
    if len(snapshots) > skip + 1:
        first = tracemalloc.Snapshot.load(str(snapshots[skip]))
        last = tracemalloc.Snapshot.load(str(snapshots[-1]))
        said.append(f"grew most, snapshot {skip} -> {len(snapshots) - 1} (KiB, blocks):")
        for stat in last.compare_to(first, "traceback")[:top]:
            frames = " < ".join(
                f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[:4]
            )
            said.append(f"{stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d}  {frames}")
    return said


if __name__ == "__main__":
    folder, every, mode = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    folder.mkdir(parents=True, exist_ok=True)
    if mode == "trace":
        tracemalloc.start(FRAMES)
    threading.Thread(target=_record, args=(folder, every), daemon=True).start()
    from agent.cli import main

    sys.argv = ["tailnet-agent", *sys.argv[4:]]
    raise SystemExit(main())
