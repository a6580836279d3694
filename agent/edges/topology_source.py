"""Which topology file is in use, and reading it.

Order: `--topology PATH`, else $TAILNET_AGENT_TOPOLOGY, else `topology.toml` in the
user config folder when it exists, else the bundled default. A path given on the
command line or in the environment that does not exist is refused, never silently
replaced by another file. Parsing and validation are core.topology's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.core.model import Topology
from agent.core.topology import parse_topology
from agent.edges import paths
from agent.errors import TopologyError

__all__ = [
    "ORIGIN_BUNDLED",
    "ORIGIN_ENV",
    "ORIGIN_EXPLICIT",
    "ORIGIN_USER",
    "TOPOLOGY_ENV",
    "TopologyLocation",
    "load_topology",
    "locate_topology",
    "read_topology_file",
]

log = logging.getLogger(__name__)

TOPOLOGY_ENV = "TAILNET_AGENT_TOPOLOGY"

ORIGIN_EXPLICIT = "--topology"
ORIGIN_ENV = f"${TOPOLOGY_ENV}"
ORIGIN_USER = "user config"
ORIGIN_BUNDLED = "bundled default"


@dataclass(frozen=True, slots=True)
class TopologyLocation:
    path: Path
    origin: str  # "--topology" | "$TAILNET_AGENT_TOPOLOGY" | "user config" | "bundled default"

    @property
    def source(self) -> str:
        """How the file is named in a Topology and in errors."""
        if self.origin == ORIGIN_BUNDLED:
            return f"{ORIGIN_BUNDLED} ({self.path})"
        return str(self.path)


def _given(text: str, origin: str) -> TopologyLocation:
    path = Path(text).expanduser()
    if not path.exists():
        raise TopologyError(str(path), f"no such file (given by {origin})")
    return TopologyLocation(path, origin)


def locate_topology(explicit: str | None, env: Mapping[str, str]) -> TopologyLocation:
    """Find the topology file to use (see the module docstring for the order).

    An empty explicit value or an empty environment variable counts as not given.
    Raises TopologyError when an explicit or environment path does not exist.
    """
    if explicit:
        return _given(explicit, ORIGIN_EXPLICIT)
    from_env = env.get(TOPOLOGY_ENV, "")
    if from_env:
        return _given(from_env, ORIGIN_ENV)
    user = paths.user_topology_path()
    if user.exists():
        return TopologyLocation(user, ORIGIN_USER)
    return TopologyLocation(paths.bundled_topology_path(), ORIGIN_BUNDLED)


def read_topology_file(path: Path, source: str) -> Topology:
    """Read a topology file as UTF-8 (a BOM is allowed) and parse it; errors name `source`."""
    try:
        data = path.read_bytes()
    except OSError as error:
        why = error.strerror or error.__class__.__name__
        raise TopologyError(source, f"cannot read the file: {why}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise TopologyError(
            source, f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8", line=line
        ) from None
    return parse_topology(text, source)


def load_topology(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Topology:
    """Locate, read and parse the topology in use; `env` defaults to os.environ.

    The result's source is the file's path, or "bundled default (<path>)".
    Raises TopologyError naming the file when it is missing, unreadable or refused.
    """
    location = locate_topology(explicit, os.environ if env is None else env)
    topology = read_topology_file(location.path, location.source)
    log.debug(
        "topology %r from %s: %s (%d nodes, %d services)",
        topology.name,
        location.origin,
        location.path,
        len(topology.nodes),
        topology.service_count,
    )
    return topology
