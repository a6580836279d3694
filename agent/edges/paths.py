"""Where the agent's files live: config, state, logs, and the bundled resources.

The one module that knows platformdirs and PyInstaller. Every location is computed
when asked (so XDG_* variables set by tests or users apply), and a directory is
created only when a caller passes ensure=True — never at import.

Frozen builds: PyInstaller unpacks bundled data under sys._MEIPASS; the build spec
must place `agent/data/*` at `data/` there (datas=[("agent/data", "data")]), the
same layout as the package directory in a normal install.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import platformdirs

from agent import APP_NAME

__all__ = [
    "APP_AUTHOR",
    "AgentFiles",
    "agent_files",
    "app_icon_path",
    "bundled_topology_path",
    "config_dir",
    "history_path",
    "instance_lock_path",
    "is_frozen",
    "local_config_path",
    "log_dir",
    "resource_dir",
    "snooze_path",
    "state_dir",
    "topology_cache_dir",
    "user_topology_path",
    "user_topology_seen_path",
    "write_atomically",
]

APP_AUTHOR: Final = (
    False  # no vendor folder on Windows (None would repeat the app name); never change
)


def config_dir(*, ensure: bool = False) -> Path:
    """The user's config folder (the user topology file lives here)."""
    return Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR, ensure_exists=ensure))


def state_dir(*, ensure: bool = False) -> Path:
    """The user's state folder (history); the same folder as config on macOS and Windows."""
    return Path(platformdirs.user_state_dir(APP_NAME, APP_AUTHOR, ensure_exists=ensure))


def log_dir(*, ensure: bool = False) -> Path:
    """The user's log folder."""
    return Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR, ensure_exists=ensure))


def user_topology_path(*, ensure: bool = False) -> Path:
    """`topology.toml` in the config folder (ensure creates the folder, not the file)."""
    return config_dir(ensure=ensure) / "topology.toml"


def user_topology_seen_path() -> Path:
    """A marker in the state folder: a running agent has used the user topology file, so
    its absence is a deletion to report, not a first run (agent.edges.topology_source)."""
    return state_dir() / "user-topology-seen"


def local_config_path() -> Path:
    """`config.toml` in the config folder: this machine's settings (a topology URL)."""
    return config_dir() / "config.toml"


def topology_cache_dir(*, ensure: bool = False) -> Path:
    """The last good copies of topologies fetched over HTTP, in the state folder."""
    folder = state_dir(ensure=ensure) / "topology-cache"
    if ensure:
        folder.mkdir(exist_ok=True)
    return folder


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8, its folder created): a reader sees the old file or
    the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def history_path(*, ensure: bool = False) -> Path:
    """The history database in the state folder (ensure creates the folder, not the file)."""
    return state_dir(ensure=ensure) / "history.sqlite3"


def snooze_path(*, ensure: bool = False) -> Path:
    """The snoozed alerts the monitor keeps across restarts and `check` reads."""
    return state_dir(ensure=ensure) / "snoozes.json"


def instance_lock_path(*, ensure: bool = False) -> Path:
    """The lock file that keeps one agent running per user."""
    return state_dir(ensure=ensure) / "agent.lock"


@dataclass(frozen=True, slots=True)
class AgentFiles:
    """The files one running agent owns: its single-instance lock, its history, its log
    folder and its snoozed alerts. The user's agent keeps them in the platform's folders
    (`agent_files`); an agent kept apart from it (the demo) keeps them all in one folder of
    its own (`under`)."""

    lock: Path
    history: Path
    log_dir: Path
    snoozes: Path

    @classmethod
    def under(cls, folder: Path) -> AgentFiles:
        return cls(
            folder / "agent.lock",
            folder / "history.sqlite3",
            folder / "log",
            folder / "snoozes.json",
        )


def agent_files() -> AgentFiles:
    """The user's agent's files, in the platform's folders."""
    return AgentFiles(instance_lock_path(), history_path(), log_dir(), snooze_path())


def _meipass() -> str | None:
    meipass = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and isinstance(meipass, str):
        return meipass
    return None


def is_frozen() -> bool:
    """True when running from a PyInstaller build."""
    return _meipass() is not None


_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # agent/ (this file is agent/edges/paths.py)


def resource_dir() -> Path:
    """The folder holding bundled resources (`data/...`).

    sys._MEIPASS when running from a PyInstaller build, else the `agent` package folder.
    """
    meipass = _meipass()
    return Path(meipass) if meipass is not None else _PACKAGE_DIR


def bundled_topology_path() -> Path:
    """The default topology shipped with the agent (the Sparklio network)."""
    return resource_dir() / "data" / "topology.toml"


def app_icon_path() -> Path | None:
    """The app icon PNG for notifications (a .ico sits beside it for Windows), if shipped.

    Frozen builds carry it at data/icons/ (build.spec); a source checkout has the repository's
    icons/; a plain wheel has none (notifications then show the desktop's default icon).
    """
    for folder in (
        resource_dir() / "data" / "icons",
        _PACKAGE_DIR.parent / "icons",
    ):
        icon = folder / "tailnet-agent.png"
        if icon.is_file():
            return icon.resolve()
    return None
