"""A topology served over HTTP(S): fetched conditionally, validated, cached as the last good copy.

`RemoteTopology(url, cache_path)` owns one URL's cached copy (`cache_path`, the file
agent.edges.topology_source reads for that URL) and its metadata beside it (`.json`: ETag,
Last-Modified, when it was fetched and last checked). `refresh()` makes one conditional
request (If-None-Match / If-Modified-Since): 304 keeps the copy, 200 replaces it only when
core.topology accepts the document; an unreachable source or a refused document keeps the
copy and becomes `warning()` — the error and since when — which the monitor shows as the
topology's error. `start()` refreshes in a thread of its own every `refresh_s` (sooner
after a failure) and at once on `refresh_soon()` ("Check now"); a one-shot `check` calls
`refresh()` once.

Only http and https (core.topology_url), at most MAX_REDIRECTS redirects and none from
https to http, at most MAX_TOPOLOGY_BYTES, no proxy or netrc from the environment. A
document's text only ever becomes a Topology: nothing else (the tailscale CLI least of all)
is read from it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import httpx

from agent import __version__
from agent.core.model import Topology
from agent.core.topology import parse_topology
from agent.core.topology_url import (
    DEFAULT_REFRESH_S,
    MAX_REDIRECTS,
    MAX_TOPOLOGY_BYTES,
    decode_topology,
    redirect_refusal,
    shown_url,
)
from agent.edges import paths
from agent.errors import TopologyError

__all__ = [
    "FETCH_TIMEOUT_S",
    "RETRY_S",
    "CachedCopy",
    "Refreshed",
    "RemoteTopology",
    "fetch_document",
]

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 10.0
RETRY_S = 60.0  # after a failure, ask again this soon (or at refresh_s, if sooner)
FIRST_FETCH_WAIT_S = FETCH_TIMEOUT_S + 5.0  # how long a start without a copy waits for one


class Refreshed(Enum):
    """What one refresh did."""

    UPDATED = "updated"  # a new document, accepted and cached
    NOT_MODIFIED = "not_modified"  # 304: the cached copy is current
    FAILED = "failed"  # unreachable, or refused: the cached copy (if any) stays in use


@dataclass(frozen=True, slots=True)
class CachedCopy:
    """The metadata of the last good copy (what `topology show` prints)."""

    url: str
    fetched_at: float  # when its document was downloaded (wall s)
    checked_at: float  # when the source last answered 200 or 304 for it
    etag: str | None
    last_modified: str | None


class _Failure(Exception):
    """Why a fetch gave no usable document (text for people, no URL query in it)."""


def _local(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def _refusing_downgrades() -> Callable[[httpx.Request], None]:
    """A request hook for one client's one GET: each redirect's request is held against the
    request before it (core.topology_url.redirect_refusal), and a refused one is not sent."""
    previous: list[httpx.URL] = []

    def check(request: httpx.Request) -> None:
        if previous:
            refusal = redirect_refusal(str(previous[-1]), str(request.url))
            if refusal is not None:
                raise _Failure(refusal)
        previous.append(request.url)

    return check


def _client(timeout_s: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    """A client for one GET (and its redirects)."""
    return httpx.Client(
        follow_redirects=True,
        event_hooks={"request": [_refusing_downgrades()]},
        max_redirects=MAX_REDIRECTS,
        trust_env=False,  # no proxy or netrc credentials picked up from the environment
        timeout=httpx.Timeout(timeout_s),
        headers={
            "User-Agent": f"tailnet-agent/{__version__}",
            "Accept": "application/toml, text/plain;q=0.9, */*;q=0.1",
        },
        transport=transport,
    )


def _name_error(error: BaseException) -> socket.gaierror | None:
    """The resolver's refusal behind an HTTP error (httpx wraps it twice), if that was it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _why(error: httpx.HTTPError, timeout_s: float) -> str:
    unresolved = _name_error(error)
    if unresolved is not None:
        try:
            host = error.request.url.host
        except RuntimeError:  # no request attached
            host = ""
        name = f"the name {host}" if host else "its host name"
        return f"{name} does not resolve ({unresolved.strerror or unresolved})"
    if isinstance(error, httpx.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(error, httpx.UnsupportedProtocol):
        return "redirected to a URL that is not http:// or https://"
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout_s:g} s"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error})" if str(error) else "cannot connect"
    return f"{error.__class__.__name__}: {error}" if str(error) else error.__class__.__name__


def _get(
    client: httpx.Client, url: str, headers: dict[str, str], timeout_s: float
) -> tuple[int, bytes, httpx.Headers]:
    """One GET: (status, body, headers); the body is read only for a 200, within the limit."""
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                return response.status_code, b"", response.headers
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_TOPOLOGY_BYTES:
                raise _Failure(f"the document is {int(length)} bytes, over the 1 MiB limit")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_TOPOLOGY_BYTES:
                    raise _Failure("the document is over the 1 MiB limit")
            return 200, bytes(body), response.headers
    except httpx.HTTPError as error:
        raise _Failure(_why(error, timeout_s)) from None
    except httpx.InvalidURL as error:  # a host IDNA refuses (a soft hyphen): not an HTTPError
        raise _Failure(f"not a usable URL: {error}") from None


def fetch_document(
    url: str,
    *,
    timeout_s: float = FETCH_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> Topology:
    """The topology at `url`, validated (for `topology validate URL`; nothing is cached).

    TopologyError naming the URL when it cannot be fetched or is refused.
    """
    source = shown_url(url)
    with _client(timeout_s, transport) as client:
        try:
            status, body, _ = _get(client, url, {}, timeout_s)
        except _Failure as failure:
            raise TopologyError(source, f"cannot fetch it: {failure}") from None
    if status != 200:
        raise TopologyError(source, f"cannot fetch it: HTTP {status}")
    return parse_topology(decode_topology(body, source), source)


class RemoteTopology:
    """One topology URL, its cached last good copy, and the state of its source.

    Every method is safe to call from any thread; `refresh()` runs one at a time.
    """

    def __init__(
        self,
        url: str,
        cache_path: Path,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        timeout_s: float = FETCH_TIMEOUT_S,
        wall: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.source = shown_url(url)
        self.cache_path = cache_path
        self.meta_path = cache_path.with_suffix(".json")
        self._refresh_s = refresh_s
        self._timeout_s = timeout_s
        self._wall = wall
        self._transport = transport
        self._lock = threading.Lock()  # one refresh at a time
        self._state_lock = threading.Lock()
        self._problem: str | None = None
        self._problem_since: float | None = None
        self._attempted = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ==== what is known ========================================================

    def cached(self) -> CachedCopy | None:
        """The last good copy's metadata, or None when there is no copy."""
        if not self.cache_path.is_file():
            return None
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("url") != self.url:
                raise ValueError("written for another URL")
            fetched = float(meta["fetched_at"])
            checked = float(meta.get("checked_at", fetched))
            etag = meta.get("etag")
            modified = meta.get("last_modified")
        except (OSError, ValueError, KeyError, TypeError):
            # The copy without its metadata still serves; it is just not asked conditionally.
            fetched = checked = self.cache_path.stat().st_mtime
            etag = modified = None
        return CachedCopy(
            self.url,
            fetched,
            checked,
            etag if isinstance(etag, str) else None,
            modified if isinstance(modified, str) else None,
        )

    def warning(self) -> str | None:
        """The source's problem while the last good copy (if any) stays in use, as the menu
        shows it; the same text while the same problem lasts."""
        with self._state_lock:
            problem, since = self._problem, self._problem_since
        if problem is None or since is None:
            return None
        copy = self.cached()
        kept = (
            f"; in use: the copy fetched {_local(copy.fetched_at)}"
            if copy is not None
            else "; no copy was ever fetched"
        )
        return f"{self.source}: {problem} (since {_local(since)}){kept}"

    def wait_first_attempt(self, timeout_s: float = FIRST_FETCH_WAIT_S) -> None:
        """Without a cached copy, wait (bounded) for the first refresh to end."""
        if self.cache_path.is_file():
            return
        self._attempted.wait(timeout_s)

    # ==== asking the source ====================================================

    def refresh(self) -> Refreshed:
        """One conditional request; never raises (a failure becomes `warning()`)."""
        with self._lock:
            try:
                outcome = self._refresh()
            except _Failure as failure:
                self._failed(str(failure))
                outcome = Refreshed.FAILED
            except TopologyError as error:
                self._failed(f"the document served is refused: {error.message}")
                outcome = Refreshed.FAILED
            except OSError as error:  # the cache could not be written
                self._failed(f"cannot keep a copy in {self.cache_path.parent}: {error}")
                outcome = Refreshed.FAILED
            else:
                with self._state_lock:
                    if self._problem is not None:
                        log.info("topology source %s answers again", self.source)
                    self._problem = self._problem_since = None
            self._attempted.set()
            return outcome

    def _refresh(self) -> Refreshed:
        copy = self.cached()
        headers: dict[str, str] = {}
        if copy is not None and copy.etag:
            headers["If-None-Match"] = copy.etag
        if copy is not None and copy.last_modified:
            headers["If-Modified-Since"] = copy.last_modified
        with _client(self._timeout_s, self._transport) as client:
            status, body, answer = _get(client, self.url, headers, self._timeout_s)
        now = self._wall()
        if status == 304 and copy is not None:
            self._write_meta(
                copy.fetched_at, now, copy.etag or answer.get("ETag"), copy.last_modified
            )
            log.debug("topology %s not modified (ETag %s)", self.source, copy.etag)
            return Refreshed.NOT_MODIFIED
        if status != 200:
            raise _Failure(f"HTTP {status}")
        text = decode_topology(body, self.source)
        parse_topology(text, self.source)  # TopologyError: refused, the copy stays
        if copy is not None and self._cached_text() == text:
            self._write_meta(copy.fetched_at, now, answer.get("ETag"), answer.get("Last-Modified"))
            return Refreshed.NOT_MODIFIED
        paths.write_atomically(self.cache_path, text)
        self._write_meta(now, now, answer.get("ETag"), answer.get("Last-Modified"))
        log.info("topology fetched from %s (%d bytes)", self.source, len(body))
        return Refreshed.UPDATED

    def _cached_text(self) -> str | None:
        try:
            return self.cache_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _failed(self, problem: str) -> None:
        with self._state_lock:
            changed = problem != self._problem
            self._problem = problem
            if self._problem_since is None:
                self._problem_since = self._wall()
        if changed:
            log.warning("topology source %s", self.warning())

    def _write_meta(
        self, fetched_at: float, checked_at: float, etag: str | None, last_modified: str | None
    ) -> None:
        meta = {
            "url": self.url,
            "fetched_at": fetched_at,
            "checked_at": checked_at,
            "etag": etag,
            "last_modified": last_modified,
        }
        paths.write_atomically(self.meta_path, json.dumps(meta, indent=2) + "\n")

    # ==== the running agent's schedule =========================================

    def start(self) -> None:
        """Refresh now, then every refresh_s (RETRY_S after a failure), in a thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="topology-fetch", daemon=True)
        self._thread.start()

    def refresh_soon(self) -> None:
        """Ask the source again at once ("Check now")."""
        self._wake.set()

    def stop(self, timeout: float = FETCH_TIMEOUT_S + 1.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            outcome = self.refresh()
            delay = self._refresh_s
            if outcome is Refreshed.FAILED:
                delay = min(delay, RETRY_S)
            self._wake.wait(delay)
            self._wake.clear()
