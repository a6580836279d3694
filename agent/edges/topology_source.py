"""Which topology file is in use, and reading it.

Order: `--topology PATH|URL`, else $TAILNET_AGENT_TOPOLOGY, else the `source = "https://…"`
of `config.toml` in the user config folder, else `topology.toml` there when it exists, else
the bundled default. A path given on the command line or in the environment that does not
exist is refused, never silently replaced by another file; so is the user file, once a
running agent has used it (`TopologyLocator`, which leaves a marker in the state folder so
that this holds across restarts): only a first run watches the bundled example.
A URL's location is its cached copy in the state folder (agent.edges.topology_fetch fetches
it); reading it is reading that copy. Parsing and validation are core.topology's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.core.model import Topology
from agent.core.topology import parse_topology
from agent.core.topology_url import (
    DEFAULT_REFRESH_S,
    LocalConfig,
    cache_stem,
    decode_topology,
    parse_local_config,
    shown_url,
    topology_url,
)
from agent.edges import paths
from agent.errors import TopologyError

__all__ = [
    "ORIGIN_BUNDLED",
    "ORIGIN_CONFIG",
    "ORIGIN_ENV",
    "ORIGIN_EXPLICIT",
    "ORIGIN_USER",
    "TOPOLOGY_ENV",
    "TopologyLocation",
    "TopologyLocator",
    "is_bundled_topology",
    "load_location",
    "load_topology",
    "local_config",
    "locate_topology",
    "read_topology_file",
    "user_topology_deleted",
]

log = logging.getLogger(__name__)

TOPOLOGY_ENV = "TAILNET_AGENT_TOPOLOGY"

ORIGIN_EXPLICIT = "--topology"
ORIGIN_ENV = f"${TOPOLOGY_ENV}"
ORIGIN_USER = "user config"
ORIGIN_CONFIG = "config.toml"
ORIGIN_BUNDLED = "bundled default"


@dataclass(frozen=True, slots=True)
class TopologyLocation:
    path: Path  # for a URL: its cached copy (which may not exist yet)
    origin: str  # "--topology" | "$TAILNET_AGENT_TOPOLOGY" | "config.toml" | "user config" | …
    url: str | None = None  # fetched from here (http or https)
    refresh_s: float = DEFAULT_REFRESH_S  # for a URL: how often a running agent asks again

    @property
    def source(self) -> str:
        """How the file is named in a Topology and in errors."""
        if self.url is not None:
            return shown_url(self.url)
        if self.origin == ORIGIN_BUNDLED:
            return f"{ORIGIN_BUNDLED} ({self.path})"
        return str(self.path)


def local_config() -> LocalConfig:
    """The user config folder's config.toml (defaults when there is none)."""
    path = paths.local_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LocalConfig()
    except (OSError, UnicodeDecodeError) as error:
        raise TopologyError(str(path), f"cannot read the file: {error}") from None
    return parse_local_config(text, str(path))


def _fetched(url: str, origin: str, config: LocalConfig | None = None) -> TopologyLocation:
    refresh_s = (config or local_config()).refresh_s
    cached = paths.topology_cache_dir() / f"{cache_stem(url)}.toml"
    return TopologyLocation(cached, origin, url=url, refresh_s=refresh_s)


def _given(text: str, origin: str) -> TopologyLocation:
    url = topology_url(text, origin)
    if url is not None:
        return _fetched(url, origin)
    path = Path(text).expanduser()
    if not path.exists():
        raise TopologyError(str(path), f"no such file (given by {origin})")
    return TopologyLocation(path, origin)


def locate_topology(explicit: str | None, env: Mapping[str, str]) -> TopologyLocation:
    """Find the topology file to use (see the module docstring for the order).

    An empty explicit value or an empty environment variable counts as not given.
    Raises TopologyError when an explicit or environment path does not exist, a URL is not
    http or https, or config.toml is refused.
    """
    if explicit:
        return _given(explicit, ORIGIN_EXPLICIT)
    from_env = env.get(TOPOLOGY_ENV, "")
    if from_env:
        return _given(from_env, ORIGIN_ENV)
    config = local_config()
    if config.source is not None:
        return _fetched(config.source, ORIGIN_CONFIG, config)
    user = paths.user_topology_path()
    if user.exists():
        return TopologyLocation(user, ORIGIN_USER)
    if paths.user_topology_seen_path().exists():
        raise user_topology_deleted()
    return TopologyLocation(paths.bundled_topology_path(), ORIGIN_BUNDLED)


def user_topology_deleted() -> TopologyError:
    """The refusal of a user topology file that an agent has used and that is gone."""
    return TopologyError(
        str(paths.user_topology_path()),
        "no such file (deleted from the user config folder; put it back, or make a new "
        "one: tailnet-agent init)",
    )


class TopologyLocator:
    """`locate_topology` for a running agent, asked again on every poll.

    Once it has found the user config folder's topology.toml, that file stays the one in
    use: deleted, it is refused like a deleted --topology file (the monitor keeps the last
    good topology and says why) instead of giving way to the bundled example, whose peers
    are strangers' addresses for most users. The first time it finds the file it leaves
    the marker `paths.user_topology_seen_path()`, which `locate_topology` reads, so a
    restart after the deletion reports it too; a marker that cannot be written (the state
    folder read-only) is logged, and the refusal then lasts for this process.
    """

    def __init__(self, explicit: str | None, env: Mapping[str, str]) -> None:
        self._explicit = explicit
        self._env = env
        self._had_user_file = False

    def __call__(self) -> TopologyLocation:
        location = locate_topology(self._explicit, self._env)
        if location.origin == ORIGIN_USER:
            if not self._had_user_file:
                _remember_user_file()
            self._had_user_file = True
        elif location.origin == ORIGIN_BUNDLED and self._had_user_file:
            raise user_topology_deleted()
        return location


def _remember_user_file() -> None:
    marker = paths.user_topology_seen_path()
    if marker.exists():
        return
    try:
        paths.write_atomically(marker, f"{paths.user_topology_path()}\n")
    except OSError as error:
        log.warning(
            "cannot record that %s is in use (%s): a restart after its deletion would "
            "start on the bundled example",
            paths.user_topology_path(),
            error.strerror or error,
        )


def is_bundled_topology(topology: Topology) -> bool:
    """Whether `topology` is the bundled example (read from the bundled file itself)."""
    return topology.source == TopologyLocation(paths.bundled_topology_path(), ORIGIN_BUNDLED).source


def read_topology_file(path: Path, source: str) -> Topology:
    """Read a topology file as UTF-8 (a BOM is allowed) and parse it; errors name `source`."""
    try:
        data = path.read_bytes()
    except OSError as error:
        why = error.strerror or error.__class__.__name__
        raise TopologyError(source, f"cannot read the file: {why}") from None
    return parse_topology(decode_topology(data, source), source)


def load_topology(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Topology:
    """Locate, read and parse the topology in use; `env` defaults to os.environ.

    The result's source is the file's path, or "bundled default (<path>)".
    Raises TopologyError naming the file when it is missing, unreadable or refused.
    """
    return load_location(locate_topology(explicit, os.environ if env is None else env))


def load_location(location: TopologyLocation) -> Topology:
    """Read and parse the topology at `location` (for a URL: its cached copy)."""
    if location.url is not None and not location.path.exists():
        raise TopologyError(location.source, "no copy of it has been downloaded yet")
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
