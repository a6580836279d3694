"""A real pystray Icon in its own process, driven line by line over stdin (desktop tests).

    PYSTRAY_BACKEND=gtk python -m tests.helpers.pystray_child [--state green]

stdin, one command a line:  green | amber | red | grey   (icon = desktop.icons.render_icon(state))
                            notify <title>|<message>     (pystray's own icon.notify)
                            quit                         (also on end of input)
stdout: "visible <backend>" once the icon was shown, "icon <state>" after each switch,
"notified", "bye" on the way out. The backend comes from the environment, as in the agent:
pystray binds it at import time, so the import happens here, after the caller set it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agent.core.model import Health
from agent.desktop.icons import render_icon

__all__ = ["main"]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", default="green", choices=[h.value for h in Health])
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)

    import pystray  # after PYSTRAY_BACKEND is in the environment

    backend = os.environ.get("PYSTRAY_BACKEND", "<auto>")
    icon = pystray.Icon(
        "tailnet-agent-test",
        icon=render_icon(Health(args.state), args.size),
        title="tailnet-agent test icon",
        menu=pystray.Menu(pystray.MenuItem("Quit", lambda icon, _item: icon.stop())),
    )

    def setup(icon: Any) -> None:
        icon.visible = True
        _say(f"visible {backend}")
        for raw in sys.stdin:
            line = raw.strip()
            if line == "quit":
                break
            if line.startswith("notify "):
                title, _, message = line[len("notify ") :].partition("|")
                icon.notify(message, title)
                _say("notified")
            elif line in {h.value for h in Health}:
                icon.icon = render_icon(Health(line), args.size)
                _say(f"icon {line}")
            elif line:
                _say(f"unknown {line}")
        icon.stop()

    icon.run(setup)
    _say("bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
