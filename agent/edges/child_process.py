"""Child processes for the edges that run a CLI (tailscale status, tailscale ping): spawned
and read on a thread of their own, bounded and killed from the event loop.

`run_child(argv, timeout_s=T)` runs an argv list (never a shell), stdin from /dev/null and
no console window on Windows, and returns its exit code and output; `until=b"..."` stops
reading (and kills the process) at the first stdout line that starts so. `StartedChild` is
the same in two steps: spawned at once (no event loop needed), collected later with `wait`.
The event loop owns the bound and the cancel: past `timeout_s`, or when the caller is
cancelled, the process is killed and reaped before `wait` raises TimeoutError or
CancelledError, so no child outlives its caller.

Why a thread and not asyncio's subprocesses: on uvloop's loop (check from 48 probes on) a
spawn blocks the loop for fork and exec, about 9 ms for a 40 MiB agent; ten peers' pings
held every probe of a 505-service check for 80 ms. subprocess.Popen on a thread uses
vfork/posix_spawn where CPython can and blocks nothing but its own thread (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["ChildResult", "StartedChild", "run_child"]

_KILL_WAIT_S = 5.0  # after a kill: how long the reader thread may take to see the end


@dataclass(frozen=True)
class ChildResult:
    """What a child printed, and its exit code (None: killed once `until` was read)."""

    returncode: int | None
    out: bytes
    err: bytes


class _Child:
    """One child process and the thread that reads it; `kill` may come from any thread."""

    def __init__(self, argv: Sequence[str], until: bytes | None, max_output: int) -> None:
        self._argv = list(argv)
        self._until = until
        self._max_output = max_output
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            if self._proc is not None and self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, OSError):
                    self._proc.kill()

    def run(self) -> ChildResult | BaseException:
        """The thread's work: spawn, read, reap. Returns the result or the spawn's error."""
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NO_WINDOW
        with self._lock:
            if self._killed:
                return asyncio.CancelledError()
            try:
                proc = subprocess.Popen(  # noqa: S603 — an argv list from the caller, no shell
                    self._argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    **kwargs,
                )
            except OSError as exc:
                return exc
            self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None  # noqa: S101 — PIPE above
        if self._until is None:
            out, err = proc.communicate()
            return ChildResult(proc.returncode, out, err)
        out = _read_until(proc.stdout, self._until, self._max_output)
        err = b""
        if not _has_line(out, self._until):
            err = proc.stderr.read(self._max_output)
            proc.wait()
            returncode: int | None = proc.returncode
        else:
            self.kill()  # done with it: the line was read
            proc.wait()
            returncode = None
        proc.stdout.close()
        proc.stderr.close()
        return ChildResult(returncode, out, err)


def _read_until(stream: IO[bytes], until: bytes, max_output: int) -> bytes:
    out = b""
    while len(out) < max_output:
        line = stream.readline(max_output - len(out))
        if not line:
            break
        out += line
        if line.startswith(until):
            break
    return out


def _has_line(out: bytes, start: bytes) -> bool:
    return out.startswith(start) or b"\n" + start in out


class StartedChild:
    """A child spawned now (no event loop needed) and read on a thread of its own until it
    ends; `wait` collects it on an event loop, `kill` ends it from any thread (a no-op once
    it has ended). `check` starts `tailscale status` so before its imports and the topology."""

    def __init__(
        self, argv: Sequence[str], *, until: bytes | None = None, max_output: int = 16 * 1024
    ) -> None:
        self._child = _Child(argv, until, max_output)
        self._lock = threading.Lock()
        self._outcome: ChildResult | BaseException | None = None
        self._waiting: list[tuple[asyncio.AbstractEventLoop, _Outcome]] = []
        threading.Thread(target=self._work, name=f"child {argv[0]}", daemon=True).start()

    def _work(self) -> None:
        outcome = self._child.run()
        with self._lock:
            self._outcome = outcome
            waiting, self._waiting = self._waiting, []
        for loop, future in waiting:
            with contextlib.suppress(RuntimeError):  # that loop closed first: nobody waits
                loop.call_soon_threadsafe(_settle, future, outcome)

    def kill(self) -> None:
        self._child.kill()

    async def wait(self, timeout_s: float) -> ChildResult:
        """Its result within `timeout_s` from now. Raises OSError when it could not be
        spawned (FileNotFoundError, PermissionError, ...), TimeoutError past the bound; the
        process is gone by then (killed and reaped, on a cancel too)."""
        loop = asyncio.get_running_loop()
        finished: _Outcome = loop.create_future()
        with self._lock:
            if self._outcome is not None:
                finished.set_result(self._outcome)
            else:
                self._waiting.append((loop, finished))
        try:
            async with asyncio.timeout(timeout_s):
                outcome = await asyncio.shield(finished)
        except BaseException:  # TimeoutError or CancelledError: kill, reap, then say so
            self.kill()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(_KILL_WAIT_S):
                    await asyncio.shield(finished)
            raise
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


_Outcome = asyncio.Future[ChildResult | BaseException]


async def run_child(
    argv: Sequence[str],
    *,
    timeout_s: float,
    until: bytes | None = None,
    max_output: int = 16 * 1024,
) -> ChildResult:
    """Run `argv` to its end (or to its first stdout line starting with `until`, reading at
    most `max_output` bytes of each stream then) within `timeout_s`: StartedChild(...).wait.
    """
    return await StartedChild(argv, until=until, max_output=max_output).wait(timeout_s)


def _settle(
    future: asyncio.Future[ChildResult | BaseException], outcome: ChildResult | BaseException
) -> None:
    if not future.done():
        future.set_result(outcome)
