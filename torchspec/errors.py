"""Located problems: every user mistake becomes ``FILE:LINE:COL: error: MESSAGE`` plus hints.

A :class:`Problem` knows where it is (file, 1-based line and column) and, when the source text is
known, shows the offending line with a caret under the spot, the way a compiler does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Note", "Problem", "SpecError", "format_problems"]


@dataclass(frozen=True)
class Note:
    """Context for a problem, at its own place: ``FILE:LINE:COL: note: MESSAGE`` (e.g. where the
    block a failing layer belongs to was used, and with which parameters)."""

    file: str
    line: int
    col: int
    message: str
    source_line: str | None = None

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return "\n".join([f"{where}: note: {self.message}", *_caret(self.source_line, self.line, self.col)])


def _caret(source_line: str | None, line: int, col: int) -> list[str]:
    """The source line and a caret under column ``col`` (nothing when the line is unknown)."""
    if source_line is None or not line:
        return []
    gutter = f"{line:>5} | "
    text, caret = _excerpt(source_line.rstrip("\r\n"), max(col - 1, 0))
    return [f"{gutter}{text}", " " * (len(gutter) - 2) + "| " + " " * caret + "^"]


@dataclass(frozen=True)
class Problem:
    """One mistake at one place. ``line``/``col`` are 1-based; 0 means "unknown"."""

    file: str
    line: int
    col: int
    message: str
    hints: tuple[str, ...] = ()
    source_line: str | None = None
    severity: str = "error"  # or "warning": printed the same way, and the command still succeeds
    notes: tuple[Note, ...] = ()  # context, innermost first (e.g. the block uses it is inside)

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        out = [f"{where}: {self.severity}: {self.message}", *_caret(self.source_line, self.line, self.col)]
        out.extend(f"  hint: {hint}" for hint in self.hints)
        out.extend(note.format() for note in self.notes)
        return "\n".join(out)


@dataclass
class SpecError(Exception):
    """A spec could not be loaded, validated or shape-checked. Carries every located problem."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return format_problems(self.problems)

    @classmethod
    def single(
        cls,
        file: str,
        message: str,
        *,
        line: int = 0,
        col: int = 0,
        hints: Sequence[str] = (),
        source_line: str | None = None,
    ) -> SpecError:
        return cls([Problem(file, line, col, message, tuple(hints), source_line)])


def format_problems(problems: Iterable[Problem]) -> str:
    return "\n".join(p.format() for p in problems)


SHOWN_WIDTH = 100  # characters of a long source line shown around the caret


def _excerpt(line: str, index: int) -> tuple[str, int]:
    """The source line as shown (control characters and tabs as one space each, so the caret
    stays aligned; a long line cut to a window around ``index``) and the caret's index in it."""
    text = "".join(c if c.isprintable() else " " for c in line)
    if len(text) <= SHOWN_WIDTH:
        return text, min(index, len(text))
    start = max(0, min(index - SHOWN_WIDTH // 2, len(text) - SHOWN_WIDTH))
    shown = text[start : start + SHOWN_WIDTH]
    caret = index - start
    if start > 0:
        shown, caret = "..." + shown, caret + 3
    if start + SHOWN_WIDTH < len(text):
        shown += "..."
    return shown, min(caret, len(shown))
