"""Read the menu a process exports over com.canonical.dbusmenu (what libayatana-appindicator
publishes for pystray's appindicator backend), as the lines a tray host would draw.

    lines = menu_lines(bus_address, pid)   # ["× Sparklio demo 4/7: FastAPI stops: …", "---", …]

The process is found by its PID among the bus's connections and its menu by introspection, so
the test names neither the indicator's id nor its object path. Separators read as "---";
hidden items are left out. Labels are as exported (GTK mnemonic underscores kept).
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

__all__ = ["DBUSMENU", "DBusMenuError", "menu_lines"]

DBUSMENU = "com.canonical.dbusmenu"
_BUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")


class DBusMenuError(RuntimeError):
    """No connection of that process on the bus, or it exports no dbusmenu."""


async def _call(bus: MessageBus, destination: str, path: str, interface: str, member: str,
                signature: str = "", body: list[Any] | None = None) -> list[Any]:  # fmt: skip
    reply = await bus.call(
        Message(destination=destination, path=path, interface=interface, member=member,
                signature=signature, body=body or [])
    )  # fmt: skip
    assert reply is not None
    if reply.message_type is MessageType.ERROR:
        raise DBusMenuError(f"{member} on {destination}{path}: {reply.error_name} {reply.body}")
    return list(reply.body)


async def _connections_of(bus: MessageBus, pid: int) -> list[str]:
    (names,) = await _call(bus, *_BUS, "ListNames")
    mine = []
    for name in (n for n in names if n.startswith(":")):
        try:
            (owner,) = await _call(bus, *_BUS, "GetConnectionUnixProcessID", "s", [name])
        except DBusMenuError:  # gone meanwhile
            continue
        if owner == pid:
            mine.append(name)
    return mine


async def _menu_path(bus: MessageBus, name: str, path: str = "/") -> str | None:
    (xml,) = await _call(bus, name, path, "org.freedesktop.DBus.Introspectable", "Introspect")
    root = ET.fromstring(xml)
    if any(i.get("name") == DBUSMENU for i in root.findall("interface")):
        return path
    for child in root.findall("node"):
        found = await _menu_path(bus, name, f"{path.rstrip('/')}/{child.get('name')}")
        if found is not None:
            return found
    return None


def _lines(children: list[Variant]) -> list[str]:
    lines = []
    for child in children:
        _id, props, _grandchildren = child.value
        values = {k: v.value for k, v in props.items()}
        if values.get("visible", True) is False:
            continue
        lines.append("---" if values.get("type") == "separator" else str(values.get("label", "")))
    return lines


async def _read(bus_address: str, pid: int) -> list[str]:
    bus = await MessageBus(bus_address=bus_address).connect()
    try:
        for name in await _connections_of(bus, pid):
            path = await _menu_path(bus, name)
            if path is None:
                continue
            # GetLayout(parentId 0 = the root, depth 1 = its items, all properties)
            _revision, layout = await _call(
                bus, name, path, DBUSMENU, "GetLayout", "iias", [0, 1, []]
            )
            return _lines(layout[2])
        raise DBusMenuError(f"process {pid} exports no {DBUSMENU} menu on {bus_address}")
    finally:
        bus.disconnect()


def menu_lines(bus_address: str, pid: int) -> list[str]:
    """The top level of the menu process `pid` exports on the bus, one string per line."""
    return asyncio.run(_read(bus_address, pid))
