"""`tailnet-agent`'s output on stdout arrives whole, even unbuffered (PYTHONUNBUFFERED,
`python -u`) into a pipe read slowly while signals interrupt the writes: there a raw write
returns short and Python's text layer would drop the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

WRITER = """
import os, signal, sys
from agent.cli import _write_out
signal.signal(signal.SIGUSR1, lambda *_: None)  # a handler: a blocked write is interrupted
sys.stderr.write(f"{os.getpid()}\\n")
sys.stderr.flush()
_write_out("é" * 500_000 + "\\n")  # 1 MB in UTF-8, sixteen pipe buffers
"""


def test_a_large_output_arrives_whole_through_a_slow_pipe_under_signals() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    expected = ("é" * 500_000 + "\n").encode("utf-8")
    received = b""
    with subprocess.Popen(
        [sys.executable, "-c", WRITER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        pid = int(child.stderr.readline())
        while chunk := child.stdout.read1(16_384):
            received += chunk
            # while the writer still waits for room in the pipe (not once it may be exiting)
            if len(received) + 4 * 65_536 < len(expected):
                os.kill(pid, signal.SIGUSR1)
                time.sleep(0.001)
        assert child.wait(30) == 0, child.stderr.read()
    assert received == expected
