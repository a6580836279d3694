"""Hostile documents for the property tests: real shapes, mutated, written as JSON or TOML.

A document here is plain data (dict, list, str, int, float, bool, None, dates, and `Raw`
for text no Python value can stand for: nesting deeper than the encoders' own recursion).
`mutated(base)` takes a real document (a recorded `tailscale status --json`, the bundled
topology) and changes one to three places in it: a key deleted, a value swapped for one of
the wrong type, a null, a huge or unicode value, a deep nest, an unknown key, a list where
an object was. `to_json` and `to_toml` write the result; `edited_text` then cuts, splices
and overwrites the text itself (half a document, a stray byte).
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from typing import Any, AnyStr

from hypothesis import strategies as st

from agent.core.topology import toml_string

__all__ = [
    "Raw",
    "edited_bytes",
    "edited_text",
    "json_values",
    "maybe_edited",
    "mutated",
    "to_json",
    "to_toml",
    "toml_values",
]


@dataclass(frozen=True)
class Raw:
    """A value written as this text (JSON and TOML alike): what no Python value can be."""

    text: str


def _deep(depth: int, opener: str, closer: str, leaf: str = "1") -> Raw:
    return Raw(opener * depth + leaf + closer * depth)


# Depths around and far past the recursion limit (1000) the parsers run under.
_DEPTHS = st.sampled_from([2, 50, 500, 999, 1000, 1001, 3000, 20_000])
_HUGE_INTS = st.sampled_from(
    [2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400), 10**4000]
)
_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
# A number longer than CPython's int conversion limit (4300 digits) reads as an error.
_LONG_NUMBER = st.just(Raw("9" * 5000))
_ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\u202e",
        "\x00",
        "\x7f",
        "😀" * 50,
        "é" * 300,
        "x" * 70_000,
        "\r\n\r\n",
        "null",
        "\u2028",
        "\x85",
    ]
)
_NUMBERS = st.integers() | _HUGE_INTS | st.floats() | st.sampled_from([0, -1, 0.0, -0.0, 1e308])


def _json_leaves() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(),
        st.booleans(),
        _NUMBERS,
        _TEXT,
        _ODD_TEXT,
        _LONG_NUMBER,
        _DEPTHS.map(lambda d: _deep(d, "[", "]")),
        _DEPTHS.map(lambda d: _deep(d, '{"a":', "}")),
    )


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4)


json_values = st.recursive(_json_leaves(), _containers, max_leaves=12)
"""Any JSON value, the hostile ones likely."""


def _toml_leaves() -> st.SearchStrategy[object]:
    return st.one_of(
        st.booleans(),
        _NUMBERS,
        _TEXT,
        _ODD_TEXT,
        st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
        st.dates(),
        st.times(),
        _LONG_NUMBER,
        _DEPTHS.map(lambda d: _deep(d, "[", "]")),
        _DEPTHS.map(lambda d: _deep(d, "{a = ", "}")),
    )


toml_values = st.recursive(_toml_leaves(), _containers, max_leaves=12)
"""Any TOML value (TOML has no null), the hostile ones likely."""


# ==== mutation ==================================================================

Path = tuple[str | int, ...]


def _paths(value: object, prefix: Path = ()) -> list[Path]:
    """Every place in the document, the root first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: object, path: Path, change: Any) -> object:
    """A copy of `value` with the node at `path` passed through `change` (which may return
    `_DELETE`)."""
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        new = _replace(copy[head], rest, change)
        if new is _DELETE:
            del copy[head]
        else:
            copy[head] = new
        return copy
    assert isinstance(value, list) and isinstance(head, int)
    items = list(value)
    new = _replace(items[head], rest, change)
    if new is _DELETE:
        del items[head]
    else:
        items[head] = new
    return items


_DELETE = object()


@st.composite
def _one_change(draw: st.DrawFn, document: object, values: st.SearchStrategy[object]) -> object:
    path = draw(st.sampled_from(_paths(document)))
    how = draw(st.sampled_from(["delete", "swap", "add", "wrap", "double"]))
    if how == "delete" and path:
        return _replace(document, path, lambda _: _DELETE)
    if how == "add":
        key = draw(_TEXT | st.sampled_from(["id", "name", "port", "Peer", "Self", "services"]))
        extra = draw(values)

        def add(node: object) -> object:
            if isinstance(node, dict):
                return {**node, key: extra}
            if isinstance(node, list):
                return [*node, extra]
            return extra

        return _replace(document, path, add)
    if how == "wrap":
        return _replace(document, path, lambda node: [node])
    if how == "double":
        return _replace(
            document, path, lambda node: [*node, *node] if isinstance(node, list) else node
        )
    replacement = draw(values)
    return _replace(document, path, lambda _: replacement)


@st.composite
def mutated(
    draw: st.DrawFn, bases: list[Any], values: st.SearchStrategy[object] = json_values
) -> object:
    """One of `bases`, changed in one to three places."""
    document = draw(st.sampled_from(bases))
    for _ in range(draw(st.integers(1, 3))):
        document = draw(_one_change(document, values))
    return document


# ==== writing ===================================================================


def to_json(value: object) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _toml_key(key: object) -> str:
    return toml_string(str(key))


def _toml_scalar(value: object) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_toml_key(k)} = {_toml_scalar(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if value is None:
        return '""'  # TOML has no null: the nearest a hand-written file gets
    raise TypeError(f"no TOML for {value!r}")


def _is_table_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(table: dict[Any, Any], path: tuple[str, ...], lines: list[str]) -> None:
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict) or _is_table_list(value):
            subtables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_scalar(value)}")
    for key, value in subtables:
        inner = (*path, _toml_key(key))
        if isinstance(value, dict):
            lines.append(f"[{'.'.join(inner)}]")
            _toml_table(value, inner, lines)
        else:
            for item in value:
                lines.append(f"[[{'.'.join(inner)}]]")
                _toml_table(item, inner, lines)


def to_toml(document: object, *, headers: bool = True) -> str:
    """A TOML file for `document` (a table): with [table] and [[array]] headers as people
    write it, or all on `key = value` lines with inline tables."""
    if not isinstance(document, dict):
        return f"value = {_toml_scalar(document)}\n"
    if not headers:
        return "".join(f"{_toml_key(k)} = {_toml_scalar(v)}\n" for k, v in document.items())
    lines: list[str] = []
    _toml_table(document, (), lines)
    return "\n".join(lines) + "\n"


# ==== text edits ================================================================


@st.composite
def _edited(draw: st.DrawFn, data: AnyStr, pieces: st.SearchStrategy[AnyStr]) -> AnyStr:
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(data)))
        end = draw(st.integers(start, min(len(data), start + 40)))
        how = draw(st.sampled_from(["cut", "delete", "insert", "repeat"]))
        if how == "cut":
            data = data[:start]
        elif how == "delete":
            data = data[:start] + data[end:]
        elif how == "insert":
            data = data[:start] + draw(pieces) + data[end:]
        else:
            data = data[:end] + data[start:end] + data[end:]
    return data


def edited_text(text: str) -> st.SearchStrategy[str]:
    """`text` cut short, or with a span deleted, replaced or repeated."""
    return _edited(text, _TEXT | _ODD_TEXT)


def edited_bytes(data: bytes) -> st.SearchStrategy[bytes]:
    """`data` cut short, or with a span deleted, replaced by random bytes or repeated."""
    return _edited(data, st.binary(max_size=40))


def maybe_edited(base: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """What `base` gives, as it is or edited (`edited_bytes`)."""
    return base | base.flatmap(edited_bytes)
