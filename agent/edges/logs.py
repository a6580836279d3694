"""Logging set-up: a rotating file in the platform's log folder, and the console.

The file gets INFO and up (DEBUG with -v) so that a frozen Windows build, which
has no console, still leaves a trail. The console gets WARNING and up, INFO for
the headless monitor, DEBUG with -v. A log file that cannot be written (a full disk) is said
once on the console, not with a traceback per line, and said again in the file itself, with
the count of lines lost, once it can be written again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.core.outage import Outage

if TYPE_CHECKING:
    import logging.handlers

__all__ = ["LOG_FILE_NAME", "setup_logging"]

LOG_FILE_NAME = "tailnet-agent.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

log = logging.getLogger(__name__)


@functools.cache
def _log_file_class() -> type[logging.handlers.RotatingFileHandler]:
    """The log file's handler class, made on first use: logging.handlers (with pickle,
    queue and struct) is imported only by the commands that write a log file, not by check.
    """
    import logging.handlers

    class _LogFile(logging.handlers.RotatingFileHandler):
        """The rotating log file, which goes on (and says so once) when a write fails."""

        def __init__(self, path: Path) -> None:
            super().__init__(path, maxBytes=1_000_000, backupCount=5, encoding="utf-8")
            self._outage = Outage(f"the log file {path}")
            self._failed_now = False

        def emit(self, record: logging.LogRecord) -> None:
            self._failed_now = False
            super().emit(record)
            if not self._failed_now:
                line = self._outage.recovered()
                if line is not None:
                    log.warning("%s", line)

        def handleError(self, record: logging.LogRecord) -> None:
            self._failed_now = True
            error = sys.exc_info()[1]
            if self.stream is not None:  # reopened at the next line; what was buffered is lost
                with contextlib.suppress(Exception):
                    self.stream.close()
                self.stream = None
            line = self._outage.failed(str(error) if error else "unknown error")
            if line is not None:
                log.warning("%s", line)  # the console says it; this file fails once more

    return _LogFile


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
            rotating = _log_file_class()(log_file)
            rotating.setFormatter(logging.Formatter(_FORMAT))
            root.addHandler(rotating)
        except OSError as error:
            logging.getLogger(__name__).warning("no log file in %s: %s", log_dir, error)
            log_file = None
    for noisy in ("httpx", "httpcore", "websockets", "asyncio", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file
