"""The snoozes' state file: where the monitor keeps them across a restart and `check`
reads them (JSON in the state dir, agent.edges.paths.snooze_path).

Written atomically (a temporary file in the same folder, flushed, then renamed over the
old one), so a reader never sees half a file; a missing or unreadable file reads as no
snooze (and an unreadable one is logged).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from agent.core.snooze import Snooze, SnoozeKey, Snoozes, from_json, to_json

__all__ = ["load_snoozes", "save_snoozes"]

log = logging.getLogger(__name__)

MAX_BYTES = 1024 * 1024  # a bigger file is nobody's snoozes


def load_snoozes(path: Path) -> dict[SnoozeKey, Snooze]:
    try:
        if path.stat().st_size > MAX_BYTES:
            log.warning("snoozes: %s is too big to be ours; ignored", path)
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("snoozes: cannot read %s: %s", path, error)
        return {}
    return from_json(data)


def save_snoozes(path: Path, snoozes: Snoozes) -> None:
    """Replace the file with `snoozes` (OSError when the folder is not writable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_json(snoozes), ensure_ascii=False, indent=1)
    fd, tmp = tempfile.mkstemp(prefix=".snoozes-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
