"""HTTP answers for the fuzz properties: a status line (real ones, odd ones, not HTTP at
all), up to five headers (framing that agrees with the body or does not, codings, charsets,
an oversized header, malformed lines, random bytes) and a body (empty, text, gzip, chunked
or pretending to be, 300 KB, random)."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import strategies as st

__all__ = ["BODIES", "STATUS_LINES", "http_replies"]

STATUS_LINES = st.sampled_from(
    [b"HTTP/1.1 200 OK", b"HTTP/1.0 204 No Content", b"HTTP/1.1 503 Service Unavailable",
     b"HTTP/1.1 302 Found", b"HTTP/1.1 101 Switching Protocols", b"HTTP/1.1 999 Odd",
     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", b"HTTP/1.1 000 zero", b"HTTP/2 200",
     b"HTTP/1.1 200", b"HTTP/1.1 2000 OK", b"ICY 200 OK", b"SSH-2.0-OpenSSH_9.6",
     b"+PONG", b"\x16\x03\x01\x02\x00", b"HTTP/1.1 200 \xff\xfe", b""]
)  # fmt: skip
BODIES = st.sampled_from(
    [b"", b"ok", b"status: ok\n", gzip.compress(b"status: ok"), zlib.compress(b"ok"),
     b"2\r\nok\r\n0\r\n\r\n", b"zz\r\nok\r\n", b"ffffffffffffffffff\r\n", b"\xff" * 10,
     b"x" * 300_000, "état: prêt ✓".encode(), "ok".encode("utf-16")]
) | st.binary(max_size=64)  # fmt: skip


@st.composite
def _headers(draw: st.DrawFn, body: bytes) -> list[bytes]:
    length = draw(
        st.sampled_from([str(len(body)), "0", "5", "99999999999999999999", "-1", "abc", "1,2"])
    )
    choices = st.sampled_from(
        [b"Content-Length: " + length.encode(), b"Transfer-Encoding: chunked",
         b"Transfer-Encoding: gzip, chunked", b"Content-Encoding: gzip",
         b"Content-Encoding: deflate", b"Content-Encoding: br", b"Content-Encoding: zstd",
         b"Content-Encoding: gzip, gzip", b"Content-Encoding: x-unknown",
         b"Content-Type: text/plain; charset=utf-16", b"Content-Type: text/plain; charset=bogus",
         b"Content-Type: text/plain; charset=\xff", b"Connection: close", b"Connection: keep-alive",
         b"X-Long: " + b"a" * 120_000, b" folded continuation", b"No-Colon-Here", b"\xc3\xa9: v",
         b"Set-Cookie: a=b; Max-Age=abc"]
    )  # fmt: skip
    return draw(st.lists(choices | st.binary(max_size=30), max_size=5))


@st.composite
def http_replies(draw: st.DrawFn) -> bytes:
    body = draw(BODIES)
    head = [draw(STATUS_LINES), *draw(_headers(body))]
    return b"\r\n".join(head) + b"\r\n\r\n" + body
