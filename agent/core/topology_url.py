"""A topology served over HTTP: which URLs are accepted, the local config.toml, cache names.

Pure. `topology_url(text, given_by)` tells a URL from a path (None for a path) and refuses a
URL that is not http or https; `parse_local_config` reads the small `config.toml` of the
user config folder (`source = "https://…"`, `refresh = "5m"`); `cache_stem` names the cached
copy of one URL; `redirect_refusal` says which redirect is not followed (https to http);
`decode_topology` turns a file's or a download's bytes into text. Fetching and caching are
agent.edges.topology_fetch's.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
import urllib.parse
from dataclasses import dataclass
from typing import Final

from agent.core.decoding import DocumentLimitError, load_toml
from agent.core.topology import parse_duration, quoted
from agent.errors import TopologyError

__all__ = [
    "DEFAULT_REFRESH_S",
    "MAX_REDIRECTS",
    "MAX_TOPOLOGY_BYTES",
    "URL_SCHEMES",
    "LocalConfig",
    "cache_stem",
    "decode_topology",
    "parse_local_config",
    "redirect_refusal",
    "shown_url",
    "topology_url",
]

URL_SCHEMES: Final = ("http", "https")
MAX_TOPOLOGY_BYTES: Final = 1024 * 1024  # a topology is a few kB; more is not a topology
MAX_REDIRECTS: Final = 5
DEFAULT_REFRESH_S: Final = 300.0  # how often a running agent asks the source again

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")  # "user:password@"
_CONFIG_KEYS = ("source", "refresh")
_BREAKING = ("Cc", "Zl", "Zp")  # control characters, line and paragraph separators


def topology_url(text: str, given_by: str) -> str | None:
    """`text` as a topology URL, or None when it is a file path.

    TopologyError (naming `given_by`, the URL quoted on one line) for a URL of another
    scheme (ftp://, file://), without a host, or holding a line break or another control
    character: only http and https are fetched.
    """
    match = _SCHEME_RE.match(text.strip())
    if match is None:
        return None
    scheme = match.group(1).lower()
    url = text.strip()
    shown = quoted(_USERINFO_RE.sub(r"\1", url, count=1))  # a refusal never repeats a password
    if scheme not in URL_SCHEMES:
        raise TopologyError(
            shown,
            f"only http:// and https:// URLs are fetched, not {scheme}:// (given by {given_by})",
        )
    if any(unicodedata.category(char) in _BREAKING for char in url):
        # urlsplit drops tabs and line breaks unseen, and httpx refuses them at fetch time.
        raise TopologyError(
            shown, f"a URL holds no line breaks or control characters (given by {given_by})"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise TopologyError(shown, f"not a usable URL: {error} (given by {given_by})") from None
    if not parts.hostname:
        raise TopologyError(shown, f"the URL names no host (given by {given_by})")
    if parts.username or parts.password:
        # A password in the URL would end up in logs, the menu and notifications.
        raise TopologyError(
            shown, f"a URL with a user name or password is not accepted (given by {given_by})"
        )
    return url


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """The user config folder's `config.toml`: this machine's own settings."""

    source: str | None = None  # a topology URL (the `source` key)
    refresh_s: float = DEFAULT_REFRESH_S


def parse_local_config(text: str, source: str) -> LocalConfig:
    """Read config.toml; TopologyError naming `source` for a bad file (unknown keys too)."""
    try:
        data = load_toml(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as error:
        raise TopologyError(source, f"TOML syntax error: {error}") from None
    except DocumentLimitError as error:
        raise TopologyError(source, f"TOML not read: {error}") from None
    problems = [
        f"unknown key '{quoted(key)[1:-1]}' (allowed: {', '.join(_CONFIG_KEYS)})"
        for key in data
        if key not in _CONFIG_KEYS
    ]
    url: str | None = None
    value = data.get("source")
    if value is not None:
        if not isinstance(value, str) or not value.strip():
            problems.append('source: write the topology\'s URL, e.g. source = "https://…"')
        else:
            url = topology_url(value, f"source in {source}")
            if url is None:
                problems.append("source: an http:// or https:// URL (a file goes in --topology)")
    refresh_s = DEFAULT_REFRESH_S
    if "refresh" in data:
        try:
            refresh_s = parse_duration(data["refresh"])
        except (TypeError, ValueError) as error:
            problems.append(f"refresh: {error}")
    if problems:
        raise TopologyError(source, "; ".join(problems))
    return LocalConfig(source=url, refresh_s=refresh_s)


def shown_url(url: str) -> str:
    """`url` as logs, the menu and notifications show it: without its query or fragment,
    where a signed link (a MinIO presigned URL, a git host's token) keeps its secret."""
    parts = urllib.parse.urlsplit(url)
    hidden = "?…" if parts.query else ""
    return parts._replace(query="", fragment="").geturl() + hidden


def redirect_refusal(origin: str, target: str) -> str | None:
    """Why a redirect from `origin` to `target` is not followed, or None to follow it.

    An https source never leads to plain http: a downgrade would let anyone on the path
    between this machine and the redirect's target serve the topology, which decides what
    the agent connects to.
    """
    before = urllib.parse.urlsplit(origin).scheme.lower()
    after = urllib.parse.urlsplit(target).scheme.lower()
    if before == "https" and after == "http":
        return f"redirected from https:// to http:// ({shown_url(target)}): a downgrade, refused"
    return None


def cache_stem(url: str) -> str:
    """The cached copy's file name (no suffix) for `url`: its host, readable, and a hash."""
    import hashlib  # (OpenSSL's) only a URL topology has a cached copy to name

    host = urllib.parse.urlsplit(url).hostname or "topology"
    readable = re.sub(r"[^A-Za-z0-9.-]+", "-", host)[:40]
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return f"{readable}-{digest}"


def decode_topology(data: bytes, source: str) -> str:
    """A topology's bytes as text: UTF-8, a BOM allowed; TopologyError naming `source`."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise TopologyError(
            source, f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8", line=line
        ) from None
