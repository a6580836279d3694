"""Loopback-only network guard for agent processes started by the tests.

pytest-socket guards the test process itself; an agent started as a
subprocess (the installed `tailnet-agent`) is guarded by this module, which
Python imports at start-up when its folder is on PYTHONPATH. Any connect or
sendto to an address outside 127.0.0.0/8 and ::1 is refused (PermissionError)
and written to $NETGUARD_LOG, so a test can assert that nothing tried.

$NETGUARD_UNREACHABLE_FILE (optional) names a file of loopback hosts, one a line, that
this process cannot reach while they are listed (connection refused, like a firewall
here): a broken link of one machine, for the share-view tests. It is read at each connect.
"""

import ipaddress
import os
import socket

_LOG = os.environ.get("NETGUARD_LOG")
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


def _outside(sock, address):
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    host = address[0] if isinstance(address, tuple) else str(address)
    try:
        if ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            return None
    except ValueError:
        if host == "localhost":
            return None
    return host


def _refuse(host):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {host}\n")
    raise PermissionError(f"netguard: connection to {host} refused (tests use loopback only)")


_UNREACHABLE = os.environ.get("NETGUARD_UNREACHABLE_FILE")


def _cut_off(sock, address):
    if not _UNREACHABLE or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        with open(_UNREACHABLE, encoding="utf-8") as f:
            hosts = {line.strip() for line in f}
    except OSError:
        return
    host = address[0] if isinstance(address, tuple) else str(address)
    if host in hosts:
        raise ConnectionRefusedError(111, f"netguard: {host} is cut off from this process")


def _connect(self, address):
    host = _outside(self, address)
    if host is not None:
        _refuse(host)
    _cut_off(self, address)
    return _real_connect(self, address)


def _connect_ex(self, address):
    host = _outside(self, address)
    if host is not None:
        _refuse(host)
    _cut_off(self, address)
    return _real_connect_ex(self, address)


def _sendto(self, data, *args):
    address = args[-1]
    host = _outside(self, address)
    if host is not None:
        _refuse(host)
    return _real_sendto(self, data, *args)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.socket.sendto = _sendto
