"""Linux namespaces for tests: a command run in new namespaces of its own, seen by it alone.

`unshare_argv(flags)` is the prefix that makes them: `unshare FLAGS` as root, and as a
normal user `unshare --user --map-root-user FLAGS` (a user namespace mapped to root, so a
test can mount a small tmpfs — a disk that fills — or bind a hosts file of its own over
/etc/hosts in an empty network namespace without root). `namespaced(flags, setup)` is that
prefix with a sh script `setup` run inside before the command is exec'd (its arguments are
"$@"; the command keeps the process, so SIGTERM reaches it). `nsenter_argv(pid, kinds)`
runs a command in a running process's namespaces, and `inside(pid, path)` reaches a
namespace's mounts from outside, through /proc/PID/root. tests/helpers/netns builds the
kernel-level loopback guard on these.

`require(flags)` is how a test that needs them starts: where this machine cannot make them
(no util-linux, or a runner that is not root and forbids unprivileged user namespaces, as
Ubuntu 24.04's AppArmor does) the test skips and says why; on CI (CI=true, where the suite
runs as root) it fails instead, so a namespace test can never pass there unrun.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

__all__ = ["inside", "namespaced", "nsenter_argv", "require", "unavailable", "unshare_argv"]

PROBE_TIMEOUT_S = 30


def _as_root() -> bool:
    return os.geteuid() == 0


def unshare_argv(flags: Sequence[str]) -> list[str]:
    """The prefix that runs a command in new namespaces `flags` (`--net`, `--mount`)."""
    user = [] if _as_root() else ["--user", "--map-root-user"]
    return ["unshare", *user, *flags]


def nsenter_argv(pid: int, kinds: Sequence[str]) -> list[str]:
    """The prefix that runs a command in the namespaces `kinds` ("net", "mnt") of `pid`
    (as a normal user, through the user namespace it made)."""
    ns = f"/proc/{pid}/ns"
    if _as_root():
        return ["nsenter", *(f"--{kind}={ns}/{kind}" for kind in kinds), "--"]
    entered = (f"--{kind}={ns}/{kind}" for kind in ("user", *kinds))
    return ["nsenter", *entered, "--preserve-credentials", "--"]


def namespaced(flags: Sequence[str], setup: str, *args: str) -> list[str]:
    """The prefix that runs `setup` (sh, `set -e`; `args` are $1…) in new namespaces, then
    execs the command that follows the prefix."""
    script = f'set -e\n{setup}\nshift {len(args)}\nexec "$@"'
    return [*unshare_argv(flags), "sh", "-c", script, "sh", *args]


def inside(pid: int, path: Path) -> Path:
    """`path` as the process `pid` sees it (its mount namespace), from outside."""
    return Path(f"/proc/{pid}/root") / path.relative_to("/")


@functools.cache
def unavailable(flags: tuple[str, ...]) -> str | None:
    """Why new namespaces `flags` cannot be made and used here, or None when they can: a
    probe does inside what the tests do (mount a tmpfs, bring `lo` up)."""
    tools = ["unshare", "nsenter", *(["ip"] if "--net" in flags else [])]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} missing: apt-get install util-linux iproute2"
    steps = ["true"]
    if "--mount" in flags:
        steps.append("{ mount -t tmpfs tmpfs /mnt 2>/dev/null || mount -t tmpfs tmpfs /tmp; }")
    if "--net" in flags:
        steps.append("ip link set lo up")
    argv = [*unshare_argv(flags), "sh", "-c", " && ".join(steps)]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`{' '.join(argv[:-3])}` did not run: {error}"
    if done.returncode == 0:
        return None
    said = done.stderr.strip().splitlines()
    who = "as root" if _as_root() else "as a normal user (unprivileged user namespaces)"
    return (
        f"`{' '.join(argv[:-3])}` is not permitted here {who}: "
        f"{said[-1] if said else f'exit {done.returncode}'}"
    )


def require(flags: Sequence[str]) -> None:
    """Skip the calling test where namespaces `flags` cannot be made, saying why; fail on CI
    (CI=true), which runs as root: there the test must really run."""
    why = unavailable(tuple(flags))
    if why is None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true, so this test may not be skipped: {why}", pytrace=False)
    pytest.skip(why)
