"""The event-loop policy for sweeps: which loop runs them, and the collector set aside once.

`run(main, probes=n)` is `asyncio.run(main)` made for sweeps of n probes, used alike by
`check` (one sweep) and by the monitor's worker thread (a sweep every interval): on
uvloop's event loop from UVLOOP_MIN_PROBES probes on where uvloop is installed (Linux,
macOS; about 30 % less CPU per probe, see docs/benchmarks.md), else on asyncio's own,
and with the objects alive at the first call (modules, classes, the topology) frozen out
of the cyclic collector's way. `loop_factory(probes)` is the choice alone.
"""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["UVLOOP_MIN_PROBES", "loop_factory", "run"]

T = TypeVar("T")

UVLOOP_MIN_PROBES = 48
"""From this many probes a sweep on, sweeps run on uvloop (where it is installed)."""


def loop_factory(probes: int) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop for sweeps of `probes` probes (the topology's services):
    uvloop's from UVLOOP_MIN_PROBES on, where it is installed; asyncio's otherwise.

    uvloop takes about 30 % off the CPU of each probe, but its import costs about 3 ms
    and 2 MiB of RSS: a few dozen probes a sweep do not win that back, a few hundred do.
    """
    if probes >= UVLOOP_MIN_PROBES:
        try:
            import uvloop
        except ImportError:  # Windows, or not installed: the stdlib loop does the same work
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


@functools.cache
def _freeze_startup_objects() -> None:
    gc.freeze()


def run(main: Coroutine[Any, Any, T], *, probes: int) -> T:
    """Run `main` to completion on a new event loop from `loop_factory(probes)`, like
    asyncio.run (same clean-up), and return its result. Any thread may call it.

    On the first call in a process, everything alive at that point (modules, classes, the
    topology) is moved out of the cyclic garbage collector's sight (gc.freeze): a sweep
    makes many short-lived objects, and without this every full collection walks all of
    start-up's objects again. Only once: a later freeze could also pin the garbage of the
    runs before it.
    """
    _freeze_startup_objects()
    kept: list[T] = []
    with asyncio.Runner(loop_factory=loop_factory(probes)) as runner:
        runner.run(_keep(main, kept))
    return kept[0]


async def _keep(main: Coroutine[Any, Any, T], kept: list[T]) -> None:
    # The task's own result stays None: in the main thread asyncio.Runner.run's SIGINT handler
    # holds the task, and Python 3.11's signal.getsignal()/signal() build a ValueError message
    # with repr(handler), which reprs the task and so its result: a whole 500-service
    # Snapshot, twice per check (~20 ms).
    kept.append(await main)
