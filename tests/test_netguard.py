"""The loopback-only guard loaded into agent subprocesses really refuses outside addresses.

The "real" connect is swapped for a recorder inside the child first, so even a
broken guard could not send a packet anywhere.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import AgentSandbox

CHILD = textwrap.dedent(
    """
    import socket, sitecustomize
    passed = []
    sitecustomize._real_connect = lambda sock, addr: passed.append(addr[0])
    for host in ("100.123.51.5", "192.168.0.23", "127.0.0.9", "::1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as sock:
            try:
                sock.connect((host, 9))
            except PermissionError:
                pass
    print(",".join(passed))
    """
)


def test_guard_refuses_outside_addresses_and_logs_them(sandbox: AgentSandbox) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=sandbox.env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "127.0.0.9,::1"
    assert sandbox.outside_connections() == ["100.123.51.5", "192.168.0.23"]
