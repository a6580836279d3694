"""Read a running process's tray menu back over D-Bus (com.canonical.dbusmenu).

libayatana-appindicator (pystray's appindicator backend) exports its menu on the session
bus as a dbusmenu server, whether a StatusNotifier host shows it or the icon fell back to
an XEmbed tray (trayer): the labels a desktop shell would draw, as the app handed them over.

    menu = read_menu(desk.bus_address, agent.pid)   # the menu tree of that process
    menu.lines()                                      # the visible top level, separators as ""

Ids change each time pystray rebuilds the menu: read it again rather than keep ids.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

__all__ = ["DBUSMENU", "MenuItem", "find_menus", "read_menu"]

DBUSMENU = "com.canonical.dbusmenu"
_DBUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")


@dataclass(frozen=True, slots=True)
class MenuItem:
    """One dbusmenu item: its label ("" for a separator), state and children."""

    id: int
    label: str
    enabled: bool
    visible: bool
    separator: bool
    children: tuple[MenuItem, ...]

    def find(self, prefix: str) -> MenuItem:
        """The one child whose label starts with `prefix` (AssertionError otherwise)."""
        found = [c for c in self.children if c.label.startswith(prefix)]
        assert len(found) == 1, f"{prefix!r}: {len(found)} of {[c.label for c in self.children]}"
        return found[0]

    def lines(self) -> list[str]:
        """The visible children's labels, top to bottom (separators as "")."""
        return [c.label for c in self.children if c.visible]


async def _call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
) -> list[Any]:
    reply = await bus.call(
        Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
    )
    assert reply is not None
    if reply.message_type is MessageType.ERROR:
        raise RuntimeError(f"{member} on {destination}{path}: {reply.error_name} {reply.body}")
    return list(reply.body)


async def _names_of(bus: MessageBus, pid: int) -> list[str]:
    (names,) = await _call(bus, *_DBUS, "ListNames")
    mine = []
    for name in names:
        if not name.startswith(":"):
            continue
        try:
            (owner,) = await _call(bus, *_DBUS, "GetConnectionUnixProcessID", "s", [name])
        except RuntimeError:  # gone meanwhile
            continue
        if owner == pid:
            mine.append(name)
    return mine


async def _menu_paths(bus: MessageBus, name: str, path: str = "/") -> list[str]:
    (xml,) = await _call(bus, name, path, "org.freedesktop.DBus.Introspectable", "Introspect")
    root = ET.fromstring(xml)
    found = [path] if any(i.get("name") == DBUSMENU for i in root.findall("interface")) else []
    for node in root.findall("node"):
        child = f"{path.rstrip('/')}/{node.get('name')}"
        found += await _menu_paths(bus, name, child)
    return found


def _item(layout: list[Any]) -> MenuItem:
    item_id, props, children = layout
    values = {k: v.value if isinstance(v, Variant) else v for k, v in props.items()}
    return MenuItem(
        id=int(item_id),
        label=str(values.get("label", "")),
        enabled=bool(values.get("enabled", True)),
        visible=bool(values.get("visible", True)),
        separator=values.get("type") == "separator",
        children=tuple(_item(c.value if isinstance(c, Variant) else c) for c in children),
    )


async def _read(bus_address: str, pid: int) -> list[tuple[str, str, MenuItem]]:
    bus = await MessageBus(bus_address=bus_address).connect()
    try:
        menus = []
        for name in await _names_of(bus, pid):
            for path in await _menu_paths(bus, name):
                _revision, layout = await _call(
                    bus, name, path, DBUSMENU, "GetLayout", "iias", [0, -1, []]
                )
                menus.append((name, path, _item(layout)))
        return menus
    finally:
        bus.disconnect()


def find_menus(bus_address: str, pid: int) -> list[tuple[str, str, MenuItem]]:
    """Every dbusmenu that process `pid` exports on the bus: (unique name, path, root)."""
    return asyncio.run(_read(bus_address, pid))


def read_menu(bus_address: str, pid: int) -> MenuItem:
    """The one dbusmenu of process `pid` (its root item; the top level are its children)."""
    menus = find_menus(bus_address, pid)
    assert len(menus) == 1, f"process {pid} exports {len(menus)} dbusmenus: {menus}"
    return menus[0][2]
