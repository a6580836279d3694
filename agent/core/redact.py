"""Redaction: what may be written down of a text that came from outside the agent.

Pure. `scrub` is the one filter every text bound for a log, a notification, the menu or
the history passes through when part of it came from the outside (a probe's error, an
answer's body, a URL from the topology): credentials in URLs (user:password@), query
strings and fragments, `password=…` / `"token": "…"` pairs, Authorization values (Bearer,
Basic), JSON Web Tokens and other long key-like strings are replaced, whitespace runs
become one blank, and the result is capped.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MAX_DETAIL", "REDACTED", "scrub"]

MAX_DETAIL = 160
REDACTED = "***"

# A secret-looking key, its separator, then the value: quoted, or up to a delimiter.
_SECRET_KEY = (
    r"[\w.-]*(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"  # noqa: S105 — a pattern of secret key names, not a secret
    r"|credential|session[_-]?id|cookie|auth)[\w.-]*"
)


@functools.cache
def _rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each pattern and what replaces it, in the order they apply; compiled at the first
    text to scrub (a healthy sweep has none: its answers carry no body)."""
    return (
        (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]*@"), r"\1"),  # user:password@
        (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#]*)[?#][^\s]*"), r"\1"),  # ?query, #frag
        # The scheme's credential before the key-value rule: "Authorization: Bearer X" would
        # otherwise lose only "Bearer" to it, and X would stay.
        (
            re.compile(r"(?i)\b(bearer|basic|token|digest)\s+[A-Za-z0-9._~+/=-]{8,}"),
            rf"\1 {REDACTED}",
        ),
        (
            re.compile(
                rf"""(?ix)
                (["']?\b{_SECRET_KEY}["']?\s*[:=]\s*)     # the key and its separator, kept
                ("[^"]*"|'[^']*'|[^\s,;&}}\]]+)           # the value, replaced
                """
            ),
            rf"\1{REDACTED}",
        ),
        (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),  # a JWT
        # 32+ characters of a key alphabet with letters and digits both: an API key, a hash.
        # Not a word of a path or a file name ("/", "_" and "." are not in it, nor next to it).
        (
            re.compile(
                r"(?<![\w+/=.-])(?=[A-Za-z0-9+=-]*\d)(?=[A-Za-z0-9+=-]*[A-Za-z])"
                r"[A-Za-z0-9+=-]{32,}(?![\w/.])"
            ),
            REDACTED,
        ),
    )


def scrub(text: str, limit: int = MAX_DETAIL) -> str:
    """`text` without credentials, query strings or secret-looking values, on one line,
    cut to `limit` characters ("…" at the end when cut)."""
    if not text:
        return text  # an HTTP probe's answer records its body only for a failure
    for pattern, replacement in _rules():
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
