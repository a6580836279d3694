"""The real agent, `run --headless`, as a process a fault test watches through its stderr.

`running_agent(sandbox, topology, ...)` starts the installed agent in the sandbox (its
console log, INFO and up for the headless monitor, goes to a file), and yields a
`RunningAgent`: what it has said so far, a wait for a line or a count of them, its memory.
On exit it is stopped with SIGTERM and must exit 0. `prefix` runs it under another program
(unshare, for a namespace of its own).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from tests.conftest import AgentSandbox, installed_agent

__all__ = ["HANG_GUARD_S", "RunningAgent", "running_agent"]

T = TypeVar("T")

HANG_GUARD_S = 60.0  # generous: a shared 2-core machine; every wait ends when its line comes


class RunningAgent:
    def __init__(self, process: subprocess.Popen[bytes], stderr: Path) -> None:
        self.process = process
        self.stderr = stderr

    def said(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def lines(self, *words: str) -> list[str]:
        """Its lines that contain every one of `words`."""
        return [line for line in self.said().splitlines() if all(w in line for w in words)]

    def wait_line(self, *words: str, count: int = 1, after: int = 0) -> str:
        """Wait until `count` lines past the first `after` contain all `words`; the last."""

        def found() -> str | None:
            hits = self.lines(*words)[after:]
            return hits[count - 1] if len(hits) >= count else None

        line = self.wait(found, f"no line with {words!r} (x{count})")
        assert line is not None
        return line

    def wait(self, predicate: Callable[[], T], what: str) -> T:
        """Wait until `predicate` is truthy (a hang guard, not a timing) and return it; on
        timeout, or when the agent exits meanwhile, fail with what the agent said."""
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            value = predicate()
            if value:
                return value
            code = self.process.poll()
            if code is not None or time.monotonic() > deadline:
                state = f"the agent exited ({code})" if code is not None else "timed out"
                raise AssertionError(f"{what} ({state}); it said:\n{self.said()[-6000:]}")
            time.sleep(0.05)

    def rss_kib(self, pid: int | None = None) -> int:
        """The agent's resident memory (VmRSS, KiB): of `pid` when it runs under a prefix."""
        status = Path(f"/proc/{pid or self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1])


@contextlib.contextmanager
def running_agent(
    sandbox: AgentSandbox,
    topology: Path | str,  # a file, or a URL
    *args: str,
    node: str = "desktop",
    prefix: Sequence[str] = (),
) -> Iterator[RunningAgent]:
    stderr = sandbox.root / "agent-stderr.log"
    argv = [
        *prefix,
        installed_agent(),
        "run",
        "--headless",
        "--topology",
        str(topology),
        "--node",
        node,
        *args,
    ]
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            argv, env=sandbox.env, stdin=subprocess.DEVNULL, stdout=err, stderr=err
        )
    agent = RunningAgent(process, stderr)
    try:
        yield agent
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            said = agent.said()[-4000:]
            raise AssertionError(f"the agent did not stop on SIGTERM:\n{said}") from None
    assert code == 0, f"the agent exited {code}:\n{agent.said()[-4000:]}"
