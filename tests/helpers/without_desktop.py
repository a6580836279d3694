"""Run `tailnet-agent ARGS...` as a server install would: the desktop libraries absent.

    python tests/helpers/without_desktop.py MODULES_OUT check --json ...

Every import of pystray, PIL, plyer, gi, Xlib or desktop_notifier fails with
ModuleNotFoundError, as after `pip install tailnet-agent` without the `desktop` extra; at exit
the names of the agent's modules that were loaded are written to MODULES_OUT, one a line.
"""

from __future__ import annotations

import atexit
import importlib.abc
import sys
from pathlib import Path

DESKTOP_LIBRARIES = ("pystray", "PIL", "plyer", "gi", "Xlib", "desktop_notifier")


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".")[0] in DESKTOP_LIBRARIES:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _write_modules(out: Path) -> None:
    loaded = sorted(
        name
        for name, module in sys.modules.items()
        # None: an import blocked on purpose (agent/__init__.py: httpx._main), never loaded
        if module is not None and name.split(".")[0] in ("agent", "httpx")
    )
    out.write_text("\n".join(loaded) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.meta_path.insert(0, _Absent())
    atexit.register(_write_modules, Path(sys.argv[1]))
    from agent.cli import main

    sys.argv = ["tailnet-agent", *sys.argv[2:]]
    sys.exit(main())
