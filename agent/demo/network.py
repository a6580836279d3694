"""The simulated Sparklio network: its loopback addresses, its services, its topology and
what its `tailscale status --json` says.

`DemoNetwork.start(bundled)` takes the bundled default topology (the one home of what the
Sparklio network is), gives each machine a loopback address instead of its 100.x one
(`choose_addresses`: in a 127.84.N.0/24 block of this run's own where all of 127/8 answers,
the first whose real ports are all free, so two demos and the test suite never meet),
starts a stand-in for every service (agent.demo.standins, on an event loop in a thread of
its own) and keeps, per peer, what Tailscale would say: online
or not, direct or relayed through a DERP region. `status_json()` is that state printed as
the real CLI prints it (keys, nodekeys, RFC 3339 times: reference/tailscale-facts.md), and
`read_tailnet` hands it to the agent through the core's own parser — in-process, because
a frozen build has no Python to run a stand-in `tailscale` with. The topology it writes
names only loopback addresses, so nothing the agent is given leads it off this machine.

This machine is the laptop (the frontend developer's): the desktop and the Mac mini are
the peers whose links and services the walk changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from agent.core.model import Access, Node, ServiceKey, TailnetView, Topology
from agent.core.tailnet import parse_status_json
from agent.core.topology import dump_topology
from agent.demo.standins import StandIn
from agent.edges import paths
from agent.errors import AgentError

__all__ = [
    "ADDRESS_CANDIDATES",
    "BLOCK_NET",
    "BLOCK_TRIES",
    "DERP_REGION",
    "SELF_NODE",
    "DemoError",
    "DemoNetwork",
    "PeerState",
    "block_addresses",
    "can_bind",
    "choose_addresses",
]

T = TypeVar("T")

log = logging.getLogger(__name__)

SELF_NODE = "laptop"
DERP_REGION = "tok"  # Tokyo: the home DERP of a tailnet in Korea
# Linux and Windows answer on all of 127/8; macOS only on 127.0.0.1 (and ::1) unless aliased.
# Where 127/8 answers, each run takes a /24 of its own, so that no other program (another
# demo, a test's server) can take a stopped stand-in's port and answer for it.
BLOCK_NET = "127.84"  # 127.84.N.0/24, N = 0..255
BLOCK_TRIES = 32
ADDRESS_CANDIDATES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "::1")
_UNBOUND_SELF = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
_CALL_TIMEOUT_S = 30.0  # a hang guard for starting or stopping stand-ins
_TAILNET = "taild3m0.ts.net"
_USER_ID = 7300000000000001
_OS_NAMES = {"windows": "windows", "macos": "macOS", "linux": "linux"}
_NEVER = "0001-01-01T00:00:00Z"


class DemoError(AgentError):
    title = "The demo cannot start"


def can_bind(host: str) -> bool:
    """True when a server can listen on `host` here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True


def block_addresses(index: int) -> tuple[str, ...]:
    """The hosts .1 to .4 of loopback block `index` (modulo 256): 127.84.N.1 … 127.84.N.4."""
    return tuple(f"{BLOCK_NET}.{index % 256}.{host}" for host in range(1, 5))


def choose_addresses(topology: Topology, self_id: str, bindable: Sequence[str]) -> dict[str, str]:
    """A distinct loopback address for each node (node id -> address).

    Every peer needs one that can be bound (its stand-ins listen there). This machine's
    services that listen on localhost too are probed on 127.0.0.1 whatever its address, so
    when addresses are scarce (macOS) and it has no other, its own address is one that is
    never connected to. Raises DemoError when there are too few.
    """
    me = topology.node(self_id)
    if me is None:
        raise DemoError(f"the bundled topology has no node {self_id!r} to be this machine")
    peers = [n.id for n in topology.nodes if n.id != self_id]
    self_binds = any(s.access is not Access.LOCALHOST_AND_TAILSCALE for s in me.services)
    free = list(bindable)
    if self_binds or len(free) > len(peers):
        if not free:
            raise DemoError("no loopback address can be listened on here")
        own = free.pop(0)
    else:
        own = next(a for a in _UNBOUND_SELF if a not in free)
    if len(free) < len(peers):
        raise DemoError(
            f"the demo needs {len(peers) + 1} loopback addresses and only "
            f"{', '.join(bindable) or 'none'} can be listened on here "
            "(on macOS: sudo ifconfig lo0 alias 127.0.0.2 up)"
        )
    return {self_id: own, **dict(zip(peers, free, strict=False))}


@dataclass(frozen=True, slots=True)
class PeerState:
    """What Tailscale says of one peer."""

    online: bool = True
    relay: str = ""  # a DERP region code: relayed through it; "" direct


def _rfc3339(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _peer_status(node: Node, state: PeerState | None, index: int, now: float) -> dict[str, Any]:
    """One PeerStatus (Self when `state` is None), with every key the CLI always prints."""
    key = _hex(node.hostname)
    active = state is not None and state.online
    last_seen = _NEVER if state is None or state.online else _rfc3339(now - 60)
    return {
        "ID": f"n{key[:10]}CNTRL",
        "NodeID": 6219045538120000 + index,
        "PublicKey": f"nodekey:{key}",
        "HostName": node.hostname,
        "DNSName": f"{node.hostname}.{_TAILNET}.",
        "OS": _OS_NAMES.get(node.os, node.os),
        "UserID": _USER_ID,
        "TailscaleIPs": [node.ip],
        "Addrs": [_endpoint(node.ip, 41641)] if state is None else None,
        "CurAddr": _endpoint(node.ip, 41641) if active and state and not state.relay else "",
        "Relay": state.relay if state and state.relay else DERP_REGION,
        "PeerRelay": "",
        "RxBytes": 0 if state is None else 1203344 + index,
        "TxBytes": 0 if state is None else 88410 + index,
        "Created": "2025-11-02T08:15:30Z",
        "LastWrite": _NEVER if state is None else _rfc3339(now - 1),
        "LastSeen": last_seen,
        "LastHandshake": _NEVER if not active else _rfc3339(now - 30),
        "Online": True if state is None else state.online,
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": active,
        "PeerAPIURL": [f"http://{_endpoint(node.ip, 49233)}"],
        "TaildropTarget": 0 if state is None else (1 if state.online else 5),
        "NoFileSharingReason": "",
        "InNetworkMap": True,
        "InMagicSock": active,
        "InEngine": active,
        "KeyExpiry": "2026-11-01T02:40:11Z",
    }


def status_document(
    topology: Topology, self_id: str, peers: Mapping[str, PeerState], now: float
) -> dict[str, Any]:
    """`tailscale status --json` of a running Tailscale on node `self_id`."""
    me = topology.node(self_id)
    assert me is not None  # noqa: S101 — narrows a type the lines above guarantee; not an input check
    others = [n for n in topology.nodes if n.id != self_id]
    return {
        "Version": "1.102.3-t5f2a9c1e7-g0b3d6a8f1",
        "TUN": True,
        "BackendState": "Running",
        "HaveNodeKey": True,
        "AuthURL": "",
        "TailscaleIPs": [me.ip],
        "Self": _peer_status(me, None, 0, now),
        "Health": [],
        "MagicDNSSuffix": _TAILNET,
        "CurrentTailnet": {
            "Name": "newcomer@example.com",
            "MagicDNSSuffix": _TAILNET,
            "MagicDNSEnabled": True,
        },
        "CertDomains": None,
        "ExtraRecords": None,
        "Peer": {
            f"nodekey:{_hex(n.hostname)}": _peer_status(n, peers.get(n.id, PeerState()), i, now)
            for i, n in enumerate(others, start=1)
        },
        "User": {
            str(_USER_ID): {
                "ID": _USER_ID,
                "LoginName": "newcomer@example.com",
                "DisplayName": "Newcomer",
                "ProfilePicURL": "",
            }
        },
        "ClientVersion": None,
    }


async def _together(changes: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the changes at once (in the services' loop): no sweep sees half of them."""
    await asyncio.gather(*changes)


class DemoNetwork:
    """The running simulated network; its methods are safe to call from any thread."""

    def __init__(self, topology: Topology, self_id: str, stand_ins: dict[ServiceKey, StandIn]):
        self.self_id = self_id
        self._topology = topology  # the bundled one, moved to loopback (ports: the stand-ins')
        self._stand_ins = stand_ins
        self._peers: dict[str, PeerState] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="demo-services", daemon=True
        )

    @classmethod
    def start(
        cls,
        bundled: Topology,
        *,
        self_id: str = SELF_NODE,
        bindable: Callable[[str], bool] = can_bind,
        first_block: int | None = None,
    ) -> DemoNetwork:
        """The bundled network on loopback, every stand-in listening: in a loopback block of
        its own where 127/8 answers (the first of BLOCK_TRIES, from `first_block` — by default
        one of its own from this process's id — whose every stand-in gets its real port),
        else on ADDRESS_CANDIDATES (macOS), on any free ports."""
        first = os.getpid() if first_block is None else first_block
        for index in range(first, first + BLOCK_TRIES):
            block = block_addresses(index)
            if not bindable(block[0]):
                break  # no 127/8 beyond 127.0.0.1 here
            try:
                return cls._started(bundled, self_id, block, exact=True)
            except OSError as error:
                log.debug(
                    "demo: loopback block %s.0/24 in use (%s)", block[0].rsplit(".", 1)[0], error
                )
        else:
            log.warning("demo: no free loopback block of %d tried; sharing 127.0.0.x", BLOCK_TRIES)
        candidates = [a for a in ADDRESS_CANDIDATES if bindable(a)]
        return cls._started(bundled, self_id, candidates, exact=False)

    @classmethod
    def _started(
        cls, bundled: Topology, self_id: str, bindable: Sequence[str], *, exact: bool
    ) -> DemoNetwork:
        """Every stand-in listening on `bindable`'s addresses; with `exact` each on its real
        port or OSError (the ones started are stopped again)."""
        addresses = choose_addresses(bundled, self_id, bindable)
        stand_ins: dict[ServiceKey, StandIn] = {}
        nodes = []
        for node in bundled.nodes:
            ip = addresses[node.id]
            nodes.append(replace(node, ip=ip))
            for service in node.services:
                local = node.id == self_id and service.access is Access.LOCALHOST_AND_TAILSCALE
                host = "127.0.0.1" if local else ip  # where the planner probes it
                stand_ins[(node.id, service.name)] = StandIn(service, host)
        network = cls(replace(bundled, nodes=tuple(nodes)), self_id, stand_ins)
        network._thread.start()
        try:
            for stand_in in stand_ins.values():
                # this machine's own on 127.0.0.1 is shared with everyone: any port serves
                network._call(stand_in.start(exact=exact and stand_in.host != "127.0.0.1"))
        except BaseException:
            network.close()
            raise
        return network

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_CALL_TIMEOUT_S)

    def close(self) -> None:
        """Stop every stand-in and the services' thread."""
        if self._thread.is_alive():
            for stand_in in self._stand_ins.values():
                self._call(stand_in.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_CALL_TIMEOUT_S)
        if not self._loop.is_running():
            self._loop.close()

    # ==== what the agent is given ==================================================

    def topology(self, name: str, interval_s: float) -> Topology:
        """The network as a topology: loopback addresses, the stand-ins' ports."""
        nodes = tuple(
            replace(
                node,
                services=tuple(
                    replace(s, port=self._stand_ins[(node.id, s.name)].port or s.port)
                    for s in node.services
                ),
            )
            for node in self._topology.nodes
        )
        defaults = replace(self._topology.defaults, interval_s=interval_s, timeout_s=1.0)
        return Topology(name=name, nodes=nodes, defaults=defaults)

    def write_topology(self, path: Path, name: str, interval_s: float) -> None:
        """Write the topology file the agent watches (atomically: it never reads half)."""
        paths.write_atomically(path, dump_topology(self.topology(name, interval_s)))

    def status_json(self) -> str:
        with self._lock:
            peers = dict(self._peers)
        return json.dumps(status_document(self._topology, self.self_id, peers, time.time()))

    async def read_tailnet(self) -> TailnetView:
        """Tailscale's view, as the agent's tailscale reader would have parsed it."""
        return parse_status_json(self.status_json())

    # ==== what the walk changes ====================================================

    def _set_peer(self, node_id: str, **changes: Any) -> None:
        with self._lock:
            self._peers[node_id] = replace(self._peers.get(node_id, PeerState()), **changes)

    def relay(self, node_id: str, region: str = DERP_REGION) -> None:
        """The direct path to `node_id` is lost: traffic goes through DERP `region`."""
        self._set_peer(node_id, relay=region)

    def direct(self, node_id: str) -> None:
        self._set_peer(node_id, relay="")

    def stop_service(self, node_id: str, service: str) -> None:
        """From now on connections to it are refused."""
        self._call(self._stand_ins[(node_id, service)].stop())

    def start_service(self, node_id: str, service: str) -> None:
        self._call(self._stand_ins[(node_id, service)].start())

    def _all_of(self, node_id: str) -> list[StandIn]:
        return [s for (owner, _), s in self._stand_ins.items() if owner == node_id]

    def go_offline(self, node_id: str) -> None:
        """The machine leaves the tailnet: Tailscale says offline, nothing of it answers."""
        self._set_peer(node_id, online=False)
        self._call(_together(s.stop() for s in self._all_of(node_id)))

    def come_online(self, node_id: str) -> None:
        self._call(_together(s.start() for s in self._all_of(node_id)))
        self._set_peer(node_id, online=True)

    def addresses(self) -> dict[ServiceKey, str]:
        """Where each stand-in listens (host:port), for the log."""
        return {
            key: _endpoint(s.host, s.port or s.preferred_port) for key, s in self._stand_ins.items()
        }
