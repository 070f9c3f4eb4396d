"""The JSON reader of :func:`torchspec.source.parse_document`: a small recursive-descent parser with
the YAML path's positions and rules (depth and node limits, int64 integers, duplicate keys refused,
each failure located at a 1-based line/column).
"""

from __future__ import annotations

import re
from collections.abc import Sized
from json.decoder import JSONDecodeError, scanstring  # type: ignore[attr-defined]
from json.scanner import NUMBER_RE
from typing import Any

from torchspec import scalars
from torchspec.document import MAX_DEPTH, MAX_NODES, Document, Path, line_starts, offset_pos
from torchspec.errors import SpecError
from torchspec.lookalikes import char_name

__all__ = ["JsonParser"]

_JSON_SPACE = re.compile(r"[ \t\r\n]*")
_SPACE_CHARS = frozenset(" \t\r\n")


class JsonParser:
    """Recursive descent (at most MAX_DEPTH deep) recording every node's position."""

    def __init__(self, doc: Document) -> None:
        self.doc, self.text, self.i, self.count = doc, doc.text, 0, 0
        self.starts = line_starts(doc.text, "json")

    def parse(self) -> Any:
        if self._skip() == "":
            return None
        value = self._value((), 0)
        if self._skip():
            raise self._fail(f"unexpected {self._found()} after the document")
        return value

    def _fail(self, message: str, *hints: str, at: int | None = None) -> SpecError:
        pos = offset_pos(self.starts, self.i if at is None else at)
        return self.doc.error_at(pos, message, *hints)

    def _skip(self) -> str:
        """Skip whitespace; return the next character ('' at the end)."""
        char = self.text[self.i : self.i + 1]
        if char not in _SPACE_CHARS:  # most calls: no whitespace here (not even '', the end)
            return char
        self.i = _JSON_SPACE.match(self.text, self.i).end()  # type: ignore[union-attr]  # '*' always matches
        return self.text[self.i : self.i + 1]

    def _found(self) -> str:
        if self.i >= len(self.text):
            return "end of file"
        char = self.text[self.i]
        return repr(char) if char.isascii() else f"{char!r} ({char_name(char)})"

    def _value(self, path: Path, depth: int) -> Any:
        char, start, text = self._skip(), self.i, self.text
        pos = self.doc.value_pos[path] = offset_pos(self.starts, start)
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(f"document has more than {MAX_NODES} nodes")
        if char in ("{", "["):
            if depth >= MAX_DEPTH:
                raise self._fail(f"nesting is deeper than {MAX_DEPTH} levels")
            self.i += 1
            return (self._object if char == "{" else self._array)(path, depth + 1)
        if char == '"':
            return self._string()
        for word, literal in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, start):
                self.i += len(word)
                return literal
        if text.startswith(("NaN", "Infinity", "-Infinity"), start):
            raise self._fail("NaN and Infinity are not valid JSON numbers")
        match = NUMBER_RE.match(text, start)
        if not match or not match[0].isascii():
            raise self._fail(f"expected a value, found {self._found()}")
        self.i = match.end()
        _, frac, exp = match.groups()
        try:  # ints must fit int64, floats must be finite: JSON numbers read as YAML's do
            return scalars.to_value(match[0], scalars.FLOAT if frac or exp else scalars.INT)
        except scalars.OutOfRange as exc:
            raise self.doc.error_at(pos, str(exc)) from None

    def _string(self) -> str:
        try:
            value, self.i = scanstring(self.text, self.i + 1, True)
        except JSONDecodeError as exc:
            reason = exc.msg.removesuffix(" at").removesuffix(" starting").lower()
            raise self._fail(f"invalid string: {reason}", at=exc.pos) from None
        return str(value)

    def _object(self, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while not self._close(result, "}"):
            if self._skip() != '"':
                found = self._found()
                raise self._fail(f"keys must be strings in double quotes, found {found}")
            key_at = offset_pos(self.starts, self.i)
            key = self._string()
            if key in result:
                first = self.doc.key_pos[(*path, key)].line
                message = f"duplicate key '{key}' (first at line {first})"
                raise self.doc.error_at(key_at, message)
            self.doc.key_pos[(*path, key)] = key_at
            self.count += 1  # keys are nodes too, as in YAML
            if self._skip() != ":":
                raise self._fail(f"expected ':' after the key, found {self._found()}")
            self.i += 1
            result[key] = self._value((*path, key), depth)
        return result

    def _array(self, path: Path, depth: int) -> list[Any]:
        result: list[Any] = []
        while not self._close(result, "]"):
            result.append(self._value((*path, len(result)), depth))
        return result

    def _close(self, items: Sized, closer: str) -> bool:
        """Before an item: True (consumed) at the closing bracket, else step over a ','."""
        char = self._skip()
        if char == closer:
            self.i += 1
            return True
        if not items:
            return False
        if char != ",":
            raise self._fail(f"expected ',' or '{closer}', found {self._found()}")
        comma, self.i = self.i, self.i + 1
        if self._skip() == closer:
            hint = "JSON allows no comma after the last item"
            raise self._fail(f"trailing comma before '{closer}'", hint, at=comma)
        return False
