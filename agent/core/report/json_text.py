"""The text of every `--json` output: indented to a depth, then one line per item. Pure.

`json_text(data)` indents objects and lists two spaces a level, as `json.dumps(indent=2)`
would, down to `depth` levels; whatever is nested deeper is written on one line by the
standard library's C encoder (`indent` turns that encoder off: for check over 505 services
the pure-Python one cost about 10 ms, a twentieth of the whole run). With the default depth,
check's JSON has one line per service (easy to read and to grep); the smaller outputs (audit,
acl, history, autostart) nest less deep and read exactly as `indent=2` wrote them. The text
is JSON all the same: the contracts are its keys and values, not its layout.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JSON_INLINE_DEPTH", "json_text"]

JSON_INLINE_DEPTH = 4
"""Containers nested this deep or deeper are written on one line (the root is depth 0)."""

_INLINE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
_KEY = json.JSONEncoder(ensure_ascii=False)


def json_text(data: Any, *, depth: int = JSON_INLINE_DEPTH) -> str:
    """`data` as JSON text ending in a newline, indented down to `depth`."""
    out: list[str] = []
    _write(data, 0, depth, out)
    out.append("\n")
    return "".join(out)


def _write(value: Any, level: int, depth: int, out: list[str]) -> None:
    if level >= depth or not isinstance(value, dict | list | tuple) or not value:
        out.append(_INLINE.encode(value))
        return
    inner = "\n" + "  " * (level + 1)
    if isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            out.append(("," if i else "") + inner + _KEY.encode(_key(key)) + ": ")
            _write(item, level + 1, depth, out)
        out.append("\n" + "  " * level + "}")
    else:
        out.append("[")
        for i, item in enumerate(value):
            out.append(("," if i else "") + inner)
            _write(item, level + 1, depth, out)
        out.append("\n" + "  " * level + "]")


def _key(key: Any) -> str:
    # json.dumps turns the basic scalar keys into strings; the same here, the same way.
    if isinstance(key, str):
        return key
    return _INLINE.encode(key) if isinstance(key, bool | int | float) or key is None else key
