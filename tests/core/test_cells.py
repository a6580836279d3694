"""Display cells: what a terminal gives each character, so columns line up in any script."""

from __future__ import annotations

import pytest

from agent.core.cells import char_width, ljust, rjust, width


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ("FastAPI", 7),
        ("", 0),
        ("데이터베이스", 12),  # Hangul syllables: wide
        ("맥 미니 — 백엔드", 16),  # the em dash is ambiguous: one cell
        ("Cafe\u0301", 4),  # a combining accent takes no cell
        ("\u1100\u1161\u11a8", 2),  # conjoining jamo: one syllable, two cells
        ("ＡＢ", 4),  # fullwidth forms
        ("服务器", 6),  # CJK ideographs
        ("a\u200db", 2),  # zero-width joiner
        ("tab\there", 7),  # control characters take no cell
        ("…", 1),
    ],
)
def test_width_counts_cells(text: str, cells: int) -> None:
    assert width(text) == cells


def test_padding_is_in_cells_and_never_cuts() -> None:
    assert ljust("레디스", 8) == "레디스  "
    assert rjust("레디스", 8) == "  레디스"
    assert ljust("Redis", 8) == "Redis   "
    assert ljust("데이터베이스", 4) == "데이터베이스"
    assert width(ljust("Cafe\u0301", 6)) == 6


def test_char_width_of_each_kind() -> None:
    assert [char_width(c) for c in "a한\u0301\x7f"] == [1, 2, 0, 0]
