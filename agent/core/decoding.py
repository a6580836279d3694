"""Decoding documents from outside (TOML files, JSON answers): every refusal a ValueError.

Pure (stdlib only). The standard library's readers refuse bad syntax with a ValueError
(tomllib.TOMLDecodeError, json.JSONDecodeError), but fail in two other ways on documents
that are valid yet hostile: arrays or tables nested past the recursion limit raise
RecursionError, and an integer longer than CPython's conversion limit (4300 digits)
raises a ValueError worded for programmers. And a valid huge integer (10**400) is no
float: float() and math.isfinite() raise OverflowError on it. Readers of outside
documents use these instead, so a hostile file or answer is refused like any bad one.
"""

from __future__ import annotations

import json
import math
import sys
import tomllib
from typing import Any

__all__ = ["DocumentLimitError", "finite_number", "load_json", "load_toml"]


class DocumentLimitError(ValueError):
    """A document too deeply nested, or with a number too long, to read; str() says which."""


def _too_deep() -> DocumentLimitError:
    return DocumentLimitError(
        f"nested too deeply (more than about {sys.getrecursionlimit()} levels of arrays or tables)"
    )


def _too_long() -> DocumentLimitError:
    return DocumentLimitError(
        f"a number with more than {sys.get_int_max_str_digits()} digits cannot be read"
    )


def load_toml(text: str) -> dict[str, Any]:
    """tomllib.loads; tomllib.TOMLDecodeError for bad syntax, DocumentLimitError for a
    document nested too deeply or with a number too long to read."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except tomllib.TOMLDecodeError:
        raise
    except ValueError:  # tomllib passes int()'s digit limit through as it is
        raise _too_long() from None


def load_json(data: str | bytes) -> object:
    """json.loads; ValueError (a JSONDecodeError, a UnicodeDecodeError for bytes that are
    not UTF-8, or a DocumentLimitError) for anything it cannot read."""
    try:
        return json.loads(data)
    except RecursionError:
        raise _too_deep() from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError:  # int()'s digit limit, worded for programmers
        raise _too_long() from None


def finite_number(value: object) -> float | None:
    """`value` as a float when it is a finite number (not a bool); None otherwise, huge
    integers included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
