"""agent.edges.topology_fetch against a real loopback web server (tests/helpers/topology_server):
conditional requests, the last good copy, refusals, limits, no https -> http redirect (a real
https server with a self-signed certificate); and where a URL may come from."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest

from agent.core.topology_url import (
    MAX_REDIRECTS,
    MAX_TOPOLOGY_BYTES,
    redirect_refusal,
    shown_url,
    topology_url,
)
from agent.edges.topology_fetch import Refreshed, RemoteTopology, fetch_document
from agent.edges.topology_source import load_location, locate_topology
from agent.errors import TopologyError
from tests.helpers.servers import closed_port
from tests.helpers.tls import client_context, self_signed, server_context
from tests.helpers.topology_server import TopologyServer

DOC = """
version = 1
name = "{name}"

[[nodes]]
id = "desktop"
name = "Desktop"
hostname = "sweetlife"
ip = "127.0.0.1"
"""


def doc(name: str = "Served") -> str:
    return DOC.format(name=name)


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def remote(tmp_path: Path, url: str) -> RemoteTopology:
    return RemoteTopology(url, tmp_path / "cache" / "t.toml", timeout_s=5.0)


def test_an_etag_is_sent_back_and_a_304_keeps_the_copy(tmp_path: Path) -> None:
    with TopologyServer(doc()).running() as server:
        fetcher = remote(tmp_path, server.url())
        assert fetcher.refresh() is Refreshed.UPDATED
        first = fetcher.cached()
        assert first is not None and first.etag == server.etag
        assert fetcher.refresh() is Refreshed.NOT_MODIFIED
        assert server.requests[0].get("if-none-match") is None
        assert server.requests[1]["if-none-match"] == server.etag
        assert server.requests[1]["if-modified-since"] == server.last_modified
        again = fetcher.cached()
        assert again is not None
        assert (again.fetched_at, again.etag) == (first.fetched_at, first.etag)
        server.serve(doc("Changed"))
        assert fetcher.refresh() is Refreshed.UPDATED
    assert 'name = "Changed"' in fetcher.cache_path.read_text()
    assert fetcher.warning() is None


def test_if_modified_since_alone_is_honoured(tmp_path: Path) -> None:
    with TopologyServer(doc()).running() as server:
        fetcher = remote(tmp_path, server.url())
        assert fetcher.refresh() is Refreshed.UPDATED
        # A copy cached without an ETag (a server that sends only Last-Modified).
        meta = json.loads(fetcher.meta_path.read_text())
        fetcher.meta_path.write_text(json.dumps({**meta, "etag": None}))
        assert fetcher.refresh() is Refreshed.NOT_MODIFIED
        assert "if-none-match" not in server.requests[-1]
        assert server.requests[-1]["if-modified-since"] == server.last_modified


def test_a_refused_document_keeps_the_last_good_copy_and_says_so(tmp_path: Path) -> None:
    with TopologyServer(doc()).running() as server:
        fetcher = remote(tmp_path, server.url())
        fetcher.refresh()
        good = fetcher.cache_path.read_text()
        server.serve(doc().replace('ip = "127.0.0.1"', 'ip = "127.0.0.1"\nchek = "x"'))
        assert fetcher.refresh() is Refreshed.FAILED
        warning = fetcher.warning()
        assert warning is not None
        assert "refused" in warning and "chek" in warning and "since" in warning
        assert "in use: the copy fetched" in warning
        assert fetcher.cache_path.read_text() == good
        assert fetcher.refresh() is Refreshed.FAILED
        assert fetcher.warning() == warning  # the same words while the same problem lasts
        server.serve(doc("Fixed"))
        assert fetcher.refresh() is Refreshed.UPDATED
        assert fetcher.warning() is None


def test_the_tailscale_cli_never_comes_from_a_fetched_document(tmp_path: Path) -> None:
    evil = doc().replace("version = 1", 'version = 1\ntailscale = "/tmp/evil"')
    with TopologyServer(evil).running() as server:
        fetcher = remote(tmp_path, server.url())
        assert fetcher.refresh() is Refreshed.FAILED
        assert "tailscale" in (fetcher.warning() or "")
        assert not fetcher.cache_path.exists()


def test_an_unreachable_source_keeps_the_copy(tmp_path: Path) -> None:
    server = TopologyServer(doc())
    with server.running():
        fetcher = remote(tmp_path, server.url())
        fetcher.refresh()
    assert fetcher.refresh() is Refreshed.FAILED
    assert "cannot connect" in (fetcher.warning() or "")
    assert load_location_of(fetcher).name == "Served"
    with server.running():  # back on the same port
        assert fetcher.refresh() is Refreshed.NOT_MODIFIED
    assert fetcher.warning() is None


def load_location_of(fetcher: RemoteTopology):  # type: ignore[no-untyped-def]
    from agent.edges.topology_source import TopologyLocation

    return load_location(TopologyLocation(fetcher.cache_path, "--topology", url=fetcher.url))


def test_no_copy_and_no_source_is_an_error_naming_the_url(tmp_path: Path) -> None:
    fetcher = remote(tmp_path, f"http://127.0.0.1:{closed_port()}/t.toml")
    assert fetcher.refresh() is Refreshed.FAILED
    assert "no copy was ever fetched" in (fetcher.warning() or "")
    with pytest.raises(TopologyError, match="no copy of it has been downloaded yet"):
        load_location_of(fetcher)


def test_a_host_httpx_cannot_encode_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    # topology_url accepts it (stdlib urlsplit), httpx refuses it before any connection
    # (IDNA allows no soft hyphen) with InvalidURL, which is no httpx.HTTPError.
    url = "https://h\u00ad.example/t.toml"
    assert topology_url(url, "--topology") == url
    with pytest.raises(TopologyError, match="cannot fetch it: not a usable URL: Invalid IDNA"):
        fetch_document(url)
    fetcher = remote(tmp_path, url)
    assert fetcher.refresh() is Refreshed.FAILED
    assert "not a usable URL" in (fetcher.warning() or "")


@pytest.mark.parametrize("length_header", [True, False], ids=["content-length", "counted"])
def test_a_document_over_1_mib_is_refused(tmp_path: Path, length_header: bool) -> None:
    big = doc() + "#" * MAX_TOPOLOGY_BYTES + "\n"
    with TopologyServer(big).running() as server:
        server.send_length = length_header
        fetcher = remote(tmp_path, server.url())
        assert fetcher.refresh() is Refreshed.FAILED
    said = "bytes, over the 1 MiB limit" if length_header else "is over the 1 MiB limit"
    assert said in (fetcher.warning() or "")
    assert not fetcher.cache_path.exists()


def test_redirects_are_followed_up_to_the_limit(tmp_path: Path) -> None:
    with TopologyServer(doc()).running() as server:
        hops = [f"/hop{i}" for i in range(MAX_REDIRECTS + 1)]
        for here, there in zip(hops, [*hops[1:], "/topology.toml"], strict=True):
            server.redirects[here] = server.url(there)
        near = remote(tmp_path / "near", server.url(hops[1]))  # MAX_REDIRECTS hops
        assert near.refresh() is Refreshed.UPDATED
        far = remote(tmp_path / "far", server.url(hops[0]))  # one more
        assert far.refresh() is Refreshed.FAILED
        assert f"more than {MAX_REDIRECTS} redirects" in (far.warning() or "")
        server.redirects["/elsewhere"] = "ftp://127.0.0.1/topology.toml"
        sideways = remote(tmp_path / "ftp", server.url("/elsewhere"))
        assert sideways.refresh() is Refreshed.FAILED
        assert "not http:// or https://" in (sideways.warning() or "")


def test_an_http_error_status_is_a_failure(tmp_path: Path) -> None:
    with TopologyServer(doc()).running() as server:
        server.status = 503
        fetcher = remote(tmp_path, server.url())
        assert fetcher.refresh() is Refreshed.FAILED
    assert "HTTP 503" in (fetcher.warning() or "")


def test_validate_fetches_without_caching(tmp_path: Path) -> None:
    with TopologyServer(doc()).running() as server:
        assert fetch_document(server.url()).name == "Served"
        server.serve("version = 2\n")
        with pytest.raises(TopologyError, match=r"http://127\.0\.0\.1:\d+/topology\.toml"):
            fetch_document(server.url())


# ==== where a URL may come from ===============================================


@pytest.mark.parametrize(
    "text", ["ftp://example.com/t.toml", "file:///etc/passwd", "javascript://x", "http:///t.toml"]
)
def test_only_http_and_https_urls_with_a_host_are_accepted(text: str) -> None:
    with pytest.raises(TopologyError):
        topology_url(text, "--topology")


@pytest.mark.parametrize(
    "text",
    [
        "https://me:s3cret@example.com/t.toml",
        "ftp://me:s3cret@example.com/t.toml",  # refused for its scheme
        "https://me:s3cret@example.com:99999/t.toml",  # for its port
        "https://me:s3cret@exa\nmple.com/t.toml",  # for its line break
    ],
)
def test_a_url_with_a_password_is_refused_without_repeating_it(text: str) -> None:
    with pytest.raises(TopologyError) as caught:
        topology_url(text, "--topology")
    assert "s3cret" not in caught.value.message
    assert "me:" not in caught.value.message and "mple.com" in caught.value.message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://exa\nmple.com/t.toml", r'"https://exa\nmple.com/t.toml"'),
        ("https://example.com/t\r.toml", r'"https://example.com/t\r.toml"'),
        ("https://example.com/\tt.toml", r'"https://example.com/\tt.toml"'),
        ("https://example.com/t\u2028.toml", r'"https://example.com/t\u2028.toml"'),
        ("ftp://a\nb/t.toml", r'"ftp://a\nb/t.toml"'),
    ],
)
def test_a_url_with_a_line_break_is_refused_on_one_line(text: str, shown: str) -> None:
    # urlsplit would drop the line break unseen, and httpx refuse the URL at fetch time.
    with pytest.raises(TopologyError) as caught:
        topology_url(text, "--topology")
    assert caught.value.message.splitlines() == [caught.value.message]
    assert caught.value.message.startswith(shown + ": ")
    assert "(given by --topology)" in caught.value.message


def test_paths_are_not_urls() -> None:
    assert topology_url("topology.toml", "--topology") is None
    assert topology_url(r"C:\Users\me\topology.toml", "--topology") is None
    assert topology_url("HTTPS://example.com/t.toml", "--topology") == "HTTPS://example.com/t.toml"


def test_a_signed_query_is_never_shown() -> None:
    assert shown_url("https://minio:9000/b/t.toml?X-Amz-Signature=abc") == (
        "https://minio:9000/b/t.toml?…"
    )


def test_the_order_option_environment_config_file(xdg: Path) -> None:
    config = xdg / "config" / "tailnet-agent"
    config.mkdir(parents=True)
    (config / "topology.toml").write_text(doc())
    assert locate_topology(None, {}).url is None  # the user file
    (config / "config.toml").write_text('source = "https://a.example/t.toml"\nrefresh = "2m"\n')
    from_config = locate_topology(None, {})
    assert (from_config.url, from_config.origin, from_config.refresh_s) == (
        "https://a.example/t.toml",
        "config.toml",
        120.0,
    )
    assert from_config.path.parent == xdg / "state" / "tailnet-agent" / "topology-cache"
    env = {"TAILNET_AGENT_TOPOLOGY": "http://b.example/t.toml"}
    assert locate_topology(None, env).url == "http://b.example/t.toml"
    assert locate_topology("https://c.example/t.toml", env).url == "https://c.example/t.toml"
    assert locate_topology("https://c.example/t.toml", env).refresh_s == 120.0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('source = "ftp://a/t.toml"', "only http:// and https://"),
        ('source = "/home/me/t.toml"', "http:// or https:// URL"),
        ('sauce = "https://a/t.toml"', "unknown key 'sauce'"),
        ('refresh = "soon"', "refresh"),
        ("source = [", "TOML syntax error"),
    ],
)
def test_a_bad_config_toml_is_refused_naming_it(xdg: Path, text: str, why: str) -> None:
    config = xdg / "config" / "tailnet-agent"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(text + "\n")
    with pytest.raises(TopologyError, match=r"config\.toml") as caught:
        locate_topology(None, {})
    assert why in caught.value.message


# ==== https never leads to http ================================================


@pytest.fixture
def trusted(tmp_path: Path) -> tuple[ssl.SSLContext, httpx.HTTPTransport]:
    """A server context with a self-signed certificate for 127.0.0.1, and a transport that
    trusts it alone. The product has no CA option; its transport seam carries the trust,
    while the redirect policy under test is the client's own (agent.edges.topology_fetch)."""
    cert = self_signed(tmp_path / "tls")
    return server_context(cert), httpx.HTTPTransport(verify=client_context(cert))


def test_an_https_source_redirecting_to_http_is_refused_and_the_copy_stays(
    tmp_path: Path, trusted: tuple[ssl.SSLContext, httpx.HTTPTransport]
) -> None:
    context, transport = trusted
    plain = TopologyServer(doc("Served over plain http"))
    with TopologyServer(doc(), tls=context).running() as https, plain.running():
        fetcher = RemoteTopology(
            https.url(), tmp_path / "cache" / "t.toml", timeout_s=5.0, transport=transport
        )
        assert https.url().startswith("https://127.0.0.1:")
        assert fetcher.refresh() is Refreshed.UPDATED  # the last good copy, over https
        https.redirects["/topology.toml"] = plain.url()
        assert fetcher.refresh() is Refreshed.FAILED
        warning = fetcher.warning() or ""
        assert "redirected from https:// to http://" in warning and "downgrade" in warning
        assert plain.url() in warning and "in use: the copy fetched" in warning
        assert plain.requests == []  # the refused request was never sent
        assert load_location_of(fetcher).name == "Served"  # what the monitor keeps using
        with pytest.raises(TopologyError, match="downgrade"):
            fetch_document(https.url(), transport=transport)  # `topology validate URL`
        assert plain.requests == []


def test_an_https_redirect_to_https_is_followed(
    tmp_path: Path, trusted: tuple[ssl.SSLContext, httpx.HTTPTransport]
) -> None:
    context, transport = trusted
    with TopologyServer(doc("Moved"), tls=context).running() as https:
        https.redirects["/old.toml"] = https.url()
        fetcher = RemoteTopology(
            https.url("/old.toml"), tmp_path / "t.toml", timeout_s=5.0, transport=transport
        )
        assert fetcher.refresh() is Refreshed.UPDATED, fetcher.warning()


@pytest.mark.parametrize(
    ("origin", "target", "refused"),
    [
        ("https://a.example/t.toml", "http://b.example/t.toml", True),
        ("HTTPS://a.example/t.toml", "HTTP://a.example/t.toml", True),
        ("https://a.example/t.toml", "https://b.example/t.toml", False),
        ("http://a.example/t.toml", "https://a.example/t.toml", False),  # an upgrade
        ("http://a.example/t.toml", "http://b.example/t.toml", False),
    ],
)
def test_only_a_downgrade_is_refused(origin: str, target: str, refused: bool) -> None:
    assert (redirect_refusal(origin, target) is not None) is refused
