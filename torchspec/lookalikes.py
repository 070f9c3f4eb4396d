"""Characters that look like others: name them, by code point, Unicode name and column.

A CYRILLIC SMALL LETTER IE (U+0435) in place of the "e" of ReLU renders exactly like it, so
"unknown layer type 'ReLU'; did you mean 'ReLU'?" reads as nonsense. Every located problem whose
message quotes a name holding non-ASCII characters gets a hint naming each of them and its column;
a no-break space (or other Unicode space) where YAML/JSON expect indentation or a separator is
refused on its own line, where it is, instead of as a confusing error about the next token.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["char_name", "lookalike_hints", "odd_space"]

# quoted names in a message: 'ReLU', "kernel_size" (identifiers, dotted paths, dashes)
_QUOTED = re.compile(r"'([\w.\-]+)'|\"([\w.\-]+)\"")
# Unicode spaces a keyboard or a web page slips in for ' ' (and the zero-width ones)
_SPACES = "\u00a0\u1680\u2000-\u200b\u202f\u205f\u2060\u3000\ufeff"
# ... at the start of a line (indentation) or right after YAML punctuation (separators)
_INDENT = re.compile(rf"^[ \t]*([{_SPACES}])", re.MULTILINE)
_SEPARATOR = re.compile(rf"[:,\-\[\{{][ \t]*([{_SPACES}])")


def char_name(char: str) -> str:
    """``U+0435 CYRILLIC SMALL LETTER IE``."""
    return f"U+{ord(char):04X} {unicodedata.name(char, 'UNNAMED CHARACTER')}"


def lookalike_hints(message: str, line: str | None, col: int) -> list[str]:
    """Hints for each quoted name in ``message`` that holds non-ASCII characters: each character
    by code point, name and column (1-based, found in the source ``line`` from ``col`` on; the
    character's place in the name when the line is unknown)."""
    hints: list[str] = []
    seen: set[str] = set()
    for match in _QUOTED.finditer(message):
        name = match[1] or match[2]
        if name.isascii() or name in seen:
            continue
        seen.add(name)
        start = -1
        if line:
            start = line.find(name, max(col - 1, 0))
            start = line.find(name) if start < 0 else start
        places = []
        for index, char in enumerate(name):
            if not char.isascii():
                where = f"column {start + index + 1}" if start >= 0 else f"character {index + 1} of the name"
                places.append(f"{char_name(char)} at {where}")
        plural = "s" if len(places) > 1 else ""
        listing = ", ".join(places)
        hints.append(f"'{name}' holds non-ASCII character{plural}: {listing}; names are ASCII: retype it")
    return hints


def odd_space(text: str, separators: bool = True) -> tuple[int, str] | None:
    """(offset, character) of the first Unicode space used as indentation or (``separators``:
    YAML) right after ``:``, ``-``, ``,``, ``[`` or ``{`` outside quotes and comments."""
    found = [m.start(1) for m in _INDENT.finditer(text)][:1]
    if separators:
        for match in _SEPARATOR.finditer(text):
            before = text[text.rfind("\n", 0, match.start()) + 1 : match.start()]
            if not any(mark in before for mark in "\"'#"):  # not inside a string or a comment
                found.append(match.start(1))
                break
    return (min(found), text[min(found)]) if found else None
