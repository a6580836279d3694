"""One agent per user: the lock is the OS's, so a crashed holder never blocks a start."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.edges.single_instance import AlreadyRunning, InstanceLock

HOLD = (
    "import sys, time; from pathlib import Path\n"
    "from agent.edges.single_instance import InstanceLock\n"
    "lock = InstanceLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_second_holder_is_refused_until_the_first_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "state" / "agent.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        with pytest.raises(AlreadyRunning, match=f"pid {child.pid}"):
            InstanceLock(path).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    with InstanceLock(path):  # the crashed holder left the file, not the lock
        assert path.read_text() != str(child.pid)
    with InstanceLock(path):  # released on exit: taken again
        pass
