"""json_text: the same JSON as json.dumps, indented to a depth, one line per deeper item."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.core.report.json_text import JSON_INLINE_DEPTH, json_text

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def nesting(value: Any) -> int:
    if isinstance(value, dict) and value:
        return 1 + max(nesting(v) for v in value.values())
    if isinstance(value, list) and value:
        return 1 + max(nesting(v) for v in value)
    return 0


@given(values, st.integers(min_value=0, max_value=6))
def test_it_reads_back_as_what_was_written(value: Any, depth: int) -> None:
    assert json.loads(json_text(value, depth=depth)) == value


@given(values)
def test_shallow_enough_it_is_exactly_indent_2(value: Any) -> None:
    deep = max(nesting(value), 1)
    expected = json.dumps(value, ensure_ascii=False, indent=2) + "\n"
    assert json_text(value, depth=deep) == expected


def test_below_the_depth_one_line_per_item() -> None:
    data = {"nodes": [{"id": "mac", "services": [{"name": "Redis", "port": 6379}, {"name": "ü"}]}]}
    assert json_text(data) == (
        "{\n"
        '  "nodes": [\n'
        "    {\n"
        '      "id": "mac",\n'
        '      "services": [\n'
        '        {"name": "Redis", "port": 6379},\n'
        '        {"name": "ü"}\n'
        "      ]\n"
        "    }\n"
        "  ]\n"
        "}\n"
    )
    assert JSON_INLINE_DEPTH == 4


def test_keys_as_json_dumps_makes_them() -> None:
    data = {1: "a", 2.5: "b", False: "c", None: "d"}
    assert json_text(data) == json.dumps(data, indent=2) + "\n"
