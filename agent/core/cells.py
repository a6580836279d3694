"""Text measured in terminal cells, so tables line up with Korean (or any wide) names.

Pure (stdlib only). A terminal shows an East Asian Wide or Fullwidth character (Hangul,
CJK ideographs, fullwidth forms: `unicodedata.east_asian_width` W or F) in two cells,
a combining mark, a format character (zero-width joiner, variation selector) or a
Hangul medial vowel / final consonant jamo (which join the syllable before them) in
none, and everything else in one. Ambiguous-width characters ("—", "…") count as one,
as terminals outside East Asian locales show them. `len()` counts code points and
misaligns columns as soon as a name is in Hangul; `width`, `ljust` and `rjust` count cells.
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = ["char_width", "ljust", "rjust", "width"]


@functools.lru_cache(maxsize=4096)
def char_width(char: str) -> int:
    """Cells one character takes: 2 wide/fullwidth, 0 combining/format/joining jamo, else 1."""
    code = ord(char)
    if code < 0x7F:
        return 1 if code >= 0x20 else 0
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf", "Cc"):
        return 0
    if 0x1160 <= code <= 0x11FF or 0xD7B0 <= code <= 0xD7FF:  # jamo that join the syllable
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """The cells `text` takes in a terminal (no newlines expected)."""
    if text.isascii():
        return sum(1 for c in text if c >= " " and c != "\x7f")
    return sum(char_width(c) for c in text)


def ljust(text: str, cells: int) -> str:
    """`text` padded with spaces on the right to `cells` cells (never cut)."""
    return text + " " * max(0, cells - width(text))


def rjust(text: str, cells: int) -> str:
    """`text` padded with spaces on the left to `cells` cells (never cut)."""
    return " " * max(0, cells - width(text)) + text
