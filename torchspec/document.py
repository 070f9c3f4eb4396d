"""A spec's text with positions: :class:`Document` (plain data, where each node starts, located
problems) and the limits every reader of spec text (YAML, JSON, ``--set`` values) keeps.

The lowest stage of the compiler after the diagnostics: it knows text and positions, nothing of
layers, graphs or torch. :mod:`torchspec.source` (YAML) and :mod:`torchspec.source_json` (JSON)
build Documents.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from torchspec.errors import Note, Problem, SpecError
from torchspec.lookalikes import lookalike_hints

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Document",
    "Format",
    "Path",
    "Pos",
    "line_starts",
    "offset_pos",
]

MAX_BYTES = 1_000_000  # file size limit
MAX_DEPTH = 64  # nesting depth of mappings/sequences
MAX_NODES = 100_000  # nodes produced, counting every alias expansion

Path = tuple[str | int, ...]
Format = Literal["yaml", "json"]

_BREAKS = {"yaml": re.compile(r"\r\n|[\r\n\x85\u2028\u2029]"), "json": re.compile("\n")}


@dataclass(frozen=True)
class Pos:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class Document:
    """A parsed spec: plain ``data`` and where each node (and each mapping key) starts."""

    file: str
    text: str
    data: Any
    value_pos: dict[Path, Pos]
    key_pos: dict[Path, Pos]
    fmt: Format = "yaml"
    # paths whose value came from `--set KEY=VALUE` (the argument as typed): not in the file
    overrides: dict[Path, str] = field(default_factory=dict)
    # expanded specs (torchspec.expand): the notes each path's problems carry (the block uses it is
    # inside, innermost first; a path's nearest ancestor with notes counts), and what was chosen
    notes: dict[Path, tuple[Note, ...]] = field(default_factory=dict)
    variant: str | None = None
    expanded: bool = False
    # expanded specs: each block use's `layers` path -> (the block's name, its parameters' values)
    block_uses: dict[Path, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _starts: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def override_of(self, path: Path) -> str | None:
        """The ``--set`` argument that gave ``path`` (or an ancestor) its value, if any."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.overrides:
                return self.overrides[path[:end]]
        return None

    def pos(self, path: Path, *, key: bool = False) -> Pos:
        """Where ``path`` starts; an unknown path falls back to its nearest known ancestor."""
        if key and path in self.key_pos:
            return self.key_pos[path]
        for end in range(len(path), 0, -1):
            if path[:end] in self.value_pos:
                return self.value_pos[path[:end]]
        return self.value_pos.get((), Pos(1, 1))

    def line_text(self, line: int) -> str | None:
        if self._starts is None:
            self._starts = line_starts(self.text, self.fmt)
        if not 1 <= line <= len(self._starts):
            return None
        end = self._starts[line] if line < len(self._starts) else len(self.text)
        return self.text[self._starts[line - 1] : end].rstrip("\r\n\x85\u2028\u2029")

    def notes_of(self, path: Path) -> tuple[Note, ...]:
        """The notes of ``path``'s nearest ancestor (or itself) that has some."""
        if self.notes:
            for end in range(len(path), 0, -1):
                if path[:end] in self.notes:
                    return self.notes[path[:end]]
        return ()

    def problem(self, path: Path, message: str, hints: Sequence[str] = (), *, key: bool = False) -> Problem:
        arg = self.override_of(path)
        if arg is not None:  # the value is on the command line, not in the file
            shown = arg if len(arg) <= 80 else f"{arg[:50]}...{arg[-15:]} ({len(arg)} characters)"
            hints = (*lookalike_hints(message, None, 0), *hints)
            return Problem(f"--set {shown}", 0, 0, message, hints, notes=self.notes_of(path))
        problem = self.problem_at(self.pos(path, key=key), message, hints)
        return replace(problem, notes=self.notes_of(path)) if self.notes else problem

    def note_at(self, pos: Pos, message: str) -> Note:
        return Note(self.file, pos.line, pos.col, message, self.line_text(pos.line))

    def problem_at(self, pos: Pos, message: str, hints: Sequence[str] = ()) -> Problem:
        """A problem at ``pos``; a quoted name with look-alike characters gets them named first."""
        source = self.line_text(pos.line)
        hints = (*lookalike_hints(message, source, pos.col), *hints)
        return Problem(self.file, pos.line, pos.col, message, tuple(hints), source)

    def error_at(self, pos: Pos, message: str, *hints: str) -> SpecError:
        return SpecError([self.problem_at(pos, message, hints)])


def line_starts(text: str, fmt: Format) -> list[int]:
    return [0, *(m.end() for m in _BREAKS[fmt].finditer(text))]


def offset_pos(starts: list[int], offset: int) -> Pos:
    line = bisect_right(starts, offset)
    return Pos(line, offset - starts[line - 1] + 1)
