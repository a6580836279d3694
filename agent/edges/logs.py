"""Logging set-up: a rotating file in the platform's log folder, and the console.

The file gets INFO and up (DEBUG with -v) so that a frozen Windows build, which
has no console, still leaves a trail. The console gets WARNING and up, INFO for
the headless monitor, DEBUG with -v.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

__all__ = ["LOG_FILE_NAME", "setup_logging"]

LOG_FILE_NAME = "tailnet-agent.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(
    log_dir: Path | None, *, verbose: bool = False, console_level: int = logging.WARNING
) -> Path | None:
    """Configure the root logger once; returns the log file's path (None if none)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if sys.stderr is not None:  # None in a windowed PyInstaller build
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.DEBUG if verbose else console_level)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
    log_file: Path | None = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_file = log_dir / LOG_FILE_NAME
            rotating = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=1_000_000, backupCount=5, encoding="utf-8"
            )
            rotating.setFormatter(logging.Formatter(_FORMAT))
            root.addHandler(rotating)
        except OSError as error:
            logging.getLogger(__name__).warning("no log file in %s: %s", log_dir, error)
            log_file = None
    for noisy in ("httpx", "httpcore", "websockets", "asyncio", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file
