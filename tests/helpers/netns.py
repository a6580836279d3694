"""A network of its own for agent subprocesses: loopback only, watched by the kernel.

The Python-level guard (tests/helpers/netguard) patches `socket.socket.connect` and friends,
which uvloop (libuv's own connect, from 48 probes up) and any C extension never call. This
guard works one level down, where every event loop and library must pass: the kernel.

`isolated_network()` starts a holder process in a new network namespace (tests/helpers/
namespaces: `unshare --net`, as a normal user in a user namespace of its own; a test calls
`namespaces.require(NETNS)` first, to skip where it cannot be made) in which

- `lo` is up and every IPv4 and IPv6 address is routed to it as local (`ip route add local
  0.0.0.0/0 dev lo`), so no packet can leave the namespace: a connect to 100.x or 192.0.2.x
  gets a reset from this namespace's own kernel, a datagram goes nowhere;
- the holder watches `lo` with an AF_PACKET socket and writes the destination of each
  outgoing flow that is not loopback (127.0.0.0/8, ::1) to the log as `kernel HOST`, the
  netguard log's format, so `AgentSandbox.outside_connections()` reports both.

`IsolatedNetwork.prefix` is the argv that runs a command inside (`nsenter --net=...`), and
`settle()` waits until the holder has read every packet sent before it was called.

    python -m tests.helpers.netns --log LOG   # the holder itself (run inside the namespace)
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.namespaces import nsenter_argv, unshare_argv

__all__ = ["MARKER", "NETNS", "IsolatedNetwork", "isolated_network", "main"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
TCP, UDP = 6, 17
SYN, ACK = 0x02, 0x10
MARKER = ("192.0.2.254", 9)  # TEST-NET-1 (RFC 5737): the settle() datagram's destination
SETTLE_TIMEOUT_S = 20.0
NETNS = ("--net",)  # the namespaces it makes
REPO = Path(__file__).resolve().parents[2]


def _destination(packet: bytes) -> tuple[str, int] | None:
    """(address, port) of a packet that starts a flow: a TCP SYN (a connect) or a UDP
    datagram, IPv4 or IPv6. None for the rest: this kernel's own answers (a TCP reset, an
    ICMP "port unreachable") go back to the address the connect came from, which the
    local route makes the destination's own."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        header = (packet[0] & 0x0F) * 4
        protocol, address = packet[9], socket.inet_ntop(socket.AF_INET, packet[16:20])
    elif version == 6 and len(packet) >= 40:
        header, protocol = 40, packet[6]
        address = socket.inet_ntop(socket.AF_INET6, packet[24:40])
    else:
        return None
    if protocol == TCP:
        if len(packet) < header + 14 or packet[header + 13] & (SYN | ACK) != SYN:
            return None
    elif protocol != UDP or len(packet) < header + 4:
        return None
    return address, int.from_bytes(packet[header + 2 : header + 4], "big")


def _watch(log: Path, marks: Path) -> None:
    """Inside the namespace: route everything to lo, then log each outside flow once."""
    for argv in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo"],
        ["ip", "-6", "route", "add", "local", "::/0", "dev", "lo"],
    ):
        subprocess.run(argv, check=True)
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    sniffer.bind(("lo", 0))
    print("ready", flush=True)
    seen: set[tuple[str, int]] = set()
    marks_seen = 0
    while True:
        packet, (_ifname, _proto, pkttype, *_rest) = sniffer.recvfrom(65535)
        if pkttype != PACKET_OUTGOING:
            continue
        flow = _destination(packet)
        if flow is None or ipaddress.ip_address(flow[0]).is_loopback:
            continue
        if flow == MARKER:
            marks_seen += 1
            marks.write_text(str(marks_seen), encoding="utf-8")
            continue
        if flow in seen:  # a retransmission of a flow already written down
            continue
        seen.add(flow)
        with log.open("a", encoding="utf-8") as out:
            out.write(f"kernel {flow[0]} {flow[1]}\n")


@dataclass
class IsolatedNetwork:
    """A running namespace: its holder process, and how to run a command inside."""

    holder: subprocess.Popen[str]
    prefix: list[str]
    marks: Path

    def settle(self) -> None:
        """Wait until the holder has seen every packet sent so far (a marker datagram sent
        after them comes out of the same queue last)."""
        before = self._marks()
        subprocess.run(
            [
                *self.prefix,
                sys.executable,
                "-c",
                "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                ".sendto(b'settle', (sys.argv[1], int(sys.argv[2])))",
                *map(str, MARKER),
            ],
            check=True,
            timeout=SETTLE_TIMEOUT_S,
        )
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while self._marks() <= before:
            if self.holder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the network namespace's watcher stopped answering")
            time.sleep(0.02)

    def _marks(self) -> int:
        try:
            return int(self.marks.read_text(encoding="utf-8") or 0)
        except (OSError, ValueError):
            return 0


@contextlib.contextmanager
def isolated_network(log: Path) -> Iterator[IsolatedNetwork]:
    """A loopback-only network namespace whose outside flows go to `log` (see the module)."""
    marks = log.with_name(log.name + ".marks")
    holder = subprocess.Popen(
        [*unshare_argv(NETNS), sys.executable, "-m", "tests.helpers.netns", "--log", str(log)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the network namespace did not start (exit {holder.wait(5)})")
        yield IsolatedNetwork(holder, nsenter_argv(holder.pid, ("net",)), marks)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    _watch(args.log, args.log.with_name(args.log.name + ".marks"))


if __name__ == "__main__":
    main()
