"""One running agent per user: an OS file lock in the state folder.

A second `tailnet-agent` (tray or headless) would double every notification and
fight over the history file, so it stops at once with a clear message. The lock
is the OS's (flock on POSIX, msvcrt.locking on Windows): it goes away with the
process, even after a crash, so a stale file never blocks a start.

On Windows the holder also owns a named mutex (`mutex_name`, the app id) for as long as it
runs: the installer's AppMutex looks for it, so an upgrade or uninstall never replaces the
files of a live agent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

from agent.errors import AgentError

__all__ = ["AlreadyRunning", "InstanceLock"]


class AlreadyRunning(AgentError):
    title = "tailnet-agent is already running"


class InstanceLock:
    """`with InstanceLock(path):` — raises AlreadyRunning when another process holds it."""

    def __init__(self, path: Path, *, mutex_name: str | None = None) -> None:
        self.path = path
        self.mutex_name = mutex_name
        self._file: IO[str] | None = None
        self._mutex: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            _lock(handle)
        except OSError:
            try:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
            except OSError:  # Windows: the holder's locked byte cannot be read
                holder = "another process"
            handle.close()
            raise AlreadyRunning(
                f"tailnet-agent is already running (pid {holder}); quit it from its menu "
                "or stop it before starting another"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        if self.mutex_name is not None:
            self._mutex = _hold_mutex(self.mutex_name)

    def release(self) -> None:
        if self._mutex is not None:
            _release_mutex(self._mutex)
            self._mutex = None
        if self._file is not None:
            self._file.close()  # closing the file drops the lock
            self._file = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


if sys.platform == "win32":
    import ctypes
    import msvcrt

    def _lock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _hold_mutex(name: str) -> int | None:
        """CreateMutexW: a handle the installer's AppMutex sees until it is closed (or we exit)."""
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.CreateMutexW.restype = ctypes.c_void_p
        handle = kernel32.CreateMutexW(None, False, name)
        return int(handle) if handle else None  # no mutex only weakens the installer's check

    def _release_mutex(handle: int) -> None:
        ctypes.WinDLL("kernel32").CloseHandle(ctypes.c_void_p(handle))

else:
    import fcntl

    def _lock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _hold_mutex(name: str) -> int | None:
        return None  # named mutexes are a Windows installer's concern

    def _release_mutex(handle: int) -> None:
        pass
