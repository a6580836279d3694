"""A real org.freedesktop.Notifications server that records every call as a JSON line.

It stands in for the desktop's notification daemon (GNOME Shell, dunst, ...) on a private
session bus, so tests see exactly what a notifier sent over D-Bus:

    python -m tests.helpers.notification_server --log calls.jsonl [--address ADDR]
        [--answer-after SECONDS]   # a busy daemon: each Notify is recorded, then answered late

prints `ready <unique-name>` on stdout once it owns the name, then serves until SIGTERM/SIGINT.
Each line of the log is one call: {"call": "Notify", "app_name", "replaces_id", "app_icon",
"summary", "body", "actions", "hints" (variants unwrapped), "expire_timeout", "id", "sender"},
or {"call": "CloseNotification", "id", "sender"}.
"""

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import BusType, Message, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import RequestNameReply
from dbus_fast.service import ServiceInterface, method
from dbus_fast.service import signal as dbus_signal

__all__ = ["BUS_NAME", "OBJECT_PATH", "NotificationCapture", "main", "serve"]

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"

Str = Annotated[str, DBusSignature("s")]
UInt32 = Annotated[int, DBusSignature("u")]
Int32 = Annotated[int, DBusSignature("i")]
StrList = Annotated[list[str], DBusSignature("as")]
Hints = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
ServerInfo = Annotated[list[str], DBusSignature("ssss")]
Closed = Annotated[list[int], DBusSignature("uu")]
ActionSig = Annotated[list[Any], DBusSignature("us")]


def _plain(value: Any) -> Any:
    """A JSON-able copy of a D-Bus value (variants unwrapped, bytes as lists)."""
    if isinstance(value, Variant):
        return _plain(value.value)
    if isinstance(value, bytes | bytearray):
        return list(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class NotificationCapture(ServiceInterface):
    """The Desktop Notifications Specification 1.2 interface, recording instead of showing."""

    def __init__(self, log_path: Path, answer_after_s: float = 0.0) -> None:
        super().__init__(BUS_NAME)
        self._log_path = log_path
        self._answer_after_s = answer_after_s
        self._next_id = 1
        self.current_sender = ""

    def _record(self, entry: dict[str, Any]) -> None:
        entry["sender"] = self.current_sender
        with self._log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            log.flush()

    @method()
    def Notify(
        self,
        app_name: Str,
        replaces_id: UInt32,
        app_icon: Str,
        summary: Str,
        body: Str,
        actions: StrList,
        hints: Hints,
        expire_timeout: Int32,
    ) -> UInt32:
        notification_id = replaces_id or self._next_id
        if not replaces_id:
            self._next_id += 1
        self._record(
            {
                "call": "Notify",
                "app_name": app_name,
                "replaces_id": replaces_id,
                "app_icon": app_icon,
                "summary": summary,
                "body": body,
                "actions": list(actions),
                "hints": _plain(hints),
                "expire_timeout": expire_timeout,
                "id": notification_id,
            }
        )
        if self._answer_after_s:
            time.sleep(self._answer_after_s)  # holds this server's loop, as a busy shell does
        return notification_id

    @method()
    def GetCapabilities(self) -> StrList:
        return ["body", "actions", "icon-static", "persistence"]

    @method()
    def GetServerInformation(self) -> ServerInfo:
        return ["tailnet-agent-capture", "tailnet-agent tests", "1.0", "1.2"]

    @method()
    def CloseNotification(self, notification_id: UInt32) -> None:
        self._record({"call": "CloseNotification", "id": notification_id})
        self.NotificationClosed(notification_id, 3)

    @dbus_signal()
    def NotificationClosed(self, notification_id: int, reason: int) -> Closed:
        return [notification_id, reason]

    @dbus_signal()
    def ActionInvoked(self, notification_id: int, action_key: str) -> ActionSig:
        return [notification_id, action_key]  # declared for introspection; never emitted


async def serve(log_path: Path, address: str | None = None, answer_after_s: float = 0.0) -> None:
    """Own the notifications name on the session bus (or `address`) until cancelled."""
    bus = await MessageBus(bus_address=address, bus_type=BusType.SESSION).connect()
    capture = NotificationCapture(log_path, answer_after_s)

    def remember_sender(message: Message) -> None:
        if message.member in ("Notify", "CloseNotification"):
            capture.current_sender = message.sender or ""

    bus.add_message_handler(remember_sender)  # runs before the interface's own handler
    bus.export(OBJECT_PATH, capture)
    reply = await bus.request_name(BUS_NAME)
    if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
        raise SystemExit(f"could not own {BUS_NAME}: {reply!r}")
    print(f"ready {bus.unique_name}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    disconnected = asyncio.ensure_future(bus.wait_for_disconnect())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({disconnected, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (disconnected, stopped):
        task.cancel()
    bus.disconnect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="JSONL file to append calls to")
    parser.add_argument("--address", help="bus address (default: the session bus)")
    parser.add_argument(
        "--answer-after", type=float, default=0.0, help="seconds each Notify waits to answer"
    )
    args = parser.parse_args(argv)
    args.log.touch()
    asyncio.run(serve(args.log, args.address, args.answer_after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
