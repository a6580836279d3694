"""Linux namespaces for fault tests: the agent run under `unshare` as an unprivileged user
mapped to root, so a test can mount a small tmpfs (a disk that fills) or bind a hosts file
of its own over /etc/hosts in an empty network namespace — without root, and seen by that
process alone. `namespaced(flags, setup)` is the prefix for running_agent: `setup`, a sh
script run inside before the agent is exec'd (its arguments are "$@"; the agent keeps the
process, so SIGTERM reaches it). `unshare_works(flags)` says whether this machine permits it
(a test skips cleanly where it does not). Another process reaches the namespace's mounts
through /proc/PID/root (`inside`).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

__all__ = ["inside", "namespaced", "unshare_works"]


def _unshare(flags: tuple[str, ...]) -> list[str]:
    return ["unshare", "--user", "--map-root-user", *flags]


@functools.cache
def unshare_works(flags: tuple[str, ...]) -> bool:
    """True when `unshare --user --map-root-user FLAGS` can mount a tmpfs here."""
    if shutil.which("unshare") is None:
        return False
    probe = "mount -t tmpfs tmpfs /mnt 2>/dev/null || mount -t tmpfs tmpfs /tmp"
    try:
        done = subprocess.run(
            [*_unshare(flags), "sh", "-c", probe], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def namespaced(flags: tuple[str, ...], setup: str, *args: str) -> list[str]:
    """The prefix that runs `setup` (sh, `set -e`; `args` are $1…) in new namespaces, then
    execs the command that follows the prefix."""
    script = f'set -e\n{setup}\nshift {len(args)}\nexec "$@"'
    return [*_unshare(flags), "sh", "-c", script, "sh", *args]


def inside(pid: int, path: Path) -> Path:
    """`path` as the process `pid` sees it (its mount namespace), from outside."""
    return Path(f"/proc/{pid}/root") / path.relative_to("/")
