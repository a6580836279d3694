"""The shared httpx client of HTTP probes, for what the plain path does not do.

`make_http_client()` is a `ProbeClient`: an httpx.AsyncClient over
`_transport.ProbeTransport` (a fresh connection per request, no pool) that keeps no
cookies and sends `_run.REQUEST_HEADERS`, the same head the plain path writes. A sweep
makes one only when a target needs it (a URL that needs parsing, https, a body to read, an
answer's details): `http.SharedClient` imports this module then, and httpx with it.
"""

from __future__ import annotations

import functools
from http.cookiejar import Cookie, CookieJar

import httpx

from agent.edges.probes._run import REQUEST_HEADERS, url_host
from agent.edges.probes._transport import ProbeTransport

__all__ = ["ProbeClient", "make_http_client", "probe_url"]


class _KeepNothing(CookieJar):
    """A cookie jar that drops every cookie it is given."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """Always empty; a response's Set-Cookie headers are not even parsed."""

    def __init__(self) -> None:
        super().__init__(_KeepNothing())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class ProbeClient(httpx.AsyncClient):
    """The shared probe client: an httpx.AsyncClient that keeps no cookies.

    A probe never sends what an earlier answer set (each result depends on the
    service alone, not on the sweeps before), and the client holds no state that
    grows over a long run. It also spares every response the cookie parsing.
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise AttributeError("a probe client keeps no cookies")


def make_http_client() -> ProbeClient:
    """The client for a whole sweep (reuse it across sweeps too).

    Its transport (`_transport.ProbeTransport`) opens a fresh connection for
    every request and closes it with the response: no connection pool and no
    connection-count limit (500 concurrent probes never queue behind a pool), no
    keep-alive (every probe measures connect + answer and holds no idle socket
    between sweeps). No redirects, and no proxy or netrc from the environment
    (trust_env=False): a probe goes straight to the address it names. https
    (never sent by the probe itself) goes through httpx's own transport with
    certificates verified, built on first use. Timeouts are per request. Its headers
    are REQUEST_HEADERS, set whole (httpx's defaults would add "br" or "zstd" to
    Accept-Encoding where those decoders happen to be installed).
    """
    return ProbeClient(
        transport=ProbeTransport(),
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
        trust_env=False,
        headers=list(REQUEST_HEADERS),
    )


@functools.lru_cache(maxsize=1024)
def probe_url(host: str, port: int, path: str) -> httpx.URL:
    """The URL a target's probe fetches, parsed once (httpx's URL parsing is not cheap)."""
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return httpx.URL(f"http://{url_host(host)}:{port}{path}")
